import cv2
import numpy as np
import pytest
import torch

from core.geometry import (camera_to_world, distort, normalized_to_pixels, pixels_to_normalized, project_points,
                           undistort, undistort_pixels, world_to_camera)

# OpenCV's undistortPoints, iterated until converged (its default is 5 fixed-point steps).
CV_CONVERGED = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 500, 1e-16)


def _cv_project(points, cams, flat_index):
    K, R, t, dist = (getattr(cams, f).reshape(-1, *getattr(cams, f).shape[len(cams.batch_shape):])[flat_index].numpy()
                     for f in ("K", "R", "t", "dist"))
    projected, _ = cv2.projectPoints(points.numpy(), cv2.Rodrigues(R)[0], t, K, dist)
    return projected[:, 0]


def _image_grid(width, height, step=50.0):
    xs, ys = np.meshgrid(np.arange(0.0, width + 1, step), np.arange(0.0, height + 1, step))
    return np.stack([xs.ravel(), ys.ravel()], -1)


def test_world_camera_round_trip(generator, make_rig, make_points):
    cams = make_rig(generator, (2,), num_views=3)
    points = make_points(generator, 2, 3, 20)
    cam = world_to_camera(points, cams.R, cams.t)
    expected = (cams.R.unsqueeze(-3) @ points.unsqueeze(-1)).squeeze(-1) + cams.t.unsqueeze(-2)
    assert torch.allclose(cam, expected, rtol=1e-12)
    assert torch.allclose(camera_to_world(cam, cams.R, cams.t), points, rtol=1e-12, atol=1e-9)
    assert (cam[..., 2] > 0).all()  # the rig looks at the capture volume


def test_project_points_matches_opencv_on_random_cameras(generator, make_rig, make_points):
    cams = make_rig(generator, (2, 3), num_views=2, skew=0.0)  # OpenCV ignores K[0, 1]
    points = make_points(generator, 2, 3, 2, 100)
    ours = project_points(points, cams.K, cams.R, cams.t, cams.dist).reshape(-1, 100, 2)
    for i, flat_points in enumerate(points.reshape(-1, 100, 3)):
        expected = _cv_project(flat_points, cams, i)
        np.testing.assert_allclose(ours[i].numpy(), expected, rtol=1e-6, atol=1e-9)


def test_project_points_matches_opencv_on_h36m(h36m_cameras, generator, make_points):
    points = make_points(generator, 500)
    ours = h36m_cameras.project(points.expand(4, 500, 3))
    for v in range(4):
        np.testing.assert_allclose(ours[v].numpy(), _cv_project(points, h36m_cameras, v), rtol=1e-6, atol=1e-9)


def test_project_without_distortion(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=3, skew=0.0)
    points = make_points(generator, 3, 30)
    plain = project_points(points, cams.K, cams.R, cams.t)
    assert torch.equal(plain, project_points(points, cams.K, cams.R, cams.t, torch.zeros_like(cams.dist)))
    expected, _ = cv2.projectPoints(points[1].numpy(), cv2.Rodrigues(cams.R[1].numpy())[0], cams.t[1].numpy(),
                                    cams.K[1].numpy(), None)
    np.testing.assert_allclose(plain[1].numpy(), expected[:, 0], rtol=1e-6)


def test_cameras_broadcast_over_leading_point_dimensions(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=3)                  # (V,)
    points = make_points(generator, 5, 3, 7)                 # (T, V, N)
    ours = cams.project(points)
    assert ours.shape == (5, 3, 7, 2)
    assert torch.allclose(ours[2, 1], cams[1].project(points[2, 1]), rtol=1e-14)
    shared = cams.project(points[0, 0].expand(3, 7, 3))      # one point set seen by every camera
    assert torch.allclose(shared[2], cams[2].project(points[0, 0]))


def test_points_behind_the_camera_are_nan_with_zero_gradient(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=1)[0]
    points = make_points(generator, 4)
    behind = 2 * cams.centers - points[:2]                   # mirrored through the optical centre: z < 0
    on_plane = cams.camera_to_world(torch.tensor([[100.0, 50.0, 0.0]], dtype=torch.float64))
    all_points = torch.cat([points, behind, on_plane]).requires_grad_(True)
    pixels = cams.project(all_points)
    assert torch.isfinite(pixels[:4]).all()
    assert torch.isnan(pixels[4:]).all()
    assert torch.allclose(pixels[:4], cams.project(points), rtol=1e-14)
    pixels[:4].sum().backward()
    assert torch.isfinite(all_points.grad).all() and (all_points.grad[4:] == 0).all()


