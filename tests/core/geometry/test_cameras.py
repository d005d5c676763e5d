import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch

from core.geometry import Cameras, project_points


def test_create_defaults_and_shapes():
    K = torch.tensor([[1000.0, 0.0, 500.0], [0.0, 1000.0, 400.0], [0.0, 0.0, 1.0]])
    cams = Cameras.create(K.expand(2, 3, 3), torch.eye(3).expand(2, 3, 3), [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]],
                          dist=torch.full((2, 4), 0.1))
    assert cams.batch_shape == (2,) and len(cams) == 2 and cams.dtype == torch.float64
    assert torch.equal(cams.dist[:, 4], torch.zeros(2, dtype=torch.float64))  # k3 padded
    assert torch.equal(cams.image_size, torch.tensor([[1000.0, 800.0]] * 2, dtype=torch.float64))


@pytest.mark.parametrize("field, value", [("K", torch.zeros(2, 3, 4)), ("t", torch.zeros(3, 3)),
                                          ("dist", torch.zeros(2, 4))])
def test_rejects_bad_shapes(field, value):
    fields = dict(K=torch.zeros(2, 3, 3), R=torch.zeros(2, 3, 3), t=torch.zeros(2, 3), dist=torch.zeros(2, 5),
                  image_size=torch.zeros(2, 2))
    fields[field] = value
    with pytest.raises(ValueError, match=f"Cameras.{field}"):
        Cameras(**fields)


def test_indexing_stack_reshape(generator, make_rig):
    cams = make_rig(generator, (3,), num_views=4)
    assert torch.equal(cams[1].K, cams.K[1]) and cams[1].batch_shape == (4,)
    assert torch.equal(cams[:, 2].t, cams.t[:, 2]) and cams[:, 2].batch_shape == (3,)
    assert torch.equal(cams[..., 2].R, cams.R[:, 2])  # Ellipsis indexes batch dims, never the 3x3
    assert torch.equal(cams[1, 3].dist, cams.dist[1, 3]) and cams[1, 3].batch_shape == ()
    mask = torch.tensor([True, False, True])
    assert torch.equal(cams[mask].image_size, cams.image_size[mask])
    stacked = Cameras.stack([cams[0], cams[2]], dim=0)
    assert torch.equal(stacked.K, cams.K[[0, 2]])
    assert torch.equal(Cameras.cat([cams, cams], dim=1).t, torch.cat([cams.t, cams.t], dim=1))
    assert cams.reshape(12).batch_shape == (12,) and torch.equal(cams.reshape(12).K, cams.K.reshape(12, 3, 3))
    assert cams[0].unsqueeze(0).expand(5, 4).batch_shape == (5, 4)
    assert cams.unsqueeze(-1).batch_shape == (3, 4, 1)


def test_to_dtype(generator, make_rig):
    cams = make_rig(generator, num_views=2)
    single = cams.to(dtype=torch.float32)
    assert all(getattr(single, f.name).dtype == torch.float32 for f in dataclasses.fields(single))
    assert torch.allclose(single.K.double(), cams.K, rtol=1e-6)


def test_centers_and_projection_matrices(generator, make_rig, make_points):
    cams = make_rig(generator, (2,), num_views=3)
    # the centre maps to the camera-frame origin
    origin = cams.world_to_camera(cams.centers.unsqueeze(-2))
    assert origin.abs().max() < 1e-9
    # P = K [R | t] equals OpenCV's composition and maps points to undistorted pixels
    points = make_points(generator, 2, 3, 10)
    homogeneous = torch.cat([points, torch.ones_like(points[..., :1])], -1) @ cams.projection_matrices.transpose(-1, -2)
    undistorted = homogeneous[..., :2] / homogeneous[..., 2:]
    assert torch.allclose(undistorted, project_points(points, cams.K, cams.R, cams.t), rtol=1e-12, atol=1e-9)
    for b in range(2):
        for v in range(3):
            rvec = cv2.Rodrigues(cams.R[b, v].numpy())[0]
            expected = cams.K[b, v].numpy() @ np.hstack([cv2.Rodrigues(rvec)[0], cams.t[b, v].numpy()[:, None]])
            np.testing.assert_allclose(cams.projection_matrices[b, v].numpy(), expected, rtol=1e-10, atol=1e-6)


def test_h36m_centers_are_around_the_capture_volume(h36m_cameras):
    centers = h36m_cameras.centers
    distance = centers[:, :2].norm(dim=-1)
    assert ((distance > 2000) & (distance < 8000)).all()
    assert ((centers[:, 2] > 500) & (centers[:, 2] < 3000)).all()  # mounted above the floor, z up
    assert torch.allclose(h36m_cameras.R @ h36m_cameras.R.transpose(-1, -2), torch.eye(3, dtype=torch.float64),
                          atol=1e-9)


def _crop_rotate_resize(center, angle, scale, out_size):
    """Pixel affine (3, 3): rotate by ``angle`` and scale about ``center``, centred in the output."""
    c, s = math.cos(angle), math.sin(angle)
    A = torch.tensor([[scale * c, -scale * s], [scale * s, scale * c]], dtype=torch.float64)
    shift = torch.tensor(out_size, dtype=torch.float64) / 2 - A @ torch.tensor(center, dtype=torch.float64)
    return torch.cat([torch.cat([A, shift[:, None]], 1), torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])


def test_with_affine_projects_like_the_affine_of_the_full_image(generator, make_rig, make_points):
    cams = make_rig(generator, num_views=4)
    affine = torch.stack([_crop_rotate_resize((500.0 + 20 * v, 480.0), 0.3 * v - 0.4, 0.25 + 0.1 * v, (256, 256))
                          for v in range(4)])
    cropped = cams.with_affine(affine[:, :2], image_size=(256, 256))
    assert torch.equal(cropped.image_size, torch.full((4, 2), 256.0, dtype=torch.float64))
    assert torch.equal(cropped.R, cams.R) and torch.equal(cropped.dist, cams.dist)
    points = make_points(generator, 4, 50)
    full = cams.project(points)
    expected = full @ affine[:, :2, :2].transpose(-1, -2) + affine[:, None, :2, 2]
    assert torch.allclose(cropped.project(points), expected, rtol=1e-12, atol=1e-9)
    # undistortion in the crop equals the affine of the full-image undistortion
    undistorted_full = cams.undistort_pixels(full)
    undistorted_crop = cropped.undistort_pixels(expected)
    assert torch.allclose(undistorted_crop, undistorted_full @ affine[:, :2, :2].transpose(-1, -2)
                          + affine[:, None, :2, 2], rtol=1e-10, atol=1e-8)
    # the column norms of K's 2x2 block survive the rotation
    assert torch.allclose(cropped.focal_lengths, cams.focal_lengths * torch.tensor([0.25, 0.35, 0.45, 0.55],
                                                                                    dtype=torch.float64)[:, None])
