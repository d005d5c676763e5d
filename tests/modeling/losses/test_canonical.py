"""The normalised-pose losses: plain MSEs where every target is present; missing joints and undefined frames left
out without NaN gradients."""
import torch

from modeling.losses.canonical import canonical_mses, normalised_mse


def test_mses_of_coordinates_and_rotation_entries():
    generator = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 3, 5, 3, generator=generator), torch.randn(2, 3, 5, 3, generator=generator)
    rotation = torch.randn(2, 3, 3, 3, generator=generator)
    rotation_target = torch.randn(2, 3, 3, 3, generator=generator)
    assert torch.allclose(normalised_mse(pred, target), (pred - target).pow(2).mean())
    losses = canonical_mses(pred, rotation, target, rotation_target)
    assert set(losses) == {"mse_canonical", "mse_rotation"}
    assert torch.allclose(losses["mse_canonical"], (pred - target).pow(2).mean())
    assert torch.allclose(losses["mse_rotation"], (rotation - rotation_target).pow(2).mean())


def test_missing_joints_and_undefined_frames_add_nothing():
    pred = torch.zeros(2, 4, 3, requires_grad=True)
    target = torch.ones(2, 4, 3)
    target[0, 1] = float("nan")                          # a joint missing from the data
    rotation = torch.zeros(2, 3, 3, requires_grad=True)
    rotation_target = torch.ones(2, 3, 3)
    rotation_target[1] = float("nan")                    # a sample whose canonical frame is undefined
    losses = canonical_mses(pred, rotation, target, rotation_target)
    assert losses["mse_canonical"].item() == 1.0 and losses["mse_rotation"].item() == 1.0
    sum(losses.values()).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 1].abs().sum() == 0
    assert torch.isfinite(rotation.grad).all() and rotation.grad[1].abs().sum() == 0
