import cv2
import numpy as np
import pytest
import torch

from core.geometry import (Cameras, epipolar_lines, fundamental_from_cameras, fundamental_matrix,
                           point_line_distance, project_points)


def _undistorted_projections(cams: Cameras, points: torch.Tensor) -> torch.Tensor:
    return project_points(points, cams.K, cams.R, cams.t)


def _epipolar_residuals(F, x1, x2):
    h1 = torch.cat([x1, torch.ones_like(x1[..., :1])], -1)
    h2 = torch.cat([x2, torch.ones_like(x2[..., :1])], -1)
    return ((h2 @ F) * h1).sum(-1)


def test_corresponding_points_satisfy_the_epipolar_constraint(generator, make_rig, make_points):
    cams = make_rig(generator, (3,), num_views=2)
    points = make_points(generator, 3, 1, 40)
    x = _undistorted_projections(cams, points)                          # (3, 2, 40, 2)
    F = fundamental_from_cameras(cams[:, 0], cams[:, 1])               # (3, 3, 3)
    lines = epipolar_lines(x[:, 0], F)
    assert point_line_distance(x[:, 1], lines).max() < 1e-8             # pixels
    # the algebraic residual is ~0 relative to its scale |F| |x1| |x2| (pixels ~ 1e3)
    scale = F.norm(dim=(-1, -2)).unsqueeze(-1) * 1e6
    assert (_epipolar_residuals(F, x[:, 0], x[:, 1]).abs() < 1e-12 * scale).all()


def test_fundamental_matrix_matches_opencv_eight_point(h36m_cameras, generator, make_points):
    points = make_points(generator, 1, 60)
    x = _undistorted_projections(h36m_cameras, points)                 # (4, 60, 2)
    for i, j in [(0, 1), (1, 3), (2, 0)]:
        F = fundamental_matrix(h36m_cameras.K[i], h36m_cameras.R[i], h36m_cameras.t[i],
                               h36m_cameras.K[j], h36m_cameras.R[j], h36m_cameras.t[j]).numpy()
        F_cv, _ = cv2.findFundamentalMat(x[i].numpy(), x[j].numpy(), cv2.FM_8POINT)
        F, F_cv = F / np.linalg.norm(F), F_cv / np.linalg.norm(F_cv)   # 1e-6 relative to |F|
        np.testing.assert_allclose(F * np.sign(F[2, 2]), F_cv * np.sign(F_cv[2, 2]), rtol=0, atol=1e-6)


def test_epipolar_lines_match_opencv(h36m_cameras, generator, make_points):
    points = make_points(generator, 1, 50)
    x = _undistorted_projections(h36m_cameras, points)
    F = fundamental_from_cameras(h36m_cameras[0], h36m_cameras[2])
    ours = epipolar_lines(x[0], F)
    expected = cv2.computeCorrespondEpilines(x[0].numpy()[:, None], 1, F.numpy())[:, 0]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6, atol=1e-9)
    assert torch.allclose(ours[:, :2].norm(dim=-1), torch.ones(50, dtype=torch.float64))
    assert point_line_distance(x[2], ours).max() < 1e-8


def test_epipolar_lines_match_opencv_on_random_cameras(generator, make_rig):
    cams = make_rig(generator, num_views=2)
    F = fundamental_from_cameras(cams[0], cams[1])
    pixels = torch.rand(30, 2, generator=generator, dtype=torch.float64) * 1000
    expected = cv2.computeCorrespondEpilines(pixels.numpy()[:, None], 1, F.numpy())[:, 0]
    np.testing.assert_allclose(epipolar_lines(pixels, F).numpy(), expected, rtol=1e-6, atol=1e-9)


def test_point_line_distance_in_pixels():
    lines = torch.tensor([[3.0, 4.0, -10.0], [0.0, 2.0, -4.0]], dtype=torch.float64)  # unnormalised
    points = torch.tensor([[2.0, 1.0], [7.0, -1.0]], dtype=torch.float64)
    # 3*2 + 4*1 - 10 = 0 -> 0 px; the line y = 2 is 3 px from y = -1
    assert torch.allclose(point_line_distance(points, lines), torch.tensor([0.0, 3.0], dtype=torch.float64))
    # moving a point along the unit normal by d moves it d pixels from its normalised epipolar line
    unit = lines / lines[:, :2].norm(dim=-1, keepdim=True)
    moved = points + 2.5 * unit[:, :2]
    assert torch.allclose(point_line_distance(moved, unit), torch.tensor([2.5, 0.5], dtype=torch.float64))


def test_cropped_cameras_keep_the_epipolar_geometry(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=2)
    affine = torch.tensor([[[0.3, -0.1, -40.0], [0.1, 0.3, 10.0]], [[0.25, 0.0, -90.0], [0.0, 0.25, -60.0]]],
                          dtype=torch.float64)
    cropped = cams.with_affine(affine, image_size=(256, 256))
    x = _undistorted_projections(cropped, make_points(generator, 1, 30))
    lines = epipolar_lines(x[0], fundamental_from_cameras(cropped[0], cropped[1]))
    assert point_line_distance(x[1], lines).max() < 1e-9


def test_pairs_broadcast(generator, make_rig):
    cams = make_rig(generator, num_views=4)
    F = fundamental_from_cameras(cams[:2].unsqueeze(-1), cams[2:].unsqueeze(0))   # (2, 1) x (1, 2)
    assert F.shape == (2, 2, 3, 3)
    assert torch.allclose(F[1, 0], fundamental_from_cameras(cams[1], cams[2]), rtol=1e-12)


def test_coincident_centres_raise(generator, make_rig):
    cams = make_rig(generator, num_views=2)
    rotated = Cameras(cams.K[1], cams.R[1], -(cams.R[1] @ cams.centers[0]), cams.dist[1], cams.image_size[1])
    with pytest.raises(ValueError, match="optical centre"):
        fundamental_from_cameras(cams[0], rotated)
    with pytest.raises(ValueError, match="optical centre"):
        fundamental_from_cameras(cams.to(dtype=torch.float32), cams.to(dtype=torch.float32))


def test_epipolar_distance_gradients(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=2)
    x = _undistorted_projections(cams, make_points(generator, 1, 5)) + 1.0
    x1, x2 = x[0].clone().requires_grad_(True), x[1].clone().requires_grad_(True)
    K1 = cams.K[0].clone().requires_grad_(True)

    def distance(a, b, k):
        F = fundamental_matrix(k, cams.R[0], cams.t[0], cams.K[1], cams.R[1], cams.t[1])
        return point_line_distance(b, epipolar_lines(a, F))

    assert torch.autograd.gradcheck(distance, (x1, x2, K1))


def test_shape_errors():
    with pytest.raises(ValueError, match="points1"):
        epipolar_lines(torch.zeros(5, 3), torch.eye(3))
    with pytest.raises(ValueError, match="lines"):
        point_line_distance(torch.zeros(5, 2), torch.zeros(5, 2))
