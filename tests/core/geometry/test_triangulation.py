import cv2
import numpy as np
import pytest
import torch

from core.geometry import (Cameras, Triangulation, project_points, reprojection_errors, triangulate_cameras,
                           triangulate_dlt)


def _undistorted(cams: Cameras, points: torch.Tensor) -> torch.Tensor:
    """Undistorted pixels (*B, V, N, 2) of world points (*B, N, 3) in cameras (*B, V)."""
    return project_points(points.unsqueeze(-3), cams.K, cams.R, cams.t)


def _normalizing_similarity(cams: Cameras) -> torch.Tensor:
    """The documented 3D normalisation H (4, 4): mean camera centre, RMS distance from it."""
    centers = cams.centers
    center = centers.mean(0)
    scale = (centers - center).square().sum(-1).mean().sqrt()
    H = torch.eye(4, dtype=centers.dtype)
    H[:3, :3] *= scale
    H[:3, 3] = center
    return H


def test_exact_points_are_recovered_for_any_batch_shape(generator, make_rig, make_points):
    cams = make_rig(generator, (2, 3), num_views=4)
    points = make_points(generator, 2, 3, 17)
    result = triangulate_dlt(_undistorted(cams, points), cams.projection_matrices)
    assert isinstance(result, Triangulation)
    assert result.points_3d.shape == (2, 3, 17, 3) and result.valid.shape == result.num_views.shape == (2, 3, 17)
    assert result.valid.all() and (result.num_views == 4).all() and result.num_views.dtype == torch.int64
    assert torch.allclose(result.points_3d, points, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("views", [(0, 1), (2, 3), (3, 0)])
def test_matches_opencv_on_h36m(h36m_cameras, generator, make_points, views):
    cams = h36m_cameras[list(views)]
    points = make_points(generator, 200)
    x = _undistorted(cams, points)
    P = cams.projection_matrices
    expected = cv2.triangulatePoints(P[0].numpy(), P[1].numpy(), x[0].numpy().T, x[1].numpy().T)
    expected = (expected[:3] / expected[3]).T
    result = triangulate_dlt(x, P)
    np.testing.assert_allclose(result.points_3d.numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.points_3d.numpy(), points.numpy(), rtol=1e-6, atol=1e-6)


def test_noisy_weighted_system_is_opencvs_after_the_normalisation(generator, make_rig, make_points):
    """With noise the solution depends on the documented conditioning; it is OpenCV's DLT of the
    normalised cameras, with each view's weight folded into its P."""
    cams = make_rig(generator, num_views=2)
    points = make_points(generator, 100)
    x = _undistorted(cams, points) + 3.0 * torch.randn(2, 100, 2, generator=generator, dtype=torch.float64)
    view_weights = torch.tensor([0.3, 1.7], dtype=torch.float64)
    result = triangulate_dlt(x, cams.projection_matrices, view_weights[:, None].expand(2, 100))
    H = _normalizing_similarity(cams)
    P = view_weights[:, None, None] * cams.projection_matrices @ H
    normalized = cv2.triangulatePoints(P[0].numpy(), P[1].numpy(), x[0].numpy().T, x[1].numpy().T)
    expected = (H.numpy() @ normalized)
    expected = (expected[:3] / expected[3]).T
    np.testing.assert_allclose(result.points_3d.numpy(), expected, rtol=1e-6, atol=1e-6)
    # a sanity bound on the noise: ~3 px at ~5 m with f ~ 1000 px is centimetres, not metres
    assert (result.points_3d - points).norm(dim=-1).median() < 100.0


def test_result_does_not_depend_on_the_scale_of_p_or_of_all_weights(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=4)
    points = make_points(generator, 30)
    x = _undistorted(cams, points) + torch.randn(4, 30, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(4, 30, generator=generator, dtype=torch.float64) + 0.1
    reference = triangulate_dlt(x, cams.projection_matrices, weights).points_3d
    scales = torch.tensor([2.0, -0.01, 1e3, 0.5], dtype=torch.float64)[:, None, None]
    rescaled = triangulate_dlt(x, scales * cams.projection_matrices, 7.0 * weights).points_3d
    assert torch.allclose(rescaled, reference, rtol=1e-9, atol=1e-7)


def test_float32_is_accurate_on_h36m(h36m_cameras, generator, make_points):
    points = make_points(generator, 500)
    x = _undistorted(h36m_cameras, points)
    single = triangulate_dlt(x.float(), h36m_cameras.projection_matrices.float())
    assert single.valid.all()
    assert (single.points_3d.double() - points).norm(dim=-1).max() < 0.05  # mm


def test_zero_weight_outlier_view_is_ignored(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=4)
    points = make_points(generator, 10)
    x = _undistorted(cams, points)
    x[2, 4] += 200.0                                            # a gross detection error
    weights = torch.ones(4, 10, dtype=torch.float64)
    polluted = triangulate_dlt(x, cams.projection_matrices, weights)
    assert (polluted.points_3d[4] - points[4]).norm() > 10.0
    weights[2, 4] = 0.0
    result = triangulate_dlt(x, cams.projection_matrices, weights)
    assert torch.allclose(result.points_3d, points, rtol=1e-9, atol=1e-8)
    assert result.num_views[4] == 3 and (result.num_views[torch.arange(10) != 4] == 4).all()


def test_missing_observations_do_not_leak(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=4)
    points = make_points(generator, 8)
    clean = _undistorted(cams, points) + torch.randn(4, 8, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(4, 8, generator=generator, dtype=torch.float64) + 0.5
    reference = triangulate_dlt(clean, cams.projection_matrices, weights)

    x, w = clean.clone(), weights.clone()
    x[0, 3] = float("nan")                                      # missing detection
    x[1, 5, 0] = float("inf")
    w[2, 6] = float("nan")                                      # broken confidence
    w[3, 6] = -1.0
    x[0, 7], x[1, 7], x[2, 7] = float("nan"), float("nan"), float("nan")  # seen once only
    x.requires_grad_(True)
    w.requires_grad_(True)
    result = triangulate_dlt(x, cams.projection_matrices, w)

    assert result.num_views.tolist() == [4, 4, 4, 3, 4, 3, 2, 1]
    assert result.valid.tolist() == [True] * 7 + [False]
    assert torch.isnan(result.points_3d[7]).all()
    untouched = [0, 1, 2, 4]
    assert torch.allclose(result.points_3d[untouched], reference.points_3d[untouched], rtol=1e-12)
    # a NaN observation is exactly a zero-weight one
    zero_weight = weights.clone()
    zero_weight[0, 3] = 0.0
    expected = triangulate_dlt(clean, cams.projection_matrices, zero_weight).points_3d[3]
    assert torch.allclose(result.points_3d[3], expected, rtol=1e-12)

    result.points_3d[result.valid].sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()
    assert (x.grad[0, 3] == 0).all() and (w.grad[2, 6] == 0) and (w.grad[3, 6] == 0)
    assert (x.grad[:, 7] == 0).all()                            # invalid point: zero gradient
    assert (x.grad[1, 3] != 0).any() and (w.grad[1, 3] != 0)


def test_too_few_views(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=3)
    points = make_points(generator, 4)
    x = _undistorted(cams, points)
    x[0, 1] = float("nan")
    x[:2, 2] = float("nan")
    result = triangulate_dlt(x, cams.projection_matrices, min_views=3)
    assert result.valid.tolist() == [True, False, False, True]
    assert result.num_views.tolist() == [3, 2, 1, 3]
    assert torch.isnan(result.points_3d[1:3]).all()
    single_view = triangulate_dlt(x[:1], cams.projection_matrices[:1])
    assert not single_view.valid.any() and torch.isnan(single_view.points_3d).all()
    assert single_view.points_3d.shape == (4, 3)
    with pytest.raises(ValueError, match="min_views"):
        triangulate_dlt(x, cams.projection_matrices, min_views=1)


def test_views_without_a_projective_camera_are_unusable(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=3)
    points = make_points(generator, 5)
    x = _undistorted(cams, points)
    P = cams.projection_matrices.clone()
    P[1] = 0.0                                                  # a padded, absent camera
    result = triangulate_dlt(x, P)
    assert (result.num_views == 2).all()
    assert torch.allclose(result.points_3d, points, rtol=1e-9, atol=1e-8)


def test_rank_deficient_systems_are_invalid(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=1)
    points = make_points(generator, 3)
    x = _undistorted(cams, points).expand(2, 3, 2)              # the same camera twice: no baseline
    result = triangulate_dlt(x, cams.projection_matrices.expand(2, 3, 4))
    assert not result.valid.any() and torch.isnan(result.points_3d).all()


def test_cameras_broadcast_over_frames(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=4)                     # (V,)
    points = make_points(generator, 6, 17)                      # (T, J)
    x = _undistorted(cams, points)                              # (T, V, J, 2)
    result = triangulate_dlt(x, cams.projection_matrices, torch.ones(6, 4, 17, dtype=torch.float64))
    assert result.points_3d.shape == (6, 17, 3)
    assert torch.allclose(result.points_3d, points, rtol=1e-9, atol=1e-8)


def test_gradients_match_finite_differences(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=3)
    points = make_points(generator, 2)
    x = (_undistorted(cams, points) + torch.randn(3, 2, 2, generator=generator, dtype=torch.float64))
    w = torch.rand(3, 2, generator=generator, dtype=torch.float64) + 0.5
    P = cams.projection_matrices

    def triangulate(points_2d, weights, projection_matrices):
        return triangulate_dlt(points_2d, projection_matrices, weights).points_3d

    inputs = (x.requires_grad_(True), w.requires_grad_(True), P.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(triangulate, inputs)


def test_triangulate_cameras_undistorts_first(h36m_cameras, generator, make_points):
    points = make_points(generator, 2, 17)                      # (T, J)
    keypoints = h36m_cameras.project(points.unsqueeze(-3))      # (T, V, J, 2) distorted pixels
    result = triangulate_cameras(h36m_cameras, keypoints)
    assert result.valid.all()
    np.testing.assert_allclose(result.points_3d.numpy(), points.numpy(), rtol=1e-6, atol=1e-6)
    # ignoring the (real) distortion would be millimetres to centimetres off
    naive = triangulate_dlt(keypoints, h36m_cameras.projection_matrices).points_3d
    assert (naive - points).norm(dim=-1).max() > 1.0


def test_triangulate_cameras_in_crops(generator, make_rig, make_points):
    cams = make_rig(generator, (2,), num_views=3)
    affine = torch.tensor([[0.25, 0.05, -60.0], [-0.05, 0.25, -40.0]], dtype=torch.float64).expand(2, 3, 2, 3)
    cropped = cams.with_affine(affine, image_size=(256, 256))
    points = make_points(generator, 2, 17)
    result = triangulate_cameras(cropped, cropped.project(points.unsqueeze(-3)))
    assert torch.allclose(result.points_3d, points, rtol=1e-9, atol=1e-7)


def test_reprojection_errors(generator, make_rig, make_points):
    cams = make_rig(generator, (2,), num_views=3)
    points = make_points(generator, 2, 5)
    keypoints = cams.project(points.unsqueeze(-3))              # (2, 3, 5, 2)
    errors = reprojection_errors(points, cams, keypoints)
    assert errors.shape == (2, 3, 5) and errors.max() < 1e-9
    keypoints[1, 2, 4] += torch.tensor([3.0, 4.0], dtype=torch.float64)
    keypoints[0, 0, 0] = float("nan")
    errors = reprojection_errors(points, cams, keypoints)
    assert torch.isclose(errors[1, 2, 4], torch.tensor(5.0, dtype=torch.float64))
    assert torch.isnan(errors[0, 0, 0]) and torch.isfinite(errors.flatten()[1:]).all()


def test_shape_errors(generator, make_rig):
    P = make_rig(generator, num_views=3).projection_matrices
    with pytest.raises(ValueError, match="views"):
        triangulate_dlt(torch.zeros(2, 5, 2, dtype=torch.float64), P)
    with pytest.raises(ValueError, match="weights"):
        triangulate_dlt(torch.zeros(3, 5, 2, dtype=torch.float64), P, torch.ones(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="projection_matrices"):
        triangulate_dlt(torch.zeros(3, 5, 2, dtype=torch.float64), P[..., :3])


@pytest.mark.parametrize("noise_px", [0.0, 2.0, 40.0])
def test_fast_float64_path_gives_the_svd_solution(generator, make_rig, make_points, noise_px):
    from core.geometry.eigen4 import smallest_eigenvectors
    from core.geometry.triangulation import _normalize_cameras, _null_vectors_svd
    cams = make_rig(generator, num_views=4)
    points = make_points(generator, 64, 17)
    x = _undistorted(cams, points) + noise_px * torch.randn(64, 4, 17, 2, generator=generator, dtype=torch.float64)
    P = _normalize_cameras(cams.projection_matrices)[0]                      # as triangulate_dlt solves it
    rows = x.unsqueeze(-1) * P[:, None, 2:3, :] - P[:, None, :2, :]          # (T, V, J, 2, 4)
    A = rows.movedim(1, 2).reshape(64 * 17, 8, 4)
    # plus a rank-0 system and systems whose two smallest singular values are close (inverse iteration cannot
    # separate them in 3 steps)
    Q = torch.linalg.qr(torch.randn(50, 8, 4, generator=generator, dtype=torch.float64))[0]
    R = torch.linalg.qr(torch.randn(50, 4, 4, generator=generator, dtype=torch.float64))[0]
    close = Q @ torch.diag_embed(torch.tensor([1.0, 0.5, 1e-3, 0.9e-3], dtype=torch.float64).expand(50, 4)) @ R
    A = torch.cat([A, torch.zeros(1, 8, 4, dtype=A.dtype), close])
    M = A.transpose(-1, -2) @ A
    fast, settled = smallest_eigenvectors([[M[:, i, j] for j in range(4)] for i in range(4)])
    fast = torch.stack(fast, -1)
    exact, exact_ok = _null_vectors_svd(A)
    assert not settled[-51:].any() and settled[:-51].float().mean() > 0.9   # the close and rank-0 ones: the SVD's
    sign = torch.sign((fast * exact).sum(-1, keepdim=True))
    assert torch.allclose(fast[settled] * sign[settled], exact[settled], atol=1e-12)


def test_points_behind_the_cameras_are_invalid(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=3)
    points = make_points(generator, 4)
    centre = cams.centers.mean(0)
    behind = centre + 3 * (centre - points)          # far on the other side of the rig: behind the cameras
    P = cams.projection_matrices
    for world, in_front in ((points, True), (behind, False)):
        h = torch.cat([world, torch.ones(4, 1, dtype=world.dtype)], -1)
        image = torch.einsum("vij,nj->vni", P, h)
        pixels = image[..., :2] / image[..., 2:]       # the pinhole equations, whatever the depth's sign
        depth_ok = bool((image[..., 2] > 0).all())
        for sign in (1.0, -1.0):  # -P is the same camera (det M < 0): depth is measured along its own axis
            result = triangulate_dlt(pixels, sign * P)
            assert depth_ok == in_front and bool(result.valid.all()) == in_front
            if in_front:
                assert torch.allclose(result.points_3d, world, atol=1e-6)
