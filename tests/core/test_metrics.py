import functools
import json
import math

import numpy as np
import pytest
import torch

from core import metrics
from core.skeleton import H36M17


# ----- helpers and numpy references of the standard formulas ---------------------------------------
def random_poses(n, seed=0, scale_mm=400.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, H36M17.num_joints, 3, generator=generator, dtype=torch.float64) * scale_mm


def rotation(angle_deg, axis=(0.3, -0.5, 0.8)):
    axis = np.asarray(axis, dtype=np.float64)
    axis /= np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = math.radians(angle_deg)
    return torch.from_numpy(np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k)


def reference_p_mpjpe(pred, target):
    """Per-joint errors after Procrustes alignment, one pose at a time (the protocol-2 formulas)."""
    out = []
    for p, x in zip(np.asarray(pred), np.asarray(target)):
        mu_x, mu_p = x.mean(0), p.mean(0)
        x0, p0 = x - mu_x, p - mu_p
        norm_x, norm_p = np.linalg.norm(x0), np.linalg.norm(p0)
        x0, p0 = x0 / norm_x, p0 / norm_p
        u, s, vt = np.linalg.svd(x0.T @ p0)
        r = vt.T @ u.T
        if np.linalg.det(r) < 0:
            vt[-1] *= -1
            s[-1] *= -1
            r = vt.T @ u.T
        a = s.sum() * norm_x / norm_p
        t = mu_x - a * mu_p @ r
        out.append(np.linalg.norm(a * p @ r + t - x, axis=-1))
    return np.stack(out)


def reference_n_mpjpe(pred, target):
    """Per-joint errors after the optimal scale of root-relative poses."""
    out = []
    for p, x in zip(np.asarray(pred), np.asarray(target)):
        p, x = p - p[H36M17.root], x - x[H36M17.root]
        scale = np.sum(x * p) / np.sum(p * p)
        out.append(np.linalg.norm(scale * p - x, axis=-1))
    return np.stack(out)


def reference_mpjve(pred, target):
    """Per-joint velocity errors of one sequence (T, J, 3)."""
    return np.linalg.norm(np.diff(np.asarray(pred), axis=0) - np.diff(np.asarray(target), axis=0), axis=-1)


# ----- per-joint errors ------------------------------------------------------------------------------
def test_root_relative_puts_root_at_origin_and_keeps_offsets():
    poses = random_poses(3)
    rel = metrics.root_relative(poses, 0)
    assert torch.all(rel[:, H36M17.root] == 0)
    torch.testing.assert_close(rel[:, 5] - rel[:, 2], poses[:, 5] - poses[:, 2])
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        metrics.root_relative(torch.zeros(3, 17, 2), 0)
    with pytest.raises(ValueError, match="root index 17"):
        metrics.root_relative(poses, root=17)


def test_mpjpe_of_a_translated_copy_is_the_translation_length():
    target = random_poses(4)
    pred = target + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    errors = metrics.mpjpe(pred, target)
    assert errors.shape == (4, H36M17.num_joints)
    torch.testing.assert_close(errors, torch.full((4, H36M17.num_joints), 5.0, dtype=torch.float64))


def test_similarity_copy_has_zero_p_mpjpe_but_positive_mpjpe():
    target = random_poses(6)
    pred = 1.7 * target @ rotation(40.0).T + torch.tensor([250.0, -80.0, 30.0], dtype=torch.float64)
    assert metrics.mpjpe(pred, target).min() > 1.0
    assert metrics.p_mpjpe(pred, target).abs().max() < 1e-8
    # N-MPJPE fixes scale and root position only: a rotation is still an error.
    assert metrics.n_mpjpe(pred, target, root=0).mean() > 1.0


def test_scaled_root_relative_copy_has_zero_n_mpjpe():
    target = random_poses(5)
    pred = 0.6 * metrics.root_relative(target, 0) + torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)
    assert metrics.mpjpe(metrics.root_relative(pred, 0), metrics.root_relative(target, 0)).mean() > 1.0
    assert metrics.n_mpjpe(pred, target, root=0).abs().max() < 1e-9


