"""Shared fixtures for the geometry tests: seeded random camera rigs and the real Human3.6M cameras."""

import pytest
import torch

from core.geometry import Cameras
from datasets.formats.calibration import read_h36m_cameras



def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def random_rig(generator: torch.Generator, batch_shape=(), num_views: int = 4, distortion: float = 1.0,
               skew: float = 2.0, dtype=torch.float64) -> Cameras:
    """Cameras (*batch_shape, num_views) on a ring 3-6 m around the origin, looking at the capture
    volume, with random intrinsics (skew K[0, 1] up to ``skew`` px; OpenCV's projectPoints and
    undistortPoints ignore it) and lens distortion scaled by ``distortion``."""
    shape = (*batch_shape, num_views)

    def uniform(low, high, *trailing):
        return torch.rand(*shape, *trailing, generator=generator, dtype=dtype) * (high - low) + low

    azimuth = uniform(0.0, 2 * torch.pi)
    distance = uniform(3000.0, 6000.0)
    centers = torch.stack([distance * azimuth.cos(), distance * azimuth.sin(), uniform(500.0, 2500.0)], -1)
    targets = torch.stack([uniform(-300.0, 300.0), uniform(-300.0, 300.0), uniform(700.0, 1200.0)], -1)
    forward = _normalize(targets - centers)
    right = _normalize(torch.linalg.cross(forward, forward.new_tensor([0.0, 0.0, 1.0]).expand_as(forward), dim=-1))
    down = torch.linalg.cross(forward, right, dim=-1)
    R = torch.stack([right, down, forward], dim=-2)
    t = -(R @ centers.unsqueeze(-1)).squeeze(-1)

    K = torch.zeros(*shape, 3, 3, dtype=dtype)
    K[..., 0, 0] = uniform(800.0, 1600.0)
    K[..., 1, 1] = K[..., 0, 0] * uniform(0.98, 1.02)
    K[..., 0, 1] = uniform(-skew, skew)
    K[..., 0, 2] = uniform(450.0, 550.0)
    K[..., 1, 2] = uniform(450.0, 550.0)
    K[..., 2, 2] = 1.0
    dist = distortion * torch.stack([uniform(-0.3, 0.1), uniform(-0.05, 0.25), uniform(-2e-3, 2e-3),
                                     uniform(-2e-3, 2e-3), uniform(-0.02, 0.02)], -1)
    return Cameras.create(K, R, t, dist, image_size=torch.tensor([1000.0, 1000.0]), dtype=dtype)


def random_points(generator: torch.Generator, *shape, dtype=torch.float64) -> torch.Tensor:
    """World points (*shape, 3) in a human-sized capture volume: |x|, |y| <= 1 m, 0 <= z <= 2 m."""
    unit = torch.rand(*shape, 3, generator=generator, dtype=dtype)
    return unit * unit.new_tensor([2000.0, 2000.0, 2000.0]) - unit.new_tensor([1000.0, 1000.0, 0.0])


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture(params=["S1", "S9", "S11"])
def h36m_cameras(request, shared_data) -> Cameras:
    """The 4 Human3.6M cameras (4,) of a subject in float64, in the file's camera order."""
    return read_h36m_cameras(shared_data("h36m/camera-parameters.json"), request.param)[0]


@pytest.fixture
def make_rig():
    """The ``random_rig`` factory (fixtures rather than imports: test folders are not packages)."""
    return random_rig


@pytest.fixture
def make_points():
    """The ``random_points`` factory."""
    return random_points
