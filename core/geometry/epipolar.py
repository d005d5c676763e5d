"""Epipolar geometry between two calibrated views: fundamental matrix, epipolar lines, distances.

Follows Hartley & Zisserman, *Multiple View Geometry* (2nd ed.), sec. 9.2: with the relative pose
``R = R2 R1^T``, ``t = t2 - R t1`` (camera 1 frame -> camera 2 frame),

    F = K2^-T [t]_x R K1^-1,    x2^T F x1 = 0

for *undistorted* homogeneous pixels ``x1`` (image 1) and ``x2`` (image 2); undistort distorted
keypoints first (``Cameras.undistort_pixels``). ``K`` may be any affine intrinsic matrix (crop /
resize / rotation folded in). F keeps the scale of this formula (it is not normalised), so the
algebraic residual ``x2^T F x1`` is no distance: use ``point_line_distance`` for pixels.

Epipolar lines ``l2 = F x1`` are scaled so that ``a^2 + b^2 = 1`` (sign kept), exactly as OpenCV's
``computeCorrespondEpilines``; then ``a x + b y + c`` is a signed distance in pixels. A point at the
epipole has no epipolar line: its line is NaN (OpenCV returns it unnormalised).

Two cameras with one optical centre have no epipolar geometry (F = 0); ``fundamental_matrix``
raises a ValueError for such a pair. All functions broadcast over leading batch dimensions and are
differentiable.
"""
import torch
from torch import Tensor

from core.geometry.cameras import Cameras
from core.geometry.projection import check_shape

# Baselines shorter than this many float epsilons times the cameras' distance to the world origin
# are treated as coincident centres.
_DEGENERATE_BASELINE_EPS = 100.0


def _skew(v: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix: ``_skew(a) @ b == a x b``."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    return torch.stack([
        torch.stack([zero, -z, y], -1),
        torch.stack([z, zero, -x], -1),
        torch.stack([-y, x, zero], -1),
    ], -2)


def fundamental_matrix(K1: Tensor, R1: Tensor, t1: Tensor, K2: Tensor, R2: Tensor, t2: Tensor) -> Tensor:
    """(..., 3, 3) F with ``x2^T F x1 = 0`` for undistorted pixels of camera 1 and camera 2.

    Camera tensors: K, R (..., 3, 3), t (..., 3) in the world -> camera convention; the batch
    shapes broadcast. Raises ValueError if a pair of cameras shares its optical centre.
    """
    for name, value, shape in (("K1", K1, (3, 3)), ("R1", R1, (3, 3)), ("t1", t1, (3,)),
                               ("K2", K2, (3, 3)), ("R2", R2, (3, 3)), ("t2", t2, (3,))):
        check_shape(value, shape, name)
    R_rel = R2 @ R1.transpose(-1, -2)
    t_rel = t2 - (R_rel @ t1.unsqueeze(-1)).squeeze(-1)  # = R2 (C1 - C2): the baseline in camera 2
    scale = t1.detach().norm(dim=-1) + t2.detach().norm(dim=-1)
    tolerance = _DEGENERATE_BASELINE_EPS * torch.finfo(t_rel.dtype).eps * scale
    if bool((t_rel.detach().norm(dim=-1) <= tolerance).any()):
        raise ValueError("fundamental_matrix: two cameras share one optical centre (zero baseline), "
                         "so they have no epipolar geometry; pair only cameras at distinct positions")
    E = _skew(t_rel) @ R_rel
    return torch.linalg.inv(K2).transpose(-1, -2) @ E @ torch.linalg.inv(K1)


def fundamental_from_cameras(cam1: Cameras, cam2: Cameras) -> Tensor:
    """F (..., 3, 3) from image 1 of ``cam1`` to image 2 of ``cam2`` (broadcast batch shapes)."""
    return fundamental_matrix(cam1.K, cam1.R, cam1.t, cam2.K, cam2.R, cam2.t)


def epipolar_lines(points1: Tensor, F: Tensor) -> Tensor:
    """Lines (a, b, c) in image 2, (..., N, 3), of undistorted pixels (..., N, 2) of image 1.

    Normalised so that ``a^2 + b^2 = 1``; NaN for a point at the epipole of image 1.
    """
    check_shape(points1, (-1, 2), "points1")
    check_shape(F, (3, 3), "F")
    homogeneous = torch.cat([points1, torch.ones_like(points1[..., :1])], dim=-1)
    lines = homogeneous @ F.transpose(-1, -2)
    return lines / lines[..., :2].norm(dim=-1, keepdim=True)


def point_line_distance(points: Tensor, lines: Tensor) -> Tensor:
    """Absolute distance (..., N) in pixels of points (..., N, 2) to lines (..., N, 3) ``a x + b y + c = 0``.

    The lines need not be normalised.
    """
    check_shape(points, (-1, 2), "points")
    check_shape(lines, (-1, 3), "lines")
    a, b, c = lines.unbind(-1)
    return (a * points[..., 0] + b * points[..., 1] + c).abs() / torch.hypot(a, b)