def test_p_mpjpe_agrees_with_numpy_reference_on_noisy_and_mirrored_poses():
    target = random_poses(8, seed=1)
    noise = random_poses(8, seed=2, scale_mm=60.0)
    pred = 0.9 * target @ rotation(-25.0).T + noise + 100.0
    pred[3] = target[3] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # a mirror image
    errors = metrics.p_mpjpe(pred, target)
    np.testing.assert_allclose(errors.numpy(), reference_p_mpjpe(pred, target), rtol=1e-9, atol=1e-9)
    # The reflection correction forbids aligning a mirror image exactly.
    assert errors[3].mean() > 10.0


def test_n_mpjpe_and_mpjve_agree_with_numpy_references():
    target = random_poses(7, seed=3)
    pred = 1.2 * target + random_poses(7, seed=4, scale_mm=50.0)
    np.testing.assert_allclose(metrics.n_mpjpe(pred, target, root=0).numpy(), reference_n_mpjpe(pred, target),
                               rtol=1e-9, atol=1e-9)
    velocity = metrics.mpjve(pred, target)
    assert velocity.shape == (6, H36M17.num_joints)
    np.testing.assert_allclose(velocity.numpy(), reference_mpjve(pred, target), rtol=1e-12)


def test_per_joint_errors_accept_any_leading_shape_float32_and_numpy():
    target = random_poses(6, seed=5)
    pred = target @ rotation(10.0).T * 1.1 + random_poses(6, seed=6, scale_mm=20.0)
    for fn in (metrics.mpjpe, metrics.p_mpjpe, functools.partial(metrics.n_mpjpe, root=0)):
        flat = fn(pred, target)
        torch.testing.assert_close(fn(pred.reshape(2, 3, H36M17.num_joints, 3), target.reshape(2, 3, H36M17.num_joints, 3)),
                                   flat.reshape(2, 3, H36M17.num_joints))
        torch.testing.assert_close(fn(pred.numpy(), target.float()), flat, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(metrics.mpjve(pred.reshape(2, 3, H36M17.num_joints, 3), target.reshape(2, 3, H36M17.num_joints, 3)),
                               torch.stack([metrics.mpjve(pred[:3], target[:3]), metrics.mpjve(pred[3:], target[3:])]))


def test_p_mpjpe_with_mask_aligns_on_the_valid_joints_only():
    target = random_poses(3, seed=7)
    pred = 2.0 * target @ rotation(70.0).T + 5.0 + random_poses(3, seed=8, scale_mm=10.0)
    keep = torch.ones(H36M17.num_joints, dtype=torch.bool)
    keep[[3, 10, 16]] = False
    pred[:, ~keep] = 1e4  # garbage where the target does not exist
    target[:, ~keep] = torch.nan
    errors = metrics.p_mpjpe(pred, target, keep)
    assert torch.isnan(errors[:, ~keep]).all()
    torch.testing.assert_close(errors[:, keep], metrics.p_mpjpe(pred[:, keep], target[:, keep]))
    errors_n = metrics.n_mpjpe(pred, target, keep, root=0)
    assert torch.isnan(errors_n[:, ~keep]).all() and torch.isfinite(errors_n[:, keep]).all()


def test_nan_predictions_invalidate_a_joint_for_mpjpe_and_the_pose_for_aligned_errors():
    target = random_poses(3, seed=9)
    pred = target + 10.0
    pred[1, 4] = torch.nan
    e = metrics.mpjpe(pred, target)
    assert torch.isnan(e[1, 4]) and torch.isfinite(e).sum() == 3 * H36M17.num_joints - 1
    for fn in (metrics.p_mpjpe, functools.partial(metrics.n_mpjpe, root=0)):
        e = fn(pred, target)
        assert torch.isnan(e[1]).all() and torch.isfinite(e[[0, 2]]).all()
    # A NaN joint that the mask excludes does not invalidate the pose.
    mask = torch.ones(H36M17.num_joints, dtype=torch.bool)
    mask[4] = False
    assert torch.isfinite(metrics.p_mpjpe(pred, target, mask)[1, mask]).all()
    # A fully masked pose is NaN rather than an error.
    assert torch.isnan(metrics.p_mpjpe(pred, target, torch.zeros(H36M17.num_joints, dtype=torch.bool))).all()


def test_collapsed_prediction_gets_scale_zero_not_nan():
    target = random_poses(1, seed=10)
    pred = torch.zeros_like(target)
    expected = torch.linalg.vector_norm(target - target.mean(-2, keepdim=True), dim=-1)
    torch.testing.assert_close(metrics.p_mpjpe(pred, target), expected)
    torch.testing.assert_close(metrics.n_mpjpe(pred, target, root=0), metrics.root_relative(target, 0).norm(dim=-1))


def test_per_joint_errors_reject_bad_input():
    poses = random_poses(2)
    with pytest.raises(ValueError, match="does not match"):
        metrics.mpjpe(poses, poses[:, :16])
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        metrics.p_mpjpe(poses[..., :2], poses[..., :2])
    with pytest.raises(ValueError, match="boolean"):
        metrics.mpjpe(poses, poses, torch.ones(H36M17.num_joints))
    with pytest.raises(ValueError, match="does not broadcast"):
        metrics.mpjpe(poses, poses, torch.ones(5, dtype=torch.bool))
    bad_target = poses.clone()
    bad_target[0, 2, 1] = torch.nan
    with pytest.raises(ValueError, match="non-finite"):
        metrics.n_mpjpe(poses, bad_target, root=0)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, J, 3\)"):
        metrics.mpjve(poses[0], poses[0])


