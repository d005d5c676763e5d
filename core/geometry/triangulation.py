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
  ``_smallest_eigenvectors``.)

Missing data: a view is unusable for a point when its 2D point is not finite, its weight is not a
finite positive number, or its P is not a finite projective camera. Its rows are exactly zero (no
NaN reaches other points or their gradients). Points with fewer than ``min_views`` usable views, a
rank-deficient system (e.g. all their views share one centre), or a solution behind one of the
cameras that saw them with a weight of at least 5 % of their largest (no real point projects there)
come out as NaN with ``valid=False``. Their gradient is zero; only for the rank-deficient case is it undefined.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from core.geometry import fused
from core.geometry.cameras import Cameras
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


def _adjugate(m):
    """The adjugate (``det(M) M^-1``) of 4x4 matrices given entry by entry (``m[i][j]``, tensors of one shape), from
    their 2x2 minors; entry by entry."""
    (m00, m01, m02, m03), (m10, m11, m12, m13), (m20, m21, m22, m23), (m30, m31, m32, m33) = m
    s0, s1, s2 = m00 * m11 - m10 * m01, m00 * m12 - m10 * m02, m00 * m13 - m10 * m03
    s3, s4, s5 = m01 * m12 - m11 * m02, m01 * m13 - m11 * m03, m02 * m13 - m12 * m03
    c0, c1, c2 = m20 * m31 - m30 * m21, m20 * m32 - m30 * m22, m20 * m33 - m30 * m23
    c3, c4, c5 = m21 * m32 - m31 * m22, m21 * m33 - m31 * m23, m22 * m33 - m32 * m23
    return ((m11 * c5 - m12 * c4 + m13 * c3, -m01 * c5 + m02 * c4 - m03 * c3,
             m31 * s5 - m32 * s4 + m33 * s3, -m21 * s5 + m22 * s4 - m23 * s3),
            (-m10 * c5 + m12 * c2 - m13 * c1, m00 * c5 - m02 * c2 + m03 * c1,
             -m30 * s5 + m32 * s2 - m33 * s1, m20 * s5 - m22 * s2 + m23 * s1),
            (m10 * c4 - m11 * c2 + m13 * c0, -m00 * c4 + m01 * c2 - m03 * c0,
             m30 * s4 - m31 * s2 + m33 * s0, -m20 * s4 + m21 * s2 - m23 * s0),
            (-m10 * c3 + m11 * c1 - m12 * c0, m00 * c3 - m01 * c1 + m02 * c0,
             -m30 * s3 + m31 * s1 - m32 * s0, m20 * s3 - m21 * s1 + m22 * s0))


def _column(m, j: int):
    return [row[j] for row in m]


def _times(m, h):
    """The matrix ``m`` (entry by entry) times the vector ``h`` (4 tensors)."""
    return [sum(m_ij * h_j for m_ij, h_j in zip(row, h)) for row in m]


def _unit(h):
    norm = sum(h_i * h_i for h_i in h).sqrt().clamp_min(torch.finfo(h[0].dtype).tiny)
    return [h_i / norm for h_i in h]


def _smallest_eigenvectors(m):
    """The unit eigenvectors (4 tensors) of the smallest eigenvalue of the 4x4 normal matrices ``M = A^T A``, given
    entry by entry (``m[i][j]``, tensors of one shape), and whether each settled: inverse iteration with the
    adjugate (``adj(M) = det(M) M^-1``, started from its largest column, which already leans towards the smallest
    eigenvector by the eigenvalue ratios), 6 steps: each shrinks the error by the ratio of the two smallest
    eigenvalues, about 1e-5 for 2 px of noise on a 4-view point, 3e-3 (1e-2 for the worst percent) for 40 px.
    A system has not settled when its eigen-residual is above 1e-9 |M|, its last step above 1e-10 (close
    smallest eigenvalues), it is nearly rank-deficient (``tr adj(M)``, the sum of the eigenvalue triples, below
    1e6 eps tr(M)^3) or the result is not finite; those are for the SVD to solve (``_null_vectors_svd``), so
    the results and the rank decisions are the SVD's (to 1e-12 in the tests). Float64 only: the normal matrix
    squares the condition number. Entry by entry, so that compiled it is one loop over the points."""
    adjugate = _adjugate(m)
    diagonal = [adjugate[i][i] for i in range(4)]
    best, h = diagonal[0], _column(adjugate, 0)
    for j in range(1, 4):
        larger = diagonal[j] > best
        best = torch.where(larger, diagonal[j], best)
        h = [torch.where(larger, new, old) for new, old in zip(_column(adjugate, j), h)]
    for _ in range(6):
        previous = h
        h = _unit(_times(adjugate, h))
    # adj(M) is positive semi-definite, so the iterates keep their sign: a last step that still moved h means
    # the two smallest eigenvalues are close and the iteration has not separated them
    step = sum((h_i - p_i) ** 2 for h_i, p_i in zip(h, previous)).sqrt()
    Mh = _times(m, h)
    rayleigh = sum(h_i * Mh_i for h_i, Mh_i in zip(h, Mh))
    residual = sum((Mh_i - rayleigh * h_i) ** 2 for h_i, Mh_i in zip(h, Mh)).sqrt()
    size = sum(m[i][i] for i in range(4))
    settled = (residual <= 1e-9 * size) & (step <= 1e-10) & \
        (sum(diagonal) > 1e6 * torch.finfo(size.dtype).eps * size ** 3) & \
        torch.isfinite(h[0] + h[1] + h[2] + h[3])
    return h, settled


