"""Tests of datasets/synthetic/rigs.py: look_at, the Human3.6M-like ring and random rigs."""
import numpy as np
import pytest
import torch

from core.geometry.cameras import Cameras
from datasets.synthetic.bodies import make_body
from datasets.synthetic.motion import ACTIONS, CAPTURE_HEIGHT_MM, CAPTURE_RADIUS_MM, generate_sequence
from datasets.synthetic.rigs import IMAGE_MARGIN_PX, h36m_like_ring, look_at, random_rig, sees_capture_volume


def assert_rotations(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=torch.float64), atol=1e-12, rtol=0)


def optical_axis_hit(cameras: Cameras):
    """(V, 3) the point of each optical axis closest to the world z axis."""
    centres, axes = cameras.centers.numpy(), cameras.R[:, 2].numpy()
    s = -(centres[:, :2] * axes[:, :2]).sum(1) / (axes[:, :2] ** 2).sum(1)
    return centres + s[:, None] * axes


# ----- look_at ------------------------------------------------------------------------------------
def test_look_at_conventions():
    eye, target = np.array([4000.0, -3000.0, 1500.0]), np.array([100.0, 200.0, 1000.0])
    R, t = look_at(eye, target)
    assert_rotations(R)
    np.testing.assert_allclose(-R.T @ t, eye, atol=1e-9)  # camera centre
    in_camera = R @ target + t
    np.testing.assert_allclose(in_camera[:2], 0.0, atol=1e-9)  # on the optical axis ...
    assert in_camera[2] == pytest.approx(np.linalg.norm(target - eye))  # ... in front
    above = R @ (target + [0.0, 0.0, 500.0]) + t
    assert above[1] < 0  # world up is image up (OpenCV y points down)
    level_R, _ = look_at([0.0, -5000.0, 1000.0], [0.0, 0.0, 1000.0])
    np.testing.assert_allclose(level_R, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)  # x right, y down, z ahead


