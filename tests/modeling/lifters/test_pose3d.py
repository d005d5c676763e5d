import pytest
import torch

from modeling.lifters.pose3d import Pose3DLifter


def test_sizes_follow_the_reference():
    model = Pose3DLifter()
    linear_shapes = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linear_shapes[0] == (1024, 32) and linear_shapes[-1] == (48, 1024) and len(linear_shapes) == 12
    assert sum(p.numel() for p in model.parameters()) == 10_599_472
    assert model(torch.randn(5, 16, 2)).shape == (5, 16, 3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"expected root-relative 2D \(B, 16, 2\)"):
        Pose3DLifter()(torch.zeros(2, 17, 2))
