"""Tests of the Gaussian heatmap targets and the visibility-weighted heatmap MSE."""
import math

import pytest
import torch

from core.registry import LOSSES
from modeling.losses.heatmap import HeatmapMSELoss, gaussian_heatmaps, joints_in_map, weighted_heatmap_mse


def test_registered():
    import modeling.losses  # noqa: F401
    assert LOSSES.get("heatmap_mse") is HeatmapMSELoss


def test_peak_at_integer_joint():
    keypoints = torch.tensor([[[5.0, 3.0], [0.0, 7.0]]])  # (1, J=2, 2) x, y
    maps = gaussian_heatmaps(keypoints, torch.ones(1, 2), (8, 10), sigma=1.5)
    assert maps.shape == (1, 2, 8, 10)
    assert maps[0, 0, 3, 5] == 1.0 and maps[0, 0].argmax() == 3 * 10 + 5
    assert maps[0, 1, 7, 0] == 1.0
    # one pixel away: exp(-1 / (2 sigma^2))
    assert torch.isclose(maps[0, 0, 3, 6], torch.tensor(math.exp(-1 / (2 * 1.5 ** 2))))
    assert torch.isclose(maps[0, 0, 4, 6], torch.tensor(math.exp(-2 / (2 * 1.5 ** 2))))


def test_subpixel_centre_is_recovered():
    keypoints = torch.tensor([[4.3, 2.6]])
    maps = gaussian_heatmaps(keypoints, torch.ones(1), (16, 16), sigma=2.0)[0]
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    expected = torch.exp(-((xs - 4.3) ** 2 + (ys - 2.6) ** 2) / 8.0)
    assert torch.allclose(maps, expected, atol=1e-6)
    assert maps.argmax() == 3 * 16 + 4  # nearest pixel (x 4, y 3)
    # a parabola through the log of the peak and its neighbours recovers the sub-pixel centre
    log = maps.log()
    dx = (log[3, 5] - log[3, 3]) / (2 * (2 * log[3, 4] - log[3, 5] - log[3, 3]))
    dy = (log[4, 4] - log[2, 4]) / (2 * (2 * log[3, 4] - log[4, 4] - log[2, 4]))
    assert torch.allclose(torch.stack([4 + dx, 3 + dy]), torch.tensor([4.3, 2.6]), atol=1e-4)


def test_invisible_and_off_map_joints_give_zero_maps():
    keypoints = torch.tensor([[[3.0, 3.0], [float("nan"), 1.0], [-2.0, 3.0], [3.0, 9.0], [7.5, -0.5]]])
    visibility = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]])
    maps = gaussian_heatmaps(keypoints, visibility, (8, 8), sigma=1.0)
    assert torch.all(maps[0, :4] == 0)
    assert maps[0, 4].max() > 0  # on the corner of the map: drawn
    assert joints_in_map(keypoints, (8, 8)).tolist() == [[True, False, False, False, True]]


def test_batched_shapes_match_single_calls():
    torch.manual_seed(0)
    keypoints = torch.rand(2, 3, 4, 2) * 12
    visibility = (torch.rand(2, 3, 4) > 0.3).float()
    maps = gaussian_heatmaps(keypoints, visibility, (12, 14), sigma=2.0)
    assert maps.shape == (2, 3, 4, 12, 14)
    single = gaussian_heatmaps(keypoints[1, 2], visibility[1, 2], (12, 14), sigma=2.0)
    assert torch.equal(maps[1, 2], single)


def test_bad_inputs():
    with pytest.raises(ValueError, match="keypoints_px"):
        gaussian_heatmaps(torch.zeros(2, 3), torch.ones(2), (4, 4), 1.0)
    with pytest.raises(ValueError, match="visibility"):
        gaussian_heatmaps(torch.zeros(2, 2), torch.ones(3), (4, 4), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_heatmaps(torch.zeros(2, 2), torch.ones(2), (4, 4), 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        gaussian_heatmaps(torch.tensor([[float("nan"), 1.0]]), torch.ones(1), (4, 4), 1.0)
    with pytest.raises(ValueError, match="weight"):
        weighted_heatmap_mse(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), torch.ones(2))
    with pytest.raises(ValueError, match="does not match"):
        HeatmapMSELoss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 2), torch.ones(2, 4))


def test_loss_zero_on_targets_and_reference_formula():
    torch.manual_seed(0)
    loss = HeatmapMSELoss(sigma=2.0, stride=4)
    keypoints = torch.rand(2, 3, 2) * 60
    visibility = torch.ones(2, 3)
    targets, weights = loss.targets(keypoints, visibility, (16, 16))
    assert loss(targets, keypoints, visibility) == 0
    pred = torch.rand(2, 3, 16, 16)
    # JointsMSELoss(use_target_weight=True): sum over joints of 0.5 * MSE(pred_j * w_j, gt_j * w_j), / J
    weight = torch.tensor([[1.0, 0.5, 0.0], [1.0, 1.0, 0.25]])
    reference = sum(0.5 * torch.mean((pred[:, j] * weight[:, j, None, None] - targets[:, j] * weight[:, j, None, None])
                                     ** 2) for j in range(3)) / 3
    assert torch.isclose(weighted_heatmap_mse(pred, targets, weight), reference)
    assert torch.isclose(loss(pred, keypoints, visibility), weighted_heatmap_mse(pred, targets, weights))


def test_loss_ignores_invisible_and_off_crop_joints():
    loss = HeatmapMSELoss(sigma=1.0, stride=4)
    keypoints = torch.tensor([[[10.0, 20.0], [30.0, 30.0], [100.0, 5.0]]])  # third joint off the 64x64 crop
    visibility = torch.tensor([[1.0, 0.0, 1.0]])
    targets, weights = loss.targets(keypoints, visibility, (16, 16))
    assert weights.tolist() == [[1.0, 0.0, 0.0]]
    pred = targets.clone()
    pred[0, 1] = torch.rand(16, 16)  # anything on the invisible joint
    pred[0, 2] = 5.0  # and on the off-crop joint
    assert loss(pred, keypoints, visibility) == 0
    pred[0, 0, 0, 0] += 1.0
    assert loss(pred, keypoints, visibility) > 0


def test_loss_target_peak_matches_crop_position_and_gradients():
    loss = HeatmapMSELoss(sigma=2.0, stride=4)
    keypoints = torch.tensor([[[21.5, 9.5]]])  # crop pixel -> heatmap (5, 2)
    targets, _ = loss.targets(keypoints, torch.ones(1, 1), (16, 16))
    assert targets[0, 0, 2, 5] == 1.0
    pred = torch.zeros(1, 1, 16, 16, requires_grad=True)
    loss(pred, keypoints, torch.ones(1, 1)).backward()
    assert pred.grad.argmin() == 2 * 16 + 5  # pulled up most at the joint
