"""Pinhole projection with OpenCV lens distortion, and its inverse: pure, batched, differentiable torch.

Conventions (those of ``core.geometry.cameras``, identical to OpenCV's ``projectPoints``):

- ``X_cam = R @ X_world + t`` with OpenCV camera axes (x right, y down, z forward), millimetres;
- normalised coordinates ``xn = (X_cam.x / z, X_cam.y / z)``;
- distortion ``dist = (k1, k2, p1, p2, k3)`` on normalised coordinates (Brown-Conrady, OpenCV order)::

      r2 = x^2 + y^2,  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
      x_d = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
      y_d = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

- pixels ``px = K[:2, :2] @ xn_d + K[:2, 2]``: ``K`` is a general affine (last row (0, 0, 1), not
  checked), so a crop / resize / rotation folded into ``K`` is honoured; the inverse uses the 2x2
  inverse, not 1/fx. (OpenCV's ``projectPoints`` / ``undistortPoints`` ignore the skew ``K[0, 1]``;
  the two agree whenever K has none.)

Shapes: camera tensors are ``(*C, 3, 3)``, ``(*C, 3)``, ``(*C, 5)`` and points ``(*C, N, 3)`` or
``(*C, N, 2)``; the leading shapes broadcast against each other. Nothing loops over points or views.

Deviations from OpenCV, on purpose:

- points at or behind the camera plane (z <= 0) project to NaN pixels (OpenCV divides anyway and
  returns a mirrored, meaningless pixel); their gradient is zero, never NaN. Use
  ``world_to_camera(...)[..., 2]`` when the depth itself is wanted;
- ``undistort`` solves ``distort(x) = x_d`` with Newton's method (analytic 2x2 Jacobian) instead of
  OpenCV's fixed-point iteration (5 steps by default, often not converged). Started at ``x_d``,
  8 Newton steps reached machine precision for every lens tried with |k1| <= 0.5, |k2| <= 0.3,
  |k3| <= 0.1, |p| <= 0.01 wherever the model is injective up to a normalised radius of 0.85;
  ``UNDISTORT_ITERATIONS`` = 12 leaves a margin (float64 error ~1e-13 px, float32 ~1e-4 px).
  Beyond the radius where the polynomial folds, a distorted point has no preimage (it comes out as
  NaN, never as a silently wrong point) or several (Newton returns one of them; so would OpenCV).
  Gradients use the implicit function theorem (one last Newton step is taken with autograd on), so
  they are exact and cheap.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor

from core.geometry import fused

UNDISTORT_ITERATIONS = 12


def check_shape(tensor: Tensor, trailing: Sequence[int], name: str) -> None:
    """Raise a ValueError unless ``tensor`` is a Tensor of shape ``(..., *trailing)`` (-1 = any size)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    shape = tuple(tensor.shape[tensor.dim() - len(trailing):]) if tensor.dim() >= len(trailing) else None
    if shape is None or any(want not in (-1, got) for want, got in zip(trailing, shape)):
        expected = ", ".join("*" if s == -1 else str(s) for s in trailing)
        raise ValueError(f"{name} must have shape (..., {expected}), got {tuple(tensor.shape)}")


