import pytest
import torch

from modeling.lifters.poseformer import PoseFormer


@pytest.mark.parametrize("frames, expected", [(81, 9_602_885), (27, 9_573_455), (9, 9_563_645)])
def test_parameter_counts_match_the_reference(frames, expected):
    assert sum(p.numel() for p in PoseFormer(num_frames=frames).parameters()) == expected


def test_shapes_and_gradients():
    torch.manual_seed(0)
    model = PoseFormer(num_frames=9, depth=2)
    x = torch.randn(3, 9, 17, 2, requires_grad=True)
    out = model(x)
    assert out.shape == (3, 17, 3)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and all(p.grad is not None for p in model.parameters())


def test_samples_are_independent_in_eval_and_drop_path_is_random_in_training():
    torch.manual_seed(1)
    model = PoseFormer(num_frames=9, depth=2, drop_path_rate=0.5)
    x = torch.randn(4, 9, 17, 2)
    model.eval()
    together = model(x)
    assert torch.allclose(together[1:2], model(x[1:2]), atol=1e-5)
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_bad_input_is_rejected():
    model = PoseFormer(num_frames=9, depth=1)
    with pytest.raises(ValueError, match=r"expected 2D keypoints \(B, 9, 17, 2\)"):
        model(torch.zeros(2, 27, 17, 2))
    with pytest.raises(ValueError, match="drop_path_rate"):
        PoseFormer(drop_path_rate=1.0)