# ----- 2D --------------------------------------------------------------------------------------------
def test_pck_normalises_by_a_per_sample_length():
    target = torch.zeros(2, 1, 2, dtype=torch.float64)
    pred = torch.tensor([[[30.0, 40.0]], [[30.0, 40.0]]], dtype=torch.float64)  # 50 px away
    rate = metrics.pck(pred, target, threshold=0.5, normalize=torch.tensor([200.0, 80.0]))
    torch.testing.assert_close(rate, torch.tensor([0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="normalize must be finite and > 0"):
        metrics.pck(pred, target, 0.5, normalize=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 2\)"):
        metrics.pck(torch.zeros(2, 1, 3), torch.zeros(2, 1, 3), 0.5)


# ----- aggregation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, group", [
    ("Walking 1", "Walking"), ("SittingDown 2", "SittingDown"), ("WalkDog", "WalkDog"),
    ("WalkTogether 1", "WalkTogether"), ("Walking_2", "Walking"), ("TakingPhoto 1", "Photo"),
    ("WalkingDog", "WalkDog"), ("walk", "walk"), ("Directions", "Directions"),
])
def test_action_group(name, group):
    assert metrics.action_group(name) == group


def test_pose_metrics_known_values_and_blocks():
    target = random_poses(4, seed=11)
    pred = target + torch.tensor([0.0, 0.0, 12.0], dtype=torch.float64)  # a pure translation
    pred[3] = target[3] + 30.0 * (torch.arange(H36M17.num_joints) == 5).double()[:, None]  # one joint off
    actions = ["Walking 1", "Walking 1", "Walking 1", "Eating 2"]
    result = metrics.pose_metrics(pred, target, actions, H36M17, absolute=True)
    assert result["num_poses"] == 4 and result["num_invalid_joints"] == 0 and result["num_invalid_poses"] == 0
    mpjpe = result["mpjpe_mm"]
    assert mpjpe["per_action"]["Walking"] == pytest.approx(12.0)
    assert mpjpe["per_action"]["Eating"] == pytest.approx(math.sqrt(3) * 30.0 / H36M17.num_joints)
    assert mpjpe["frame_avg"] == pytest.approx((3 * 12.0 + math.sqrt(3) * 30.0 / H36M17.num_joints) / 4)
    assert mpjpe["action_avg"] == pytest.approx((12.0 + math.sqrt(3) * 30.0 / H36M17.num_joints) / 2)
    assert list(mpjpe["per_joint"]) == list(H36M17.joint_names)
    rel = result["mpjpe_root_relative_mm"]
    assert rel["per_action"]["Walking"] == pytest.approx(0.0, abs=1e-9)
    assert rel["per_action"]["Eating"] == pytest.approx(math.sqrt(3) * 30.0 / H36M17.num_joints)
    assert result["p_mpjpe_mm"]["per_action"]["Walking"] == pytest.approx(0.0, abs=1e-9)
    assert result["mpjve_mm_per_frame"]["num_frame_pairs"] == 3
    assert "mpjpe_mm" not in metrics.pose_metrics(pred, target, actions, H36M17, absolute=False)