def test_look_at_broadcasts_and_checks():
    eyes = np.array([[5000.0, 0, 1500], [0, 5000.0, 1500], [-3000.0, -3000.0, 2500]])
    R, t = look_at(eyes, np.zeros(3))
    assert R.shape == (3, 3, 3) and t.shape == (3, 3)
    for i in range(3):
        np.testing.assert_allclose(R[i], look_at(eyes[i], np.zeros(3))[0])
    with pytest.raises(ValueError, match="parallel"):
        look_at([0.0, 0.0, 3000.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="differ"):
        look_at([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="shape"):
        look_at([1.0, 2.0], [0.0, 0.0, 0.0])


# ----- the Human3.6M-like ring --------------------------------------------------------------------------
def test_ring_default_is_fixed_and_h36m_like():
    cameras = h36m_like_ring()
    assert isinstance(cameras, Cameras) and cameras.batch_shape == (4,) and cameras.dtype == torch.float64
    for field in ("K", "R", "t", "dist", "image_size"):
        torch.testing.assert_close(getattr(cameras, field), getattr(h36m_like_ring(), field), rtol=0, atol=0)
    assert_rotations(cameras.R)
    centres = cameras.centers.numpy()
    assert ((4000 < np.linalg.norm(centres[:, :2], axis=1)) & (np.linalg.norm(centres[:, :2], axis=1) < 5500)).all()
    assert ((1300 < centres[:, 2]) & (centres[:, 2] < 1700)).all()
    azimuths = np.sort(np.arctan2(centres[:, 1], centres[:, 0]))
    assert np.diff(np.concatenate([azimuths, azimuths[:1] + 2 * np.pi])).min() > np.deg2rad(60)  # around the person
    K, dist = cameras.K.numpy(), cameras.dist.numpy()
    assert ((1100 < K[:, 0, 0]) & (K[:, 0, 0] < 1200)).all() and np.allclose(K[:, 0, 0], K[:, 1, 1], rtol=0.01)
    assert (np.abs(K[:, :2, 2] - 500) < 25).all() and (K[:, 0, 1] == 0).all()
    assert ((-0.25 < dist[:, 0]) & (dist[:, 0] < -0.15)).all() and (dist[:, 1] > 0).all()
    assert (np.abs(dist[:, 2:4]) < 0.01).all()
    np.testing.assert_array_equal(cameras.image_size.numpy(), [[1000, 1000]] * 4)
    hit = optical_axis_hit(cameras)
    assert (np.linalg.norm(hit[:, :2], axis=1) < 300).all() and ((900 < hit[:, 2]) & (hit[:, 2] < 1250)).all()


def test_ring_seeds_and_sizes():
    a, b = h36m_like_ring(4, seed=1), h36m_like_ring(4, seed=1)
    torch.testing.assert_close(a.R, b.R, rtol=0, atol=0)
    assert not torch.allclose(a.R, h36m_like_ring(4, seed=2).R)
    assert not torch.allclose(a.R, h36m_like_ring().R)
    assert h36m_like_ring(7, seed=3).batch_shape == (7,)
    with pytest.raises(ValueError, match="num_cameras"):
        h36m_like_ring(0)
    with pytest.raises(ValueError, match="seed"):
        h36m_like_ring(4, seed=-1)


# ----- random rigs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_cameras", range(2, 9))
def test_random_rig_is_valid(num_cameras):
    cameras = random_rig(num_cameras, seed=num_cameras)
    assert cameras.batch_shape == (num_cameras,) and cameras.dtype == torch.float64
    torch.testing.assert_close(cameras.t, random_rig(num_cameras, seed=num_cameras).t, rtol=0, atol=0)
    assert_rotations(cameras.R)
    centres = cameras.centers.numpy()
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(num_cameras) * 1e9
    assert gaps.min() > 1000  # no two cameras at the same place
    assert (np.linalg.norm(centres[:, :2], axis=1) > CAPTURE_RADIUS_MM + 500).all()  # outside the capture area
    hit = optical_axis_hit(cameras)
    assert (np.linalg.norm(hit[:, :2], axis=1) < 600).all()  # aimed at the capture area
    # the principal point is where the aim point projects: the camera looks at it
    principal = cameras.K[:, :2, 2]
    aim = torch.from_numpy(hit)[:, None]
    torch.testing.assert_close(cameras.project(aim)[:, 0], principal, atol=1e-6, rtol=0)


def test_random_rigs_vary():
    rigs = [random_rig(4, seed=s) for s in range(6)]
    focal = torch.stack([r.K[:, 0, 0] for r in rigs])
    heights = torch.stack([r.centers[:, 2] for r in rigs])
    assert focal.std() > 50 and heights.std() > 300
    assert not torch.allclose(rigs[0].dist, rigs[1].dist)
    wide = random_rig(3, seed=5, image_size=(1280, 720))
    np.testing.assert_array_equal(wide.image_size.numpy(), [[1280, 720]] * 3)
    with pytest.raises(ValueError, match="num_cameras"):
        random_rig(9, seed=0)
    with pytest.raises(ValueError, match="num_cameras"):
        random_rig(1, seed=0)
    with pytest.raises(ValueError, match="image_size"):
        random_rig(3, seed=0, image_size=(10, 10))


def test_distortion_is_monotonic():
    """The radial model r (1 + k1 r^2 + k2 r^4 + k3 r^6) never folds back, out to 60 degrees off-axis."""
    r = torch.linspace(0.0, np.tan(np.deg2rad(60)), 500, dtype=torch.float64)
    for cameras in [h36m_like_ring(), h36m_like_ring(8, seed=4)] + [random_rig(8, seed=s) for s in range(5)]:
        k1, k2, _, _, k3 = cameras.dist.T[..., None]
        distorted = r * (1 + k1 * r ** 2 + k2 * r ** 4 + k3 * r ** 6)
        assert (torch.diff(distorted, dim=-1) > 0).all()


# ----- everyone sees the person --------------------------------------------------------------------------
@pytest.mark.parametrize("rig", ["ring", "ring_seeded", "random"])
def test_whole_capture_volume_is_seen(rig):
    rigs = {"ring": lambda: [h36m_like_ring()], "ring_seeded": lambda: [h36m_like_ring(6, seed=s) for s in range(8)],
            "random": lambda: [random_rig(2 + s % 7, seed=100 + s) for s in range(10)]}[rig]()
    for cameras in rigs:
        assert sees_capture_volume(cameras).all()
    # a dense check of the cylinder's surface and inside
    angle, radius, height = np.meshgrid(np.linspace(0, 2 * np.pi, 90), np.linspace(0, 1, 4), np.linspace(0, 1, 12))
    points = np.stack([CAPTURE_RADIUS_MM * radius * np.cos(angle), CAPTURE_RADIUS_MM * radius * np.sin(angle),
                       CAPTURE_HEIGHT_MM * height], -1).reshape(-1, 3)
    for cameras in rigs:
        pixels = cameras.project(torch.from_numpy(points))
        assert ((pixels >= 0) & (pixels <= cameras.image_size[:, None, :])).all()


def test_sees_capture_volume_detects_a_camera_too_close():
    cameras = h36m_like_ring()
    R, t = look_at([2000.0, 0.0, 1500.0], [0.0, 0.0, 1000.0])
    close = Cameras.create(cameras.K[:1], R[None], t[None], cameras.dist[:1], image_size=(1000, 1000))
    assert not sees_capture_volume(close).any()


def test_generated_people_project_inside_every_image():
    rigs = [h36m_like_ring(), random_rig(8, seed=11), random_rig(3, seed=12, image_size=(1280, 720))]
    joints = np.concatenate([generate_sequence(make_body(subject, 0), action, 100, seed=5)
                             for subject in ("S1", "S11") for action in ACTIONS])  # (T, 17, 3)
    assert np.linalg.norm(joints[..., :2], axis=-1).max() <= CAPTURE_RADIUS_MM
    assert joints[..., 2].max() <= CAPTURE_HEIGHT_MM
    points = torch.from_numpy(joints.reshape(-1, 3))
    for cameras in rigs:
        pixels = cameras.project(points)  # (V, N, 2)
        size = cameras.image_size[:, None, :]
        assert torch.isfinite(pixels).all()
        assert ((pixels >= IMAGE_MARGIN_PX) & (pixels <= size - IMAGE_MARGIN_PX)).all()
