"""DATASETS.SKELETON end to end: the synthetic world gives its joints in another layout, and every part (samples,
flips, models, metrics, pictures) follows that layout."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core import metrics
from core.config import load_config
from core.skeleton import H36M17, MPI_INF_3DHP17, joint_map
from datasets import DatasetError, build_dataset
from datasets.sequences import JOINT_AXES, mirror_sample
from modeling.pipelines import build_pipeline

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["DATASETS.SYNTHETIC.ACTIONS", "['walk','squat']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "20",
         "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.VAL_SUBJECTS", "[]"]


def config(*overrides):
    return load_config(str(ROOT / "configs" / "synthetic" / "dlt_noisy2d.yaml"), [*SMALL, *overrides])


def test_the_synthetic_world_gives_the_same_points_in_3dhps_order():
    h36m = build_dataset(config(), "test")
    hp = build_dataset(config("DATASETS.SKELETON", "mpi_inf_3dhp17"), "test")
    order = torch.from_numpy(joint_map(H36M17, MPI_INF_3DHP17))
    a, b = h36m[5], hp[5]
    assert hp.skeleton is MPI_INF_3DHP17 and b["keypoints_3d"].shape[-2] == 17
    for key, axis in JOINT_AXES.items():
        if key in a:
            assert torch.equal(a[key].index_select(axis, order), b[key]), key
    assert torch.equal(b["keypoints_3d"][0, MPI_INF_3DHP17.root], a["keypoints_3d"][0, H36M17.root])   # the pelvis


def test_a_mirrored_3dhp_sample_swaps_its_own_left_and_right():
    hp = build_dataset(config("DATASETS.SKELETON", "mpi_inf_3dhp17"), "test")
    sample = hp[3]
    mirrored = mirror_sample(sample, hp.skeleton)
    projected = mirrored["cameras"].project(mirrored["keypoints_3d"][0].double().expand(4, -1, -1))
    torch.testing.assert_close(projected.float(), mirrored["keypoints_2d_gt"][0], atol=1e-3, rtol=0)
    left, right = MPI_INF_3DHP17.index("l_wrist"), MPI_INF_3DHP17.index("r_wrist")
    assert torch.allclose(mirrored["keypoints_3d"][0, left, 1:], sample["keypoints_3d"][0, right, 1:])


def test_a_layout_the_world_cannot_make_fails_naming_the_missing_joints():
    with pytest.raises(DatasetError, match="DATASETS.SKELETON 'panoptic19': the data cannot give it .*l_eye"):
        build_dataset(config("DATASETS.SKELETON", "panoptic19"), "test")


def test_models_take_the_joint_count_and_graph_of_the_skeleton():
    lcn = build_pipeline(load_config(str(ROOT / "configs" / "synthetic" / "lcn_lifter.yaml"),
                                     ["DATASETS.SKELETON", "panoptic19"]))
    assert lcn.skeleton.name == "panoptic19" and lcn.lifter.num_joints == 19 and len(lcn.non_root) == 18
    assert lcn.lifter(torch.zeros(2, 38)).shape == (2, 57)


def test_pose_metrics_are_root_relative_to_the_skeletons_root():
    target = torch.randn(3, 17, 3, dtype=torch.float64) * 200
    shifted = target.clone()
    shifted[:, 14] += 50.0                          # only 3DHP's root (its pelvis) moves
    hp = metrics.pose_metrics(shifted, target, ["walk"] * 3, MPI_INF_3DHP17)
    h36m = metrics.pose_metrics(shifted, target, ["walk"] * 3, H36M17)
    assert hp["mpjpe_root_relative_mm"]["frame_avg"] == pytest.approx(16 / 17 * np.sqrt(3) * 50)
    assert h36m["mpjpe_root_relative_mm"]["frame_avg"] == pytest.approx(np.sqrt(3) * 50 / 17)
    assert list(hp["mpjpe_root_relative_mm"]["per_joint"])[0] == "head_top"


def test_main_triangulates_the_world_in_3dhps_layout_as_in_h36ms(tmp_path):
    quiet = ["DATASETS.SYNTHETIC.NOISE.JITTER_PX", "0.0", "DATASETS.SYNTHETIC.NOISE.OUTLIER_PROB", "0.0",
             "DATASETS.SYNTHETIC.NOISE.SWAP_PROB", "0.0", "VIS.PREVIEW_SAMPLES", "1"]
    results = {}
    for name in ("h36m17", "mpi_inf_3dhp17"):
        out = tmp_path / name
        assert main.main(["--cfg", str(ROOT / "configs" / "synthetic" / "dlt_noisy2d.yaml"), "OUTPUT_DIR", str(out),
                          "DATASETS.SKELETON", name, *SMALL, *quiet]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())
        assert list((out / "preview").glob("*.png"))
    hp, h36m = results["mpi_inf_3dhp17"]["mpjpe_mm"], results["h36m17"]["mpjpe_mm"]
    assert hp["frame_avg"] == pytest.approx(h36m["frame_avg"]) and hp["frame_avg"] < 1e-3
    assert set(hp["per_joint"]) == set(MPI_INF_3DHP17.joint_names)
