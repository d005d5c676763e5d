"""The axis-angle matrix against the exponential of its skew matrix, and the canonical frame: a proper rotation, the frame's defining joints where
hand3d puts them, the same rotation as its three elementary ones, and the pose back exactly."""
import math

import pytest
import torch

from core.geometry.rotation import axis_angle_to_matrix, canonical_frame


def test_axis_angle_matrix_is_rodrigues_for_column_vectors(generator):
    vectors = torch.randn(4, 5, 3, generator=generator, dtype=torch.float64) * 2
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(4, 5, 3, 3)
    expected = torch.linalg.matrix_exp(skew)                                   # exp([v]x): the rotation of v
    assert torch.allclose(axis_angle_to_matrix(vectors), expected, atol=1e-7)  # the 1e-8 under the root
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    rotation = axis_angle_to_matrix(zero)
    rotation.sum().backward()
    assert torch.allclose(rotation, torch.eye(3, dtype=torch.float64)) and torch.isfinite(zero.grad).all()


def _elementary(axis: str, angle: float) -> torch.Tensor:
    """hand3d's row-vector rotations about one axis (``points @ R``)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor({"x": [[1, 0, 0], [0, c, s], [0, -s, c]],
                         "y": [[c, 0, -s], [0, 1, 0], [s, 0, c]],
                         "z": [[c, s, 0], [-s, c, 0], [0, 0, 1]]}[axis], dtype=torch.float64)


def _hand3d_frame(points: torch.Tensor, align: int, rotate: int) -> torch.Tensor:
    """The reference's construction: about z into the yz plane, about x onto -y, about y to put ``rotate`` at z = 0."""
    total = torch.eye(3, dtype=torch.float64)
    for axis, angle in (("z", lambda p: math.atan2(p[align, 0], p[align, 1])),
                        ("x", lambda p: math.pi - math.atan2(p[align, 2], p[align, 1])),
                        ("y", lambda p: math.atan2(p[rotate, 2], p[rotate, 0]))):
        step = _elementary(axis, angle(points @ total))
        total = total @ step
    return total


def test_the_canonical_frame_is_a_proper_rotation_that_maps_back_exactly(generator):
    points = torch.randn(6, 21, 3, generator=generator, dtype=torch.float64)
    points = points - points[:, :1]
    frame = canonical_frame(points, align=12, rotate=20)
    eye = torch.eye(3, dtype=torch.float64).expand(6, 3, 3)
    assert torch.allclose(frame.transpose(-1, -2) @ frame, eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(frame), torch.ones(6, dtype=torch.float64))
    canonical = points @ frame
    assert torch.allclose(canonical[:, 12, [0, 2]], torch.zeros(6, 2, dtype=torch.float64), atol=1e-12)
    assert (canonical[:, 12, 1] < 0).all() and torch.allclose(canonical[:, 12, 1], -points[:, 12].norm(dim=-1))
    assert torch.allclose(canonical[:, 20, 2], torch.zeros(6, dtype=torch.float64), atol=1e-12)
    assert (canonical[:, 20, 0] > 0).all()
    assert torch.allclose(canonical @ frame.transpose(-1, -2), points, atol=1e-12)
    for pose, rotation in zip(points, frame):
        assert torch.allclose(rotation, _hand3d_frame(pose, 12, 20), atol=1e-10)


@pytest.mark.parametrize("broken", ["missing", "collinear"])
def test_an_undefined_frame_is_nan(broken):
    points = torch.tensor([[0.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.5, 0.2]])
    points[2] = float("nan") if broken == "missing" else torch.tensor([0.0, 2.0, 0.0])
    assert torch.isnan(canonical_frame(points, align=1, rotate=2)).all()
