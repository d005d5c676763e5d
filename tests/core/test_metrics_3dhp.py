"""The MPI-INF-3DHP protocol metrics (``core.metrics_3dhp.mpi_inf_3dhp_metrics``) against values worked out by hand."""
import numpy as np
import pytest
import torch

from core import metrics_3dhp as metrics
from core.skeleton import H36M17, HAND21, MPI_INF_3DHP17, joint_map

SKELETON = MPI_INF_3DHP17
HEAD_TOP, NECK, R_WRIST, L_ANKLE, PELVIS, SPINE, HEAD = 0, 1, 4, 13, 14, 15, 16


def poses(n: int) -> torch.Tensor:
    """Whole-mm poses, so that the errors below are exact (a 150 mm error is not below 150 mm)."""
    return (torch.randn(n, 17, 3, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 300).round()


def with_errors(target: torch.Tensor, errors) -> torch.Tensor:
    """``target`` with joint j of pose i moved by ``errors[i][j]`` mm along x."""
    pred = target.clone()
    for i, moved in enumerate(errors):
        for joint, mm in moved.items():
            pred[i, joint, 0] += mm
    return pred


def auc_of(errors_mm) -> float:
    """The AUC (%) of 14 PCK joint errors by the protocol's definition: the mean over t = 0, 5, ..., 150 of the share
    of errors below t."""
    errors = np.asarray(errors_mm)
    return 100 * np.mean([(errors < t).mean() for t in range(0, 151, 5)])


def test_perfect_poses_score_the_protocols_ceiling():
    target = poses(3)
    result = metrics.mpi_inf_3dhp_metrics(target + 50.0, target, ["TS1"] * 3, SKELETON)     # translation is ignored
    assert result["all"]["pck"] == 100.0 and result["all"]["mpjpe_mm"] == pytest.approx(0, abs=1e-9)
    assert result["all"]["auc"] == pytest.approx(100 * 30 / 31)     # no error is below the 0 mm threshold
    assert result["all"]["num_frames"] == 3 and len(result["auc_thresholds_mm"]) == 31
    assert result["pck_joints"] == [n for n in SKELETON.joint_names if n not in ("pelvis", "spine", "head")]


def test_sequences_and_scenes_against_hand_computed_values():
    target = poses(4)
    # pose 0: head top 100 mm off; pose 1: right wrist 200 mm; pose 2: left ankle 150 mm (not < 150), spine 340 mm
    # (not a PCK joint); pose 3: neck 20 mm and the head centre 1000 mm (not a PCK joint)
    errors = [{HEAD_TOP: 100.0}, {R_WRIST: 200.0}, {L_ANKLE: 150.0, SPINE: 340.0}, {NECK: 20.0, HEAD: 1000.0}]
    result = metrics.mpi_inf_3dhp_metrics(with_errors(target, errors), target, ["TS1", "TS2", "TS3", "TS3"], SKELETON)
    ts1, ts2, ts3 = (result["per_sequence"][s] for s in ("TS1", "TS2", "TS3"))
    assert ts1["pck"] == pytest.approx(100.0) and ts2["pck"] == pytest.approx(100 * 13 / 14)
    assert ts3["pck"] == pytest.approx(100 * 27 / 28)
    assert ts1["mpjpe_mm"] == pytest.approx(100 / 17) and ts3["mpjpe_mm"] == pytest.approx((490 + 1020) / 34)
    assert ts1["auc"] == pytest.approx(auc_of([100] + [0] * 13))
    assert ts3["auc"] == pytest.approx(auc_of([150, 20] + [0] * 26))
    scenes = result["per_scene"]
    assert sorted(scenes) == ["green_screen", "no_green_screen"]
    assert scenes["green_screen"]["pck"] == pytest.approx(100 * 27 / 28)                 # TS1 and TS2 pooled
    assert scenes["green_screen"]["num_frames"] == 2 and scenes["no_green_screen"] == ts3
    assert result["all"]["pck"] == pytest.approx(100 * 54 / 56)
    assert result["all"]["mpjpe_mm"] == pytest.approx((100 + 200 + 490 + 1020) / 68)
    assert result["all"]["auc"] == pytest.approx(auc_of([100, 200, 150, 20] + [0] * 52))


def test_the_official_joint_set_counts_all_17_joints():
    """The test set's own mpii_get_pck_auc_joint_groups counts every joint (the pelvis, error 0 after root alignment,
    the spine and the head centre too); P-STMO's copy, the default, leaves those three out."""
    target = poses(2)
    errors = [{HEAD_TOP: 150.0, SPINE: 340.0}, {HEAD: 149.0, R_WRIST: 10.0}]     # 150 mm is not < 150: a miss
    pred = with_errors(target, errors)
    default = metrics.mpi_inf_3dhp_metrics(pred, target, ["TS1", "TS1"], SKELETON)
    official = metrics.mpi_inf_3dhp_metrics(pred, target, ["TS1", "TS1"], SKELETON, joint_set="official")
    assert default["pck_joint_set"] == "pstmo" and official["pck_joint_set"] == "official"
    assert sorted(official["pck_joints"]) == sorted(SKELETON.joint_names)
    assert default["all"]["pck"] == pytest.approx(100 * 27 / 28)
    assert official["all"]["pck"] == pytest.approx(100 * 32 / 34)
    assert official["all"]["auc"] == pytest.approx(auc_of([150, 340, 149, 10] + [0] * 30))
    assert official["all"]["mpjpe_mm"] == default["all"]["mpjpe_mm"]             # MPJPE is over all 17 in both
    with pytest.raises(ValueError, match="unknown 3DHP PCK joint set 'all'; expected one of pstmo, official"):
        metrics.mpi_inf_3dhp_metrics(pred, target, ["TS1", "TS1"], SKELETON, joint_set="all")


def test_missing_and_nan_joints():
    target = poses(3)
    pred = with_errors(target, [{}, {}, {}])
    pred[0, R_WRIST] = torch.nan                       # a failed prediction: a PCK miss, out of the MPJPE
    mask = torch.ones(3, 17, dtype=torch.bool)
    mask[1, L_ANKLE] = False                           # a joint the data lacks: left out
    mask[2, PELVIS] = False                            # no root: the whole pose is left out
    target[1, L_ANKLE] = torch.nan
    target[2, PELVIS] = torch.inf
    result = metrics.mpi_inf_3dhp_metrics(pred, target, ["TS5", "TS5", "TS6"], SKELETON, joint_mask=mask)
    assert result["per_sequence"]["TS5"]["pck"] == pytest.approx(100 * 26 / 27)
    assert result["per_sequence"]["TS5"]["mpjpe_mm"] == pytest.approx(0.0)
    assert result["per_sequence"]["TS6"] == {"pck": None, "auc": None, "mpjpe_mm": None, "num_frames": 0}
    assert result["per_scene"]["outdoor"]["num_frames"] == 2
    with pytest.raises(ValueError, match="non-finite joints that the mask marks valid"):
        metrics.mpi_inf_3dhp_metrics(pred, target, ["TS5"] * 3, SKELETON)


def test_any_skeleton_with_the_joints_gives_the_same_figures():
    target = poses(5)
    pred = target + torch.randn(5, 17, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 90
    names = ["TS1", "TS2", "TS4", "TS4", "TS6"]
    in_3dhp = metrics.mpi_inf_3dhp_metrics(pred, target, names, SKELETON)
    order = torch.from_numpy(joint_map(SKELETON, H36M17))
    in_h36m = metrics.mpi_inf_3dhp_metrics(pred[:, order], target[:, order], names, H36M17)
    assert in_h36m["all"] == pytest.approx(in_3dhp["all"])
    for group in ("per_sequence", "per_scene"):
        assert in_h36m[group].keys() == in_3dhp[group].keys()
        for name, figures in in_3dhp[group].items():
            assert in_h36m[group][name] == pytest.approx(figures)
    assert in_h36m["pck_joints"][:2] == ["head", "thorax"]          # h36m17's names of head top and neck


def test_bad_inputs_are_refused():
    target = poses(2)
    with pytest.raises(ValueError, match="lacks the 3DHP PCK joints"):
        metrics.mpi_inf_3dhp_metrics(torch.zeros(2, 21, 3), torch.zeros(2, 21, 3), ["TS1"] * 2, HAND21)
    with pytest.raises(ValueError, match=r"poses must have shape \(N, 17, 3\)"):
        metrics.mpi_inf_3dhp_metrics(target[:, :16], target[:, :16], ["TS1"] * 2, SKELETON)
    with pytest.raises(ValueError, match="sequences must be a sequence of 2 strings"):
        metrics.mpi_inf_3dhp_metrics(target, target, ["TS1"], SKELETON)
