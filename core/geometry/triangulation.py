"""Linear (DLT) triangulation of points seen in several calibrated views, optionally weighted.

The algebraic method of Hartley & Zisserman (*Multiple View Geometry*, sec. 12.2) and of Iskakov et
al., "Learnable Triangulation of Human Pose" (ICCV 2019, "algebraic" variant): every usable view v
of a point gives two rows ``w_v * (x P_v[2] - P_v[0])`` and ``w_v * (y P_v[2] - P_v[1])``; the
homogeneous point is the right singular vector of the smallest singular value (``torch.linalg.svd``,
batched over all points; differentiable w.r.t. the 2D points, the weights and P).

Conditioning (Hartley normalisation, adapted to a per-point DLT):

- 2D side. Translating one view's 2D points (and P accordingly) leaves that view's two rows exactly
  unchanged, and scaling them by ``s`` multiplies the rows by ``s``, i.e. re-weights the view. A
  per-view scale computed from the batch's points (as in Hartley's recipe) would therefore change
  the weighted algebraic solution and make a point's result depend on the other points of the batch.
  Instead each P is scaled to a canonical form, ``|P[2, :3]| = 1`` (as ``K [R | t]`` already is), so
  that a view's algebraic residual is its depth times its pixel error whatever scale P came in.
  With canonical P the rows are those of OpenCV's ``triangulatePoints`` and of Iskakov et al.
- 3D side. Millimetre coordinates make the homogeneous unknown badly balanced (X ~ 1e3, w = 1), the
  real float32 problem. The world is shifted to the mean of the camera centres and scaled by their
  RMS distance from it (a similarity ``H`` computed from the cameras only, so points stay
  independent); the system is solved for ``H^-1 X`` and mapped back. For exact correspondences this
  changes nothing; with noise it changes the result only at second order in the noise (on the
  Human3.6M rig with 2 px noise: 0.1 mm on average, against an error of 11-19 mm, and not worse).
  In float32 on that rig it brings the error for exact data from 0.6 mm down to 0.002 mm.
  (``eigh`` of ``A^T A`` would square the condition number; the SVD of A is used, except for float64 systems
  that need no gradient: there the normal matrix ``A^T A`` is accumulated view by view without building A and
  its null vector comes from inverse iteration with its adjugate, one fused pass over the points for large
  batches (``core.geometry.fused``), with the SVD as the fallback for the systems that do not settle; see
  ``core.geometry.eigen4``.)

Missing data: a view is unusable for a point when its 2D point is not finite, its weight is not a
finite positive number, or its P is not a finite projective camera. Its rows are exactly zero (no
NaN reaches other points or their gradients). Points with fewer than ``min_views`` usable views, a
rank-deficient system (e.g. all their views share one centre), or a solution behind one of the
cameras that saw them with a weight of at least 5 % of their largest (no real point projects there)
come out as NaN with ``valid=False``. Their gradient is zero; only for the rank-deficient case is it undefined.
"""
import functools
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from core.geometry import fused
from core.geometry.cameras import Cameras
from core.geometry.eigen4 import smallest_eigenvectors
from core.geometry.projection import check_shape

# A system whose third singular value is below this many float epsilons times the largest has no
# unique solution (rank < 3).
_RANK_EPS = 100.0


class Triangulation(NamedTuple):
    points_3d: Tensor  # (*B, N, 3) world (mm for EpiPose cameras); NaN where not valid
    valid: Tensor      # (*B, N) bool
    num_views: Tensor  # (*B, N) int64: number of usable views of each point