def test_general_affine_k_round_trip():
    # rotation + anisotropic scale + skew + shift, as left by a rotated crop
    K = torch.tensor([[[700.0, 12.0, 300.0], [-90.0, 650.0, 220.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    xn = torch.randn(1, 50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    pixels = normalized_to_pixels(xn, K)
    homogeneous = torch.cat([xn, torch.ones_like(xn[..., :1])], -1) @ K.transpose(-1, -2)
    assert torch.allclose(pixels, homogeneous[..., :2], rtol=1e-12)
    assert torch.allclose(pixels_to_normalized(pixels, K), xn, rtol=1e-10, atol=1e-12)


def test_undistort_inverts_distort(generator, make_rig):
    cams = make_rig(generator, (50,), num_views=1, distortion=1.5).reshape(50)
    xn = (torch.rand(50, 200, 2, generator=generator, dtype=torch.float64) - 0.5) * 1.2  # |x| <= 0.6, corners
    recovered = undistort(distort(xn, cams.dist), cams.dist)
    assert (recovered - xn).abs().max() < 1e-12


def test_undistort_pixels_matches_opencv_on_h36m(h36m_cameras):
    grid = _image_grid(1000, 1002)
    ours = h36m_cameras.undistort_pixels(torch.from_numpy(grid).expand(4, -1, -1))
    for v in range(4):
        K, dist = h36m_cameras.K[v].numpy(), h36m_cameras.dist[v].numpy()
        expected = cv2.undistortPoints(grid[:, None], K, dist, R=None, P=K, criteria=CV_CONVERGED)[:, 0]
        np.testing.assert_allclose(ours[v].numpy(), expected, rtol=1e-6)
        # and it is the inverse of the forward model, to far below 1e-3 px
        xn = pixels_to_normalized(ours[v:v + 1], h36m_cameras.K[v:v + 1])
        redistorted = normalized_to_pixels(distort(xn, h36m_cameras.dist[v:v + 1]), h36m_cameras.K[v:v + 1])
        assert (redistorted[0].numpy() - grid).__abs__().max() < 1e-9


def test_undistort_pixels_matches_opencv_on_random_cameras(generator, make_rig):
    cams = make_rig(generator, num_views=5, skew=0.0)
    grid = _image_grid(1000, 1000, step=100.0)
    ours = undistort_pixels(torch.from_numpy(grid).expand(5, -1, -1), cams.K, cams.dist)
    for v in range(5):
        K, dist = cams.K[v].numpy(), cams.dist[v].numpy()
        expected = cv2.undistortPoints(grid[:, None], K, dist, R=None, P=K, criteria=CV_CONVERGED)[:, 0]
        np.testing.assert_allclose(ours[v].numpy(), expected, rtol=1e-6)


def test_undistort_float32_error_is_far_below_a_pixel(h36m_cameras):
    grid = torch.from_numpy(_image_grid(1000, 1002)).expand(4, -1, -1)
    exact = h36m_cameras.undistort_pixels(grid)
    single = h36m_cameras.to(dtype=torch.float32).undistort_pixels(grid.float())
    assert (single.double() - exact).abs().max() < 1e-3


def test_undistort_without_preimage_is_nan():
    dist = torch.tensor([[-0.5, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # r (1 - r^2 / 2) peaks at 0.544
    xd = torch.tensor([[[0.3, 0.1], [0.8, 0.0], [float("nan"), 0.0]]], dtype=torch.float64)
    dist.requires_grad_(True)
    xd.requires_grad_(True)
    result = undistort(xd, dist)
    assert torch.isfinite(result[0, 0]).all() and torch.allclose(distort(result, dist)[0, 0], xd[0, 0])
    assert torch.isnan(result[0, 1:]).all()
    result[0, 0].sum().backward()                               # no NaN leaks into shared gradients
    assert torch.isfinite(dist.grad).all() and torch.isfinite(xd.grad).all() and (xd.grad[0, 1:] == 0).all()


def test_projection_gradients(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=2)
    points = make_points(generator, 2, 3)
    inputs = [x.clone().requires_grad_(True) for x in (points, cams.K, cams.R, cams.t, cams.dist)]
    assert torch.autograd.gradcheck(project_points, inputs)


def test_undistort_gradient_is_the_implicit_derivative(generator, make_rig):
    cams = make_rig(generator, num_views=2)
    xd = ((torch.rand(2, 5, 2, generator=generator, dtype=torch.float64) - 0.5)).requires_grad_(True)
    dist = cams.dist.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: undistort(a, b), (xd, dist))
    pixels = (torch.rand(2, 5, 2, generator=generator, dtype=torch.float64) * 1000).requires_grad_(True)
    K = cams.K.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, k, d: undistort_pixels(p, k, d), (pixels, K, dist))


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="points_world"):
        world_to_camera(torch.zeros(4, 2), torch.eye(3), torch.zeros(3))
    with pytest.raises(ValueError, match="dist"):
        distort(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="K"):
        project_points(torch.zeros(4, 3), torch.eye(2), torch.eye(3), torch.zeros(3))