def test_pose_metrics_nan_policy_and_counts():
    target = random_poses(4, seed=12)
    pred = target + random_poses(4, seed=13, scale_mm=15.0)
    pred[1, 6] = torch.nan  # failed triangulation of one joint
    pred[2, H36M17.root] = torch.nan  # the root itself
    joint_mask = torch.ones(4, H36M17.num_joints, dtype=torch.bool)
    joint_mask[0, 10] = False  # target joint missing
    target[0, 10] = torch.nan
    result = metrics.pose_metrics(pred, target, ["a"] * 4, H36M17, absolute=True, joint_mask=joint_mask)
    assert result["num_masked_joints"] == 1
    assert result["num_invalid_joints"] == 2
    assert result["num_invalid_poses"] == 2
    assert result["mpjpe_mm"]["num_joint_errors"] == 4 * H36M17.num_joints - 3
    assert result["mpjpe_root_relative_mm"]["num_joint_errors"] == 3 * H36M17.num_joints - 2
    assert result["p_mpjpe_mm"]["num_joint_errors"] == 2 * H36M17.num_joints - 1
    assert result["n_mpjpe_mm"]["num_joint_errors"] == 2 * H36M17.num_joints - 1
    expected = metrics.p_mpjpe(pred[[0, 3]], target[[0, 3]], joint_mask[[0, 3]])
    assert result["p_mpjpe_mm"]["frame_avg"] == pytest.approx(float(expected.nanmean()))
    assert result["mpjpe_mm"]["per_joint"]["head"] == pytest.approx(
        float(metrics.mpjpe(pred[1:, 10], target[1:, 10]).mean()))
    # Velocity pairs (0,1), (1,2), (2,3): valid joints are those valid (with the root) in both frames.
    assert result["mpjve_mm_per_frame"]["num_joint_errors"] == (H36M17.num_joints - 2) + 0 + 0
    json.dumps(result, allow_nan=False)


def test_pose_metrics_all_invalid_gives_null_values_and_counts():
    target = random_poses(2, seed=14)
    pred = torch.full_like(target, torch.nan)
    result = metrics.pose_metrics(pred, target, ["Walking 1", "Eating 1"], H36M17, absolute=True)
    assert result["num_invalid_joints"] == 2 * H36M17.num_joints and result["num_invalid_poses"] == 2
    for key in ("mpjpe_mm", "mpjpe_root_relative_mm", "p_mpjpe_mm", "n_mpjpe_mm", "mpjve_mm_per_frame"):
        block = result[key]
        assert block["frame_avg"] is None and block["action_avg"] is None and block["num_joint_errors"] == 0
        assert all(v is None for v in block["per_joint"].values())
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_mpjve_respects_sequences_and_frame_gaps():
    target = random_poses(9, seed=15)
    pred = target + random_poses(9, seed=16, scale_mm=20.0)
    sequences = ["A"] * 5 + ["B"] * 4
    frames = torch.tensor([0, 1, 2, 4, 5, 10, 11, 12, 13])  # A has a gap between frames 2 and 4
    permutation = torch.tensor([7, 2, 0, 5, 8, 3, 1, 6, 4])  # shuffled input order
    result = metrics.pose_metrics(pred[permutation], target[permutation], ["walk"] * 9, H36M17,
                                  sequence_ids=[sequences[i] for i in permutation], frame_indices=frames[permutation])
    velocity = result["mpjve_mm_per_frame"]
    assert velocity["num_frame_pairs"] == 2 + 1 + 3
    rel_pred, rel_target = metrics.root_relative(pred, 0), metrics.root_relative(target, 0)
    expected = np.concatenate([reference_mpjve(rel_pred[s], rel_target[s])
                               for s in (slice(0, 3), slice(3, 5), slice(5, 9))])
    assert velocity["frame_avg"] == pytest.approx(expected.mean())
    # Without ids: one sequence in input order, every neighbour pair counts.
    plain = metrics.pose_metrics(pred, target, ["walk"] * 9, H36M17)["mpjve_mm_per_frame"]
    assert plain["num_frame_pairs"] == 8
    assert plain["frame_avg"] == pytest.approx(reference_mpjve(rel_pred, rel_target).mean())
    # Sequence ids without frame indices: consecutive in input order within each sequence.
    interleaved = torch.tensor([0, 5, 1, 6, 2, 7])
    result = metrics.pose_metrics(pred[interleaved], target[interleaved], ["walk"] * 6, H36M17,
                                  sequence_ids=["A", "B"] * 3)["mpjve_mm_per_frame"]
    assert result["num_frame_pairs"] == 4
    with pytest.raises(ValueError, match="more than once"):
        metrics.pose_metrics(pred[:3], target[:3], ["walk"] * 3, H36M17, ["A"] * 3, torch.tensor([0, 1, 1]))


