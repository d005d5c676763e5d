"""The hand pose protocol of Zimmermann & Brox (RHD / STB): root-relative end-point errors, PCK and AUC, against
values computed by hand and against a plain per-keypoint re-statement of their evaluation."""
import math

import numpy as np
import pytest
import torch

from core.metrics_hand import HAND_PCK_THRESHOLDS_MM, area_under_curve, hand_pck, hand_pose_metrics

THRESHOLDS = (20.0, 30.0, 40.0, 50.0)


def three_poses():
    """Poses of 3 joints (root 0) whose joints 1 and 2 err by [10, 20, 60] and [30, 40, 0] mm after the root is
    subtracted (the predictions are also shifted as a whole, which root-relative errors ignore)."""
    target = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]]).expand(3, 3, 3).clone()
    target = target + torch.arange(3.0)[:, None, None] * 100.0
    offsets = torch.zeros(3, 3, 3)
    offsets[:, 1, 2] = torch.tensor([10.0, 20.0, 60.0])
    offsets[:, 2, 0] = torch.tensor([30.0, -40.0, 0.0])
    return target + offsets + torch.tensor([5.0, -7.0, 3.0]), target


def test_errors_pck_and_auc_by_hand():
    pred, target = three_poses()
    result = hand_pose_metrics(pred, target, thresholds_mm=THRESHOLDS)
    assert result["epe_mean_mm"] == pytest.approx((0 + 30 + 70 / 3) / 3)
    assert result["epe_median_mm"] == pytest.approx((0 + 20 + 30) / 3)
    # per joint, errors <= t (20 counts at 20): root 1 1 1 1, joint 1 2/3 at all, joint 2 1/3 2/3 1 1
    assert result["pck"] == pytest.approx([2 / 3, 7 / 9, 8 / 9, 8 / 9])
    assert result["auc"] == pytest.approx(((2 / 3 + 7 / 9) + (7 / 9 + 8 / 9) + (8 / 9 + 8 / 9)) / 2 / 3)
    assert result["thresholds_mm"] == list(THRESHOLDS)
    assert result["num_joint_errors"] == 9 and result["num_invalid_joints"] == 0
    per_joint = hand_pck(pred, target, THRESHOLDS)
    assert per_joint.shape == (3, 4) and per_joint.dtype == torch.float64
    torch.testing.assert_close(per_joint[2], torch.tensor([1 / 3, 2 / 3, 1.0, 1.0], dtype=torch.float64))


def test_masks_nan_predictions_and_the_root():
    pred, target = three_poses()
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[2, 1] = False                                             # joint 1 of pose 3 left out: [10, 20]
    pred[2, 2] = torch.nan                                         # joint 2 of pose 3 failed: skipped, a miss
    result = hand_pose_metrics(pred, target, mask, thresholds_mm=THRESHOLDS)
    assert result["epe_mean_mm"] == pytest.approx((0 + 15 + 35) / 3)
    assert result["num_joint_errors"] == 7 and result["num_invalid_joints"] == 1
    torch.testing.assert_close(hand_pck(pred, target, THRESHOLDS, mask)[2],
                               torch.tensor([0.0, 1 / 3, 2 / 3, 2 / 3], dtype=torch.float64))
    target[1, 0] = torch.nan                                       # a pose without its root is not evaluated
    mask[1, 0] = False
    result = hand_pose_metrics(pred, target, mask, thresholds_mm=THRESHOLDS)
    assert result["epe_mean_mm"] == pytest.approx((0 + 10 + 30) / 3) and result["num_joint_errors"] == 4
    mask[:, 0] = False
    assert hand_pose_metrics(pred, target, mask)["epe_mean_mm"] is None
    assert torch.isnan(hand_pck(pred, target, mask=mask)).all()


def test_predictions_in_units_of_a_bone_are_scaled_by_the_true_bone():
    _, target = three_poses()
    relative = target - target[:, :1]
    normalised = relative / torch.linalg.vector_norm(relative[:, 1] - relative[:, 2], dim=-1)[:, None, None]
    result = hand_pose_metrics(normalised, target, pred_unit_bone=(1, 2))
    assert result["epe_mean_mm"] == pytest.approx(0.0, abs=1e-5) and result["auc"] == pytest.approx(1.0)
    assert hand_pose_metrics(normalised, target)["epe_mean_mm"] > 1.0


def test_the_default_thresholds_are_hand3ds_20_to_50_mm_subset():
    assert len(HAND_PCK_THRESHOLDS_MM) == 12
    assert HAND_PCK_THRESHOLDS_MM[0] == pytest.approx(8 * 50 / 19) and HAND_PCK_THRESHOLDS_MM[-1] == 50.0


def test_area_under_curve():
    t = torch.tensor([0.0, 1.0, 3.0])
    assert float(area_under_curve(t, torch.ones(3))) == pytest.approx(1.0)
    assert float(area_under_curve(t, t / 3)) == pytest.approx(0.5)
    torch.testing.assert_close(area_under_curve(t, torch.stack([torch.ones(3), torch.zeros(3)])),
                               torch.tensor([1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="increasing"):
        area_under_curve(torch.tensor([1.0, 0.0]), torch.ones(2))


def hand3d_evaluation(pred, target, visible, thresholds):
    """The evaluation as Zimmermann & Brox describe it, keypoint by keypoint: lists of root-relative errors of the
    visible keypoints, their mean and median, PCK (<= t) and its normalised trapezoid area."""
    means, medians, curves = [], [], []
    for joint in range(pred.shape[1]):
        errors = [np.linalg.norm((p[joint] - p[0]) - (x[joint] - x[0]))
                  for p, x, v in zip(pred, target, visible) if v[joint] and v[0]]
        if errors:
            means.append(np.mean(errors))
            medians.append(np.median(errors))
            curves.append([np.mean(np.array(errors) <= t) for t in thresholds])
    curve = np.mean(curves, 0)
    area = sum((curve[i] + curve[i + 1]) / 2 * (thresholds[i + 1] - thresholds[i]) for i in range(len(curve) - 1))
    return np.mean(means), np.mean(medians), curve, area / (thresholds[-1] - thresholds[0])


def test_agrees_with_a_keypoint_by_keypoint_evaluation():
    rng = np.random.default_rng(3)
    target = rng.normal(0, 40, (2, 25, 21, 3))
    pred = target + rng.normal(0, 18, target.shape)
    visible = rng.random((2, 25, 21)) < 0.8
    result = hand_pose_metrics(torch.from_numpy(pred).float(), torch.from_numpy(target).float(),
                               torch.from_numpy(visible))
    mean, median, curve, area = hand3d_evaluation(pred.reshape(50, 21, 3), target.reshape(50, 21, 3),
                                                  visible.reshape(50, 21), HAND_PCK_THRESHOLDS_MM)
    assert result["epe_mean_mm"] == pytest.approx(mean, rel=1e-5)
    assert result["epe_median_mm"] == pytest.approx(median, rel=1e-5)
    assert result["pck"] == pytest.approx(curve.tolist(), abs=1e-6)
    assert result["auc"] == pytest.approx(area, rel=1e-6) and math.isfinite(result["auc"])