def world_to_camera(points_world: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """(*C, N, 3) world points -> (*C, N, 3) camera-frame points: ``R @ X + t``."""
    check_shape(points_world, (-1, 3), "points_world")
    check_shape(R, (3, 3), "R")
    check_shape(t, (3,), "t")
    return points_world @ R.transpose(-1, -2) + t.unsqueeze(-2)


def camera_to_world(points_cam: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """(*C, N, 3) camera-frame points -> (*C, N, 3) world points: ``R^T (X_cam - t)``."""
    check_shape(points_cam, (-1, 3), "points_cam")
    check_shape(R, (3, 3), "R")
    check_shape(t, (3,), "t")
    return (points_cam - t.unsqueeze(-2)) @ R


def _split_dist(dist: Tensor):
    """(*C, 5) -> five (*C, 1) tensors k1, k2, p1, p2, k3 that broadcast over the point axis."""
    check_shape(dist, (5,), "dist")
    return dist.unsqueeze(-2).unbind(-1)


def distort(xn: Tensor, dist: Tensor) -> Tensor:
    """Apply lens distortion to normalised coordinates: (*C, N, 2), dist (*C, 5) -> (*C, N, 2)."""
    check_shape(xn, (-1, 2), "xn")
    k1, k2, p1, p2, k3 = _split_dist(dist)
    x, y = xn.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xy = x * y
    x_d = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
    y_d = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
    return torch.stack([x_d, y_d], dim=-1)


def lens_terms(dist_parts) -> tuple:
    """The coefficients a Newton step needs, computed once: k1, k2, k3, p1, p2, 2 k2, 3 k3, 2 p1, 2 p2, 6 p1, 6 p2."""
    k1, k2, p1, p2, k3 = dist_parts
    return k1, k2, k3, p1, p2, 2 * k2, 3 * k3, 2 * p1, 2 * p2, 6 * p1, 6 * p2


def _residual(x: Tensor, y: Tensor, target_x: Tensor, target_y: Tensor, terms) -> tuple:
    """``distort((x, y)) - target`` as (res_x, res_y), with the terms a Newton step reuses. Written with fused
    multiply-adds (``addcmul``): a third of the tensor operations of the plain formulas, which dominate the
    time of batched undistortion."""
    k1, k2, k3, p1, p2, _, _, p1x2, p2x2, _, _ = terms
    xx, yy, xy = x * x, y * y, x * y
    r2 = xx + yy
    radial = torch.addcmul(torch.ones_like(r2), r2, torch.addcmul(k1, r2, torch.addcmul(k2, r2, k3)))
    res_x = torch.addcmul(torch.addcmul(x * radial, xy, p1x2), torch.add(r2, xx, alpha=2), p2) - target_x
    res_y = torch.addcmul(torch.addcmul(y * radial, xy, p2x2), torch.add(r2, yy, alpha=2), p1) - target_y
    return res_x, res_y, (xx, yy, xy, r2, radial)


def _newton_update(x: Tensor, y: Tensor, res_x: Tensor, res_y: Tensor, cache, terms) -> tuple:
    """The Newton step from (x, y) given its residual (``_residual``): the new (x, y)."""
    k1, _, _, _, _, k2x2, k3x3, p1x2, p2x2, p1x6, p2x6 = terms
    xx, yy, xy, r2, radial = cache
    d_radial = torch.addcmul(k1, r2, torch.addcmul(k2x2, r2, k3x3))              # d radial / d r2
    j_xx = torch.addcmul(torch.addcmul(torch.addcmul(radial, xx, d_radial, value=2), y, p1x2), x, p2x6)
    j_xy = torch.addcmul(torch.addcmul(xy * d_radial * 2, x, p1x2), y, p2x2)
    j_yy = torch.addcmul(torch.addcmul(torch.addcmul(radial, yy, d_radial, value=2), y, p1x6), x, p2x2)
    det = torch.addcmul(j_xx * j_yy, j_xy, j_xy, value=-1)  # the Jacobian is symmetric: j_yx == j_xy
    step_x = torch.addcmul(j_yy * res_x, j_xy, res_y, value=-1) / det
    step_y = torch.addcmul(j_xx * res_y, j_xy, res_x, value=-1) / det
    return x - step_x, y - step_y


# Newton steps of the fused undistortion (``core.geometry.fused``): enough for the usual lenses (a point of the
# Human3.6M or Pose2Sim cameras converges in 3-4); the points that have not converged by then finish eagerly.
FUSED_NEWTON_STEPS = 4


def _newton_until_converged(x, y, target_x, target_y, terms, squared_tolerance, iterations: int):
    """Newton steps from (x, y) towards ``distort((x, y)) = target`` until every point meets the tolerance (Newton
    converges quadratically) or ``iterations`` were taken: (x, y, converged)."""
    for step in range(iterations + 1):
        res_x, res_y, cache = _residual(x, y, target_x, target_y, terms)
        if step:
            squared = torch.addcmul(res_x * res_x, res_y, res_y)
            converged = squared <= squared_tolerance  # False for NaN, which never converges
            if step == iterations or bool((converged | ~torch.isfinite(squared)).all()):
                return x, y, converged
        x, y = _newton_update(x, y, res_x, res_y, cache, terms)


def fixed_newton(x, y, target_x, target_y, terms):
    """``FUSED_NEWTON_STEPS`` Newton steps without a test between them (one graph, for ``fused.run``): (x, y,
    squared residual)."""
    for _ in range(FUSED_NEWTON_STEPS):
        res_x, res_y, cache = _residual(x, y, target_x, target_y, terms)
        x, y = _newton_update(x, y, res_x, res_y, cache, terms)
    res_x, res_y, _ = _residual(x, y, target_x, target_y, terms)
    return x, y, torch.addcmul(res_x * res_x, res_y, res_y)


def _undistort_view(u: Tensor, v: Tensor, dist: Tensor, K: Optional[Tensor], K_inverse: Optional[Tensor]):
    """``FUSED_NEWTON_STEPS`` of undistortion of one view's points (u, v) (*B, N), with that view's lens (*B, 1, 5)
    and, for pixels, its K (*B, 1, 3, 3) and the inverse of K's affine part (*B, 1, 2, 2) (else normalised
    coordinates): every quantity a (*B, N) tensor and the lens broadcast over the points, so that compiled the
    loops run over the points alone, vectorised (in the (*B, V, N) form the compiler split the work into loops of
    two shapes that kept their intermediates in memory: 4x slower, docs/performance.md). Returns the undistorted
    (x, y) (NaN where not converged) and which points need more steps."""
    if K is not None:
        u, v = u - K[..., 0, 2], v - K[..., 1, 2]
        u, v = K_inverse[..., 0, 0] * u + K_inverse[..., 0, 1] * v, K_inverse[..., 1, 0] * u + K_inverse[..., 1, 1] * v
    x, y, squared = fixed_newton(u, v, u, v, lens_terms(dist.unbind(-1)))
    converged = squared <= default_tolerance(u, v) ** 2
    if K is not None:
        x, y = K[..., 0, 0] * x + K[..., 0, 1] * y + K[..., 0, 2], K[..., 1, 0] * x + K[..., 1, 1] * y + K[..., 1, 2]
    nan = torch.full_like(x, float("nan"))
    return torch.where(converged, x, nan), torch.where(converged, y, nan), ~converged & torch.isfinite(squared)


def _fusable(points: Tensor, iterations: int, dist: Tensor, K: Optional[Tensor] = None) -> bool:
    """Whether ``undistort`` / ``undistort_pixels`` of ``points`` (*C, N, 2) run fused: float64 without gradients,
    a large batch, cameras with a view axis (the last of *C)."""
    cameras = (dist,) if K is None else (dist, K)
    if points.dtype != torch.float64 or iterations <= FUSED_NEWTON_STEPS or not fused.wants_fused(points.numel() // 2) \
            or (torch.is_grad_enabled() and any(t.requires_grad for t in (points, *cameras))):
        return False
    try:
        shape = torch.broadcast_shapes(points.shape[:-2], dist.shape[:-1], *(() if K is None else (K.shape[:-2],)))
    except RuntimeError:
        return False  # the eager path names the mismatch
    return len(shape) >= 1


def _fused_undistortion(points: Tensor, dist: Tensor, K: Optional[Tensor], iterations: int) -> Tensor:
    """``undistort`` (K None) or ``undistort_pixels`` of a large float64 batch: the fixed steps fused view by view
    (``_undistort_view``), then the few points that need more finish eagerly, from the start."""
    shape = torch.broadcast_shapes(points.shape[:-2], dist.shape[:-1], *(() if K is None else (K.shape[:-2],)))
    points, dist = points.expand(*shape, points.shape[-2], 2), dist.expand(*shape, 5)
    K = None if K is None else K.expand(*shape, 3, 3)
    K_inverse = None if K is None else torch.linalg.inv(K[..., :2, :2])
    undistorted = torch.empty_like(points)
    lagging = torch.empty(points.shape[:-1], dtype=torch.bool, device=points.device)
    for view in range(points.shape[-3]):  # one compiled kernel over all the points of each view
        lens = [None if t is None else t[..., view, None, :, :] for t in (K, K_inverse)]
        x, y, lagging[..., view, :] = fused.run(_undistort_view, points.numel() // 2, points[..., view, :, 0],
                                                points[..., view, :, 1], dist[..., view, None, :], *lens)
        undistorted[..., view, :, 0], undistorted[..., view, :, 1] = x, y
    if not lagging.any():
        return undistorted
    which = lagging.nonzero(as_tuple=True)
    cameras = which[:-1]
    target = points[which].unsqueeze(-2)                                                     # (L, 1, 2)
    if K is not None:
        target = pixels_to_normalized(target, K[cameras])
    # the eager path (an explicit tolerance never runs fused), from the start
    finished = undistort(target, dist[cameras], iterations, tolerance=default_tolerance(*target.unbind(-1)))
    if K is not None:
        finished = normalized_to_pixels(finished, K[cameras])
    undistorted[which] = finished.squeeze(-2)
    return undistorted


def default_tolerance(xd: Tensor, yd: Tensor) -> Tensor:
    """``undistort``'s default tolerance on the residual of distorted normalised coordinates (xd, yd)."""
    return 1e3 * torch.finfo(xd.dtype).eps * (1 + (xd * xd + yd * yd).sqrt())


def undistort(xd: Tensor, dist: Tensor, iterations: int = UNDISTORT_ITERATIONS,
              tolerance: Optional[float] = None) -> Tensor:
    """Invert ``distort``: distorted normalised (*C, N, 2), dist (*C, 5) -> undistorted normalised.

    Newton's method from ``x = xd``: up to ``iterations`` steps without autograd (fewer once every point has
    converged), then, when a gradient is needed, one differentiable step (the implicit-function gradient).
    Points whose residual ``|distort(x) - xd|`` is still above ``tolerance`` (normalised units; default
    ``1e3 * eps(dtype) * (1 + |xd|)``: 2e-13 in float64, 1.2e-4 in float32, i.e. 0.1 px at f = 1000 px; a
    converged point is far more accurate) are returned as NaN, as are NaN inputs; their gradient is zero.
    Large float64 batches run fused (``_fused_undistortion``); the result is the same to rounding.
    """
    check_shape(xd, (-1, 2), "xd")
    if iterations < 1:
        raise ValueError(f"undistort: iterations must be >= 1, got {iterations}")
    parts = _split_dist(dist)
    if tolerance is None and _fusable(xd, iterations, dist):
        return _fused_undistortion(xd, dist, None, iterations)
    with torch.no_grad():
        target = xd.detach()
        terms = lens_terms([p.detach() for p in parts])
        target_x, target_y = (c.contiguous() for c in target.unbind(-1))  # strided views are slower to compute with
        if tolerance is None:
            tolerance = default_tolerance(target_x, target_y)
        squared_tolerance = torch.as_tensor(tolerance, dtype=xd.dtype, device=xd.device) ** 2
        x, y, converged = _newton_until_converged(target_x, target_y, target_x, target_y, terms, squared_tolerance,
                                                  iterations)
        x = torch.where(converged, x, torch.zeros_like(x))
        y = torch.where(converged, y, torch.zeros_like(y))
    converged = converged.unsqueeze(-1)
    if not (torch.is_grad_enabled() and (xd.requires_grad or dist.requires_grad)):
        undistorted = torch.stack([x, y], dim=-1)
        return torch.where(converged, undistorted, torch.full_like(undistorted, float("nan")))
    # The last step is differentiable: its derivative w.r.t. (xd, dist) at the solution is the
    # implicit-function gradient. Unconverged points solve distort(0) = 0 there, so no NaN reaches
    # the gradient of dist or of other points.
    safe = torch.where(converged, xd, torch.zeros_like(xd))
    terms = lens_terms(parts)
    res_x, res_y, cache = _residual(x, y, safe[..., 0], safe[..., 1], terms)
    x, y = _newton_update(x, y, res_x, res_y, cache, terms)
    undistorted = torch.stack([x, y], dim=-1)
    return torch.where(converged, undistorted, torch.full_like(undistorted, float("nan")))


def normalized_to_pixels(xn: Tensor, K: Tensor) -> Tensor:
    """(*C, N, 2) normalised coordinates -> (*C, N, 2) pixels with the affine ``K`` (*C, 3, 3)."""
    check_shape(xn, (-1, 2), "xn")
    check_shape(K, (3, 3), "K")
    return xn @ K[..., :2, :2].transpose(-1, -2) + K[..., :2, 2].unsqueeze(-2)


def pixels_to_normalized(pixels: Tensor, K: Tensor) -> Tensor:
    """(*C, N, 2) pixels -> (*C, N, 2) normalised coordinates: the inverse affine of ``K`` (*C, 3, 3)."""
    check_shape(pixels, (-1, 2), "pixels")
    check_shape(K, (3, 3), "K")
    A = K[..., :2, :2]
    a, b, c, d = A[..., 0, 0], A[..., 0, 1], A[..., 1, 0], A[..., 1, 1]
    A_inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / (a * d - b * c)[..., None, None]
    return (pixels - K[..., :2, 2].unsqueeze(-2)) @ A_inv.transpose(-1, -2)


def project_points(points_world: Tensor, K: Tensor, R: Tensor, t: Tensor, dist: Optional[Tensor] = None) -> Tensor:
    """(*C, N, 3) world points -> (*C, N, 2) distorted pixels; ``dist=None`` means no distortion.

    Points with camera depth z <= 0 (at or behind the camera) give NaN pixels and a zero gradient.
    """
    points_cam = world_to_camera(points_world, R, t)
    depth = points_cam[..., 2:]
    in_front = depth > 0
    xn = points_cam[..., :2] / torch.where(in_front, depth, torch.ones_like(depth))
    xn = torch.where(in_front, xn, torch.zeros_like(xn))  # keeps the distortion polynomial finite
    if dist is not None:
        xn = distort(xn, dist)
    pixels = normalized_to_pixels(xn, K)
    return torch.where(in_front, pixels, torch.full_like(pixels, float("nan")))


def undistort_pixels(pixels: Tensor, K: Tensor, dist: Tensor, iterations: int = UNDISTORT_ITERATIONS) -> Tensor:
    """(*C, N, 2) distorted pixels -> (*C, N, 2) undistorted pixels of the same ``K`` (*C, 3, 3). Large float64
    batches run fused (``_fused_undistortion``: the same result to rounding)."""
    if _fusable(pixels, iterations, dist, K):
        check_shape(K, (3, 3), "K")
        check_shape(dist, (5,), "dist")
        return _fused_undistortion(pixels, dist, K, iterations)
    xn = undistort(pixels_to_normalized(pixels, K), dist, iterations)
    return normalized_to_pixels(xn, K)


def crop_to_image_pixels(pixels: Tensor, crop_cameras, image_cameras) -> Tensor:
    """(..., J, 2) pixels of crops -> the same points in pixels of the full images (K_image K_crop^-1; the crop and
    resize are affine maps folded into K, so this is exact, lens distortion included). The cameras are
    ``core.geometry.cameras.Cameras`` of the crops and of the full images."""
    normalised = pixels_to_normalized(pixels.to(crop_cameras.dtype), crop_cameras.K)
    return normalized_to_pixels(normalised, image_cameras.K).to(pixels.dtype)