def test_pose_metrics_rejects_bad_input():
    poses = random_poses(3)
    with pytest.raises(ValueError, match="actions must be a sequence of 3 strings"):
        metrics.pose_metrics(poses, poses, ["walk"] * 2, H36M17)
    with pytest.raises(ValueError, match="single string"):
        metrics.pose_metrics(poses, poses, "walk", H36M17)
    with pytest.raises(ValueError, match="does not match"):
        metrics.pose_metrics(poses, poses[:2], ["walk"] * 3, H36M17)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        metrics.pose_metrics(poses[:, :15], poses[:, :15], ["walk"] * 3, H36M17)
    with pytest.raises(ValueError, match="sequence_ids must be a sequence of 3"):
        metrics.pose_metrics(poses, poses, ["walk"] * 3, H36M17, sequence_ids=["A"])
    with pytest.raises(ValueError, match="frame_indices must be 3 integers"):
        metrics.pose_metrics(poses, poses, ["walk"] * 3, H36M17, frame_indices=torch.tensor([0.0, 1.0, 2.0]))


def test_left_right_confusion_counts_swaps_and_collapses_of_separated_pairs():
    target = torch.zeros(4, 17, 2, dtype=torch.float64)
    target[:, list(H36M17.left_joints), 0] = 20.0   # every left joint 20 px right of its right twin
    pred = target.clone()
    pred[1, list(H36M17.left_joints)], pred[1, list(H36M17.right_joints)] = target[1, list(H36M17.right_joints)], target[1, list(H36M17.left_joints)]
    pred[2, list(H36M17.right_joints)] = target[2, list(H36M17.left_joints)] + 1.0   # both on the left limb
    pred[3, H36M17.left_joints[0]] = float("nan")                               # left out
    out = metrics.left_right_confusion(pred, target, min_separation_px=10.0, skeleton=H36M17)
    assert out["num_pairs"] == 23
    assert out["swapped_percent"] == pytest.approx(600 / 23) and out["collapsed_percent"] == pytest.approx(600 / 23)
    gap = target.clone()
    gap[0, H36M17.right_joints[1]] = float("nan")                              # a joint without truth: left out
    assert metrics.left_right_confusion(pred, gap, 10.0, H36M17) == \
        {"swapped_percent": pytest.approx(600 / 22), "collapsed_percent": pytest.approx(600 / 22), "num_pairs": 22}
    assert metrics.left_right_confusion(pred, target, min_separation_px=30.0, skeleton=H36M17) == \
        {"swapped_percent": None, "collapsed_percent": None, "num_pairs": 0}
    with pytest.raises(ValueError, match="expected the 17 joints"):
        metrics.left_right_confusion(pred[..., :5, :], target[..., :5, :], 1.0, H36M17)
