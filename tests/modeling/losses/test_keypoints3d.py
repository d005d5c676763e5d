import pytest
import torch

from modeling.losses.keypoints3d import mean_joint_error_m, smooth_mse_cm


def _reference_smooth_mse(pred_cm, target_cm, validity, threshold=400.0):
    """learnable triangulation's KeypointsMSESmoothLoss, written as its formula."""
    diff = (target_cm - pred_cm) ** 2 * validity
    diff = torch.where(diff > threshold, diff.pow(0.1) * threshold ** 0.9, diff)
    return diff.sum() / (3 * max(1.0, float(validity.sum())))


def test_smooth_mse_is_the_reference_loss_on_centimetres():
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(4, 17, 3, generator=generator, dtype=torch.float64) * 500
    pred = (target + torch.randn(4, 17, 3, generator=generator, dtype=torch.float64) * 150).requires_grad_()
    mask = torch.rand(4, 17, generator=generator) > 0.2
    loss = smooth_mse_cm(pred, target, mask)
    expected = _reference_smooth_mse(pred * 0.1, target * 0.1, mask[..., None].double())
    torch.testing.assert_close(loss, expected)
    assert ((pred - target).abs() * 0.1 > 20).any() and ((pred - target).abs() * 0.1 < 20).any()   # both branches
    loss.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[~mask] == 0).all()


def test_missing_and_failed_joints_give_no_error_and_no_nan_gradient():
    target = torch.zeros(1, 3, 3, dtype=torch.float64)
    target[0, 1] = float("nan")                                                  # lost marker
    pred = torch.tensor([[[100.0, 0, 0], [5.0, 0, 0], [float("nan")] * 3]], dtype=torch.float64, requires_grad=True)
    loss = smooth_mse_cm(pred, target, torch.ones(1, 3, dtype=torch.bool))
    assert loss.item() == pytest.approx(100.0 / 3)                               # joint 0 alone: (10 cm)^2 / 3
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert mean_joint_error_m(pred.detach()[:, :2], target[:, :2], torch.ones(1, 2, dtype=torch.bool)) == 0.1
    pred_exact = torch.zeros(1, 2, 3, dtype=torch.float64, requires_grad=True)
    smooth_mse_cm(pred_exact, torch.zeros(1, 2, 3, dtype=torch.float64), torch.ones(1, 2, dtype=torch.bool)).backward()
    assert torch.isfinite(pred_exact.grad).all()                                 # no 0.1th power at zero error
    with pytest.raises(ValueError, match="threshold_cm2"):
        smooth_mse_cm(pred_exact, pred_exact, torch.ones(1, 2, dtype=torch.bool), threshold_cm2=0.0)