def _usable_observations(points_2d: Tensor, weights: Tensor, view_ok: Tensor):
    """(usable (*B, V, N), points with zeros where unusable, weights with zeros where unusable)."""
    usable = (torch.isfinite(points_2d).all(-1) & torch.isfinite(weights) & (weights > 0) & view_ok.unsqueeze(-1))
    x = torch.where(usable.unsqueeze(-1), points_2d, torch.zeros_like(points_2d))
    w = torch.where(usable, weights, torch.zeros_like(weights))
    return usable, x, w


def _view_rows(x: Tensor, P: Tensor):
    """The two DLT rows of every view's point, unweighted: ``x P[2] - P[0]`` and ``y P[2] - P[1]`` (*B, V, N, 4)."""
    P = P.unsqueeze(-3)
    return x[..., 0:1] * P[..., 2, :] - P[..., 0, :], x[..., 1:2] * P[..., 2, :] - P[..., 1, :]


def _solution(h, solvable: Tensor, usable: Tensor, w: Tensor, P: Tensor, facing: Tensor, center: Tensor,
              scale: Tensor):
    """World points (*B, N, 3) (NaN where not valid) and ``valid`` from the normalised homogeneous solutions h
    (4 tensors (*B, N)) of the systems that are ``solvable`` (enough views, rank >= 3).

    Cheirality: a point behind a camera that saw it is no solution (depth = sign(det M) (P X)_3 / X_4, with
    ``facing`` the sign (*B, V)); views with a negligible weight (under 5 % of the point's largest) hardly shaped
    the solution and are not asked."""
    ok = solvable & (h[3] != 0)
    h_w = torch.where(ok, h[3], torch.ones_like(h[3]))
    points = center.unsqueeze(-2) + scale[..., None, None] * torch.stack(h[:3], -1) / h_w.unsqueeze(-1)
    depth_row = P[..., 2, :].unsqueeze(-2).unbind(-1)                                     # 4 x (*B, V, 1)
    depth = facing.unsqueeze(-1) * sum(p * h_k.unsqueeze(-2) for p, h_k in zip(depth_row, h)) / h_w.unsqueeze(-2)
    weighty = usable & (w >= 0.05 * w.amax(-2, keepdim=True))
    in_front = ((depth > 0) | ~weighty).all(-2)                                              # (*B, N)
    valid = ok & in_front & torch.isfinite(points).all(-1)
    return torch.where(valid.unsqueeze(-1), points, torch.full_like(points, float("nan"))), valid


def _dlt_by_svd(points_2d, weights, P, view_ok, facing, center, scale, min_views: int):
    """The DLT by the SVD of the weighted design matrix A (*B, N, 2V, 4): differentiable, any float type.
    Returns (points, valid, count)."""
    usable, x, w = _usable_observations(points_2d, weights, view_ok)
    first, second = _view_rows(x, P)
    rows = w[..., None, None] * torch.stack([first, second], -2)                           # (*B, V, N, 2, 4)
    A = rows.movedim(-4, -3).flatten(-3, -2)                                                # (*B, N, 2V, 4)
    count = usable.sum(-2)
    enough = count >= min_views
    # Points without enough views get a harmless stand-in system, so that the SVD (and its
    # gradient, which needs distinct singular values) stays finite; their result is discarded.
    stand_in = A.new_zeros(A.shape[-2:])
    stand_in[:4] = torch.diag(torch.arange(4.0, 0.0, -1.0, dtype=A.dtype, device=A.device))
    h, rank_ok = _null_vectors_svd(torch.where(enough[..., None, None], A, stand_in))
    points, valid = _solution(h.unbind(-1), enough & rank_ok, usable, w, P, facing, center, scale)
    return points, valid, count


def _dlt_by_normal_matrix(points_2d, weights, P, view_ok, facing, center, scale, min_views: int):
    """The DLT from the 4x4 normal matrix ``A^T A = sum_v w_v^2 (a a^T + b b^T)`` accumulated over the views
    entry by entry without building A, solved by ``_smallest_eigenvectors``: float64 without gradients, one graph
    (``fused.run`` compiles it for large batches into one loop over the points). Returns (points, valid, count,
    needs_svd): the points whose iteration did not settle are left for the SVD."""
    usable, x, w = _usable_observations(points_2d, weights, view_ok)
    first, second = (rows.unbind(-1) for rows in _view_rows(x, P))                             # 4 x (*B, V, N)
    squared = w * w
    upper = {(i, j): (squared * (first[i] * first[j] + second[i] * second[j])).sum(-2)
             for i in range(4) for j in range(i, 4)}
    m = [[upper[min(i, j), max(i, j)] for j in range(4)] for i in range(4)]
    count = usable.sum(-2)
    enough = count >= min_views
    h, settled = _smallest_eigenvectors(m)
    points, valid = _solution(h, enough & settled, usable, w, P, facing, center, scale)
    return points, valid, count, enough & ~settled


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
    weights = torch.ones_like(points_2d[..., 0]) if weights is None else weights.expand(*batch, num_views, num_points)
    cameras = (P, view_ok, facing, center, scale)
    gradients = torch.is_grad_enabled() and any(t.requires_grad for t in (points_2d, weights, projection_matrices))
    if points_2d.dtype != torch.float64 or gradients or points_2d.numel() == 0:
        points, valid, count = _dlt_by_svd(points_2d, weights, *cameras, min_views)
        return Triangulation(points, valid, count)
    with torch.no_grad():
        points, valid, count, needs_svd = fused.run(_dlt_by_normal_matrix, points_2d.numel() // 2, points_2d, weights,
                                                     *cameras, min_views)
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