def _det3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Determinant of the 3x3 matrices with columns a, b, c (..., 3)."""
    return (a * torch.linalg.cross(b, c, dim=-1)).sum(-1)


def _projective_centers(P: Tensor) -> tuple:
    """Optical centres (..., 3) of cameras P (..., 3, 4), the null vector of P by cofactors, and a
    mask (...) of the cameras that have a finite centre (not affine or degenerate); zero elsewhere."""
    c0, c1, c2, c3 = P.unbind(-1)
    homogeneous = torch.stack([_det3(c1, c2, c3), -_det3(c0, c2, c3), _det3(c0, c1, c3), -_det3(c0, c1, c2)], -1)
    w = homogeneous[..., 3]
    finite = (w != 0) & torch.isfinite(homogeneous).all(-1)
    centers = homogeneous[..., :3] / torch.where(finite, w, torch.ones_like(w)).unsqueeze(-1)
    return torch.where(finite.unsqueeze(-1), centers, torch.zeros_like(centers)), finite


def _normalize_cameras(P: Tensor):
    """Canonical, normalised cameras for the DLT.

    P (*B, V, 3, 4) -> (P_normalized (*B, V, 3, 4), view_ok (*B, V), center (*B, 3), scale (*B)):
    ``P_normalized = P / |P[2, :3]| @ H`` with ``H = [[scale I, center], [0, 1]]``, zero for the views
    that are not finite projective cameras (``view_ok`` False).
    """
    depth_row_norm = P[..., 2, :3].norm(dim=-1)
    view_ok = torch.isfinite(P).all(-1).all(-1) & (depth_row_norm > 0)
    P = torch.where(view_ok[..., None, None], P, torch.zeros_like(P))
    P = P / torch.where(view_ok, depth_row_norm, torch.ones_like(depth_row_norm))[..., None, None]

    centers, has_center = _projective_centers(P)
    view_ok = view_ok & has_center
    centers = torch.where(view_ok.unsqueeze(-1), centers, torch.zeros_like(centers))
    count = view_ok.sum(-1).clamp(min=1)
    center = centers.sum(-2) / count.unsqueeze(-1)
    spread = ((centers - center.unsqueeze(-2)).square().sum(-1) * view_ok).sum(-1) / count
    scale = torch.where(spread > 0, spread, torch.ones_like(spread)).sqrt()

    P = torch.where(view_ok[..., None, None], P, torch.zeros_like(P))
    P_normalized = torch.cat([P[..., :3] * scale[..., None, None, None],
                              (P[..., :3] @ center[..., None, :, None]) + P[..., 3:]], dim=-1)
    return P_normalized, view_ok, center, scale


def _null_vectors_svd(A: Tensor):
    """(..., R, 4) -> the unit right singular vectors of the smallest singular value (..., 4) and whether the
    system has rank >= 3 (...)."""
    _, singular_values, Vh = torch.linalg.svd(A, full_matrices=False)
    rank_ok = singular_values[..., 2] > _RANK_EPS * torch.finfo(A.dtype).eps * singular_values[..., 0]
    return Vh[..., -1, :], rank_ok


# Cheirality asks only the views whose weight is at least this fraction of the point's largest
_ASKED_WEIGHT_FRACTION = 0.05
# The 10 unique entries (i <= j) of a symmetric 4x4 normal matrix, in the order _normal_matrix returns them
_UPPER = [(i, j) for i in range(4) for j in range(i, 4)]


def _usable_observations(x: Tensor, y: Tensor, weights: Tensor, view_ok: Tensor):
    """(usable, x, y, weights), the last three with zeros where unusable; every argument of one shape (or
    broadcasting to it: ``view_ok`` with an axis for the points)."""
    usable = torch.isfinite(x) & torch.isfinite(y) & torch.isfinite(weights) & (weights > 0) & view_ok
    x, y, w = (torch.where(usable, t, torch.zeros_like(t)) for t in (x, y, weights))
    return usable, x, y, w


def _world_points(h, solvable: Tensor, center: Tensor, scale: Tensor):
    """World points (*B, N, 3) of the normalised homogeneous solutions h (4 tensors (*B, N)) of the systems that are
    ``solvable`` (enough views, rank >= 3), whether each has one (``ok``) and its last homogeneous coordinate (1 where
    not ``ok``)."""
    ok = solvable & (h[3] != 0)
    h_w = torch.where(ok, h[3], torch.ones_like(h[3]))
    points = center.unsqueeze(-2) + scale[..., None, None] * torch.stack(h[:3], -1) / h_w.unsqueeze(-1)
    return points, ok, h_w


def _in_front(h, h_w: Tensor, depth_row, facing: Tensor, weighty: Tensor) -> Tensor:
    """Cheirality: a point behind a camera that saw it is no solution (depth = sign(det M) (P X)_3 / X_4, with
    ``depth_row`` the 4 entries of the normalised P's last row and ``facing`` the sign); views with a negligible
    weight (``weighty`` False: under 5 % of the point's largest) hardly shaped the solution and are not asked.
    Broadcasting shapes: one view or all of them."""
    depth = facing * sum(p * h_k for p, h_k in zip(depth_row, h)) / h_w
    return (depth > 0) | ~weighty


def _valid_points(points: Tensor, valid: Tensor):
    """(points with NaN where not valid, valid), a valid point finite."""
    valid = valid & torch.isfinite(points).all(-1)
    return torch.where(valid.unsqueeze(-1), points, torch.full_like(points, float("nan"))), valid


def _dlt_by_svd(points_2d, weights, P, view_ok, facing, center, scale, min_views: int):
    """The DLT by the SVD of the weighted design matrix A (*B, N, 2V, 4): differentiable, any float type.
    Returns (points, valid, count)."""
    usable, x, y, w = _usable_observations(*points_2d.unbind(-1), weights, view_ok.unsqueeze(-1))
    P_rows = P.unsqueeze(-3)                                                                # (*B, V, 1, 3, 4)
    first = x.unsqueeze(-1) * P_rows[..., 2, :] - P_rows[..., 0, :]                         # (*B, V, N, 4)
    second = y.unsqueeze(-1) * P_rows[..., 2, :] - P_rows[..., 1, :]
    rows = w[..., None, None] * torch.stack([first, second], -2)                           # (*B, V, N, 2, 4)
    A = rows.movedim(-4, -3).flatten(-3, -2)                                                # (*B, N, 2V, 4)
    count = usable.sum(-2)
    enough = count >= min_views
    # Points without enough views get a harmless stand-in system, so that the SVD (and its
    # gradient, which needs distinct singular values) stays finite; their result is discarded.
    stand_in = A.new_zeros(A.shape[-2:])
    stand_in[:4] = torch.diag(torch.arange(4.0, 0.0, -1.0, dtype=A.dtype, device=A.device))
    h, rank_ok = _null_vectors_svd(torch.where(enough[..., None, None], A, stand_in))
    h = h.unbind(-1)
    points, ok, h_w = _world_points(h, enough & rank_ok, center, scale)
    weighty = usable & (w >= _ASKED_WEIGHT_FRACTION * w.amax(-2, keepdim=True))
    in_front = _in_front([h_k.unsqueeze(-2) for h_k in h], h_w.unsqueeze(-2), P[..., 2, :].unsqueeze(-2).unbind(-1),
                         facing.unsqueeze(-1), weighty).all(-2)                            # (*B, N)
    points, valid = _valid_points(points, ok & in_front)
    return points, valid, count


def _normal_matrix(points_2d, weights, P, view_ok):
    """The 10 unique entries (``i <= j``, row by row) of the 4x4 normal matrix ``A^T A = sum_v w_v^2 (a a^T + b b^T)``,
    accumulated view by view without building A; the count of usable views; and, per view (V, *B, N), whether it
    is asked for cheirality (usable, weight at least 5 % of the point's largest). Written with the V views unrolled,
    every quantity a (*B, N) tensor and the cameras' entries broadcast over the points: compiled, its loops run over
    the points alone (in a (*B, V, N) form the compiler split the work into loops of two shapes that kept their
    intermediates in memory: 3-4x slower)."""
    u_all, v_all = points_2d.unbind(-1)
    entries, observations = {}, []
    for view, camera in enumerate(P.unsqueeze(-3).unbind(-4)):                           # (*B, 1, 3, 4) each
        usable, x, y, w = _usable_observations(u_all[..., view, :], v_all[..., view, :], weights[..., view, :],
                                               view_ok[..., view, None])
        first = [x * camera[..., 2, j] - camera[..., 0, j] for j in range(4)]
        second = [y * camera[..., 2, j] - camera[..., 1, j] for j in range(4)]
        squared = w * w
        for i, j in _UPPER:
            term = squared * (first[i] * first[j] + second[i] * second[j])
            entries[i, j] = entries[i, j] + term if (i, j) in entries else term
        observations.append((usable, w))
    count = sum(usable.long() for usable, _ in observations)
    largest = functools.reduce(torch.maximum, [w for _, w in observations])
    asked = torch.stack([usable & (w >= _ASKED_WEIGHT_FRACTION * largest) for usable, w in observations])
    return [entries[key] for key in _UPPER], count, asked


def _solve_normal_matrix(entries, count, asked, P, facing, center, scale, min_views: int):
    """``_normal_matrix``'s systems solved by ``eigen4.smallest_eigenvectors``, with the rank and cheirality checks:
    (points, valid, needs_svd), the points whose iteration did not settle left for the SVD (``_refine_by_svd``)."""
    unique = dict(zip(_UPPER, entries))
    h, settled = smallest_eigenvectors([[unique[min(i, j), max(i, j)] for j in range(4)] for i in range(4)])
    enough = count >= min_views
    points, ok, h_w = _world_points(h, enough & settled, center, scale)
    for asked_view, camera, facing_view in zip(asked.unbind(0), P.unsqueeze(-3).unbind(-4),
                                               facing.unsqueeze(-1).unbind(-2)):
        ok = ok & _in_front(h, h_w, camera[..., 2, :].unbind(-1), facing_view, asked_view)
    points, valid = _valid_points(points, ok)
    return points, valid, enough & ~settled


def _dlt_by_normal_matrix(points_2d, weights, P, view_ok, facing, center, scale, min_views: int):
    """The DLT from the normal matrix (float64 without gradients) in two passes over the points, each one graph that
    ``fused.run`` compiles for large batches: ``_normal_matrix`` reads the observations, ``_solve_normal_matrix``
    only the matrices. Fused into one, the solve shared a loop with the cheirality test's strided reads of the
    observations, which the compiler does not vectorise: with confidence weights that made the DLT 1.5-1.7x slower.
    Returns (points, valid, count, needs_svd)."""
    elements = points_2d.numel() // 2
    entries, count, asked = fused.run(_normal_matrix, elements, points_2d, weights, P, view_ok)
    points, valid, needs_svd = fused.run(_solve_normal_matrix, elements, entries, count, asked, P, facing, center,
                                         scale, min_views)
    return points, valid, count, needs_svd


def _refine_by_svd(result, needs_svd, points_2d, weights, P, view_ok, facing, center, scale, min_views):
    """``result`` (points, valid) with the points in ``needs_svd`` (*B, N) solved again by the SVD, one system each."""
    points, valid = result
    batch, num_points = needs_svd.shape[:-1], needs_svd.shape[-1]
    which = needs_svd.reshape(-1).nonzero().squeeze(-1)
    sample, point = which // num_points, which % num_points

    def per_sample(t: Tensor, trailing: int) -> Tensor:  # (*B, ...) -> (S, ...) with the batch flattened
        tail = t.shape[t.dim() - trailing:]
        return t.expand(*batch, *tail).reshape(-1, *tail) if batch else t.reshape(1, *tail)

    x = per_sample(points_2d, 3)[sample, :, point].unsqueeze(-2)                           # (K, V, 1, 2)
    w = per_sample(weights, 2)[sample, :, point].unsqueeze(-1)                             # (K, V, 1)
    cameras = [per_sample(t, trailing)[sample] for t, trailing in ((P, 3), (view_ok, 1), (facing, 1), (center, 1),
                                                                    (scale, 0))]
    again, again_valid, _ = _dlt_by_svd(x, w, *cameras, min_views)
    points = points.reshape(-1, 3).clone()
    valid = valid.reshape(-1).clone()
    points[which], valid[which] = again[:, 0], again_valid[:, 0]
    return points.reshape(*batch, num_points, 3), valid.reshape(*batch, num_points)


def triangulate_dlt(points_2d: Tensor, projection_matrices: Tensor, weights: Optional[Tensor] = None,
                    min_views: int = 2) -> Triangulation:
    """Triangulate N points from V views.

    Args:
        points_2d: (*B, V, N, 2) undistorted pixels (NaN / inf marks a missing observation).
        projection_matrices: (*B, V, 3, 4) cameras ``P`` mapping world points to those pixels.
        weights: optional (*B, V, N) per-view confidence multiplying that view's two rows; views
            with weight <= 0 (or not finite) are unusable.
        min_views: the fewest usable views a point needs (>= 2).

    The leading shapes ``*B`` of the three arguments broadcast. Returns a ``Triangulation``.
    """
    check_shape(points_2d, (-1, -1, 2), "points_2d")
    check_shape(projection_matrices, (-1, 3, 4), "projection_matrices")
    num_views, num_points = points_2d.shape[-3:-1]
    if projection_matrices.shape[-3] != num_views:
        raise ValueError(f"projection_matrices has {projection_matrices.shape[-3]} views, points_2d "
                         f"{tuple(points_2d.shape)} has {num_views}")
    if weights is not None:
        check_shape(weights, (num_views, num_points), "weights")
    if not isinstance(min_views, int) or min_views < 2:
        raise ValueError(f"min_views must be an integer >= 2, got {min_views!r}")
    batch = torch.broadcast_shapes(points_2d.shape[:-3], projection_matrices.shape[:-3],
                                   weights.shape[:-2] if weights is not None else ())
    if num_views < min_views:
        nan = points_2d.new_full((*batch, num_points, 3), float("nan"))
        count = torch.zeros(*batch, num_points, dtype=torch.int64, device=points_2d.device)
        return Triangulation(nan, count > 0, count)
    P, view_ok, center, scale = _normalize_cameras(projection_matrices)
    facing = torch.sign(torch.linalg.det(P[..., :3]))                                       # (*B, V)
    points_2d = points_2d.expand(*batch, num_views, num_points, 2)
    weights = points_2d.new_ones(()).expand(*batch, num_views, num_points) if weights is None else \
        weights.expand(*batch, num_views, num_points)
    cameras = (P, view_ok, facing, center, scale)
    gradients = torch.is_grad_enabled() and any(t.requires_grad for t in (points_2d, weights, projection_matrices))
    if points_2d.dtype != torch.float64 or gradients or points_2d.numel() == 0:
        points, valid, count = _dlt_by_svd(points_2d, weights, *cameras, min_views)
        return Triangulation(points, valid, count)
    with torch.no_grad():
        points, valid, count, needs_svd = _dlt_by_normal_matrix(points_2d, weights, *cameras, min_views)
        if needs_svd.any():
            points, valid = _refine_by_svd((points, valid), needs_svd, points_2d, weights, *cameras, min_views)
    return Triangulation(points, valid, count)


def triangulate_cameras(cameras: Cameras, keypoints_2d: Tensor, weights: Optional[Tensor] = None,
                        min_views: int = 2) -> Triangulation:
    """DLT of distorted pixels: cameras (*B, V), keypoints_2d (*B, V, N, 2), weights (*B, V, N).

    Undistorts with each camera's lens model, then calls ``triangulate_dlt`` with ``K [R | t]``.
    """
    undistorted = cameras.undistort_pixels(keypoints_2d)
    return triangulate_dlt(undistorted, cameras.projection_matrices, weights, min_views)


def reprojection_errors(points_3d: Tensor, cameras: Cameras, keypoints_2d: Tensor) -> Tensor:
    """Pixel distance (*B, V, N) between the projections of points_3d (*B, N, 3) in cameras (*B, V)
    and the distorted keypoints_2d (*B, V, N, 2); NaN where either is missing or behind a camera."""
    check_shape(points_3d, (-1, 3), "points_3d")
    check_shape(keypoints_2d, (-1, -1, 2), "keypoints_2d")
    projected = cameras.project(points_3d.unsqueeze(-3))
    return torch.linalg.vector_norm(projected - keypoints_2d, dim=-1)
