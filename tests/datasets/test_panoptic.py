"""CMU Panoptic keypoints (``DATASETS.NAME panoptic``) on the synthetic fixtures of ``panoptic_fixtures``: samples
against OpenCV's projections of the files' own numbers, tracks, splits, the errors that name the key, and the
triangulation of the exact 2D through ``main.py`` (~0 mm)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core.batch import collate_samples
from core.config import load_config
from core.geometry.triangulation import triangulate_cameras
from core.skeleton import PANOPTIC19
from datasets import DatasetError, build_dataset
from datasets.formats.panoptic import Y_DOWN_TO_Z_UP
from tests.datasets.panoptic_fixtures import calibration, person_cm, project_cv2, write_panoptic

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "panoptic"
CAMERAS = ["00_12", "00_06", "00_23", "00_13"]    # the default DATASETS.PANOPTIC.CAMERAS


def config(root, *overrides):
    return load_config(None, ["DATASETS.NAME", "panoptic", "DATASETS.SKELETON", "panoptic19", "DATASETS.PANOPTIC.ROOT",
                              str(root), "DATASETS.PANOPTIC.TRAIN_SEQUENCES", "['171204_pose1']", *overrides])


def test_samples_are_the_projections_of_the_annotations_through_the_chosen_hd_cameras(panoptic_root):
    test = build_dataset(config(panoptic_root), "test")
    assert [s.name for s in test.sequences] == ["171204_pose5/body0/00000100", "171204_pose5/body1/00000101",
                                                "171204_pose6/body3/00002000", "171204_pose6/body3/00002003"]
    assert len(test) == 5 + 2 + 2 + 2
    sample = test[8]                                                          # body 3, frame 2001 of 171204_pose6
    assert sample["meta"] == {"subject": "171204_pose6", "action": "171204_pose6", "frame": 1,
                              "sequence": "171204_pose6/body3/00002000"}
    assert sample["keypoints_2d"].shape == (1, 4, 19, 2) and sample["confidence_2d"].shape == (1, 4, 19)
    file_cm = person_cm(3, 1)
    cameras = {c["name"]: c for c in calibration("171204_pose6")["cameras"]}
    expected = np.stack([project_cv2(file_cm[:, :3], cameras[name]) for name in CAMERAS])
    np.testing.assert_allclose(sample["keypoints_2d"][0].numpy(), expected, atol=2e-3)
    np.testing.assert_allclose(sample["keypoints_2d_gt"][0].numpy(), expected, atol=2e-3)
    np.testing.assert_allclose(sample["keypoints_3d"][0].numpy(), 10 * file_cm[:, :3] @ Y_DOWN_TO_Z_UP.T, atol=1e-3)
    np.testing.assert_allclose(sample["confidence_2d"][0].numpy(), np.tile(file_cm[:, 3], (4, 1)), atol=1e-4)
    assert sample["visibility"].eq(1).all() and sample["camera_ids"].tolist() == [0, 1, 2, 3]
    assert sample["cameras"].image_size.tolist() == [[1920.0, 1080.0]] * 4


def test_low_confidence_joints_keep_their_input_but_have_no_truth(panoptic_root):
    test = build_dataset(config(panoptic_root), "test")
    assert test.num_missing_joints == 2
    for frame, joint, confidence in ((2, "l_ear", 0.05), (3, "r_eye", 0.0)):
        sample, j = test[frame], PANOPTIC19.index(joint)
        assert torch.isnan(sample["keypoints_3d"][0, j]).all() and torch.isnan(sample["keypoints_2d_gt"][0, :, j]).all()
        assert torch.isfinite(sample["keypoints_2d"][0, :, j]).all()
        assert sample["confidence_2d"][0, :, j].tolist() == pytest.approx([confidence] * 4)


def test_the_dlt_of_the_exact_2d_gives_the_annotations_back(panoptic_root):
    batch = collate_samples(list(build_dataset(config(panoptic_root), "test")))
    points = triangulate_cameras(batch["cameras"], batch["keypoints_2d_gt"][:, 0]).points_3d
    truth = batch["keypoints_3d"][:, 0].double()
    present = torch.isfinite(truth).all(-1)
    assert present.sum() == 11 * 19 - 2
    assert (points - truth).norm(dim=-1)[present].max() < 1e-3


def test_windows_flips_views_and_splits(panoptic_root):
    train = build_dataset(config(panoptic_root, "DATASETS.FRAMES", "3", "DATASETS.FLIP", "True"), "train")
    assert [s.name for s in train.sequences] == ["171204_pose1/body0/00000100"] and len(train) == 5
    torch.manual_seed(0)
    samples = [train[i] for i in range(5)]
    flipped = [s for s in samples if s["flipped"]]
    assert flipped and len(flipped) < 5
    for sample in flipped:                                     # mirrored 2D = the mirrored 3D through mirrored cameras
        projected = sample["cameras"].project(sample["keypoints_3d"][1].double().expand(4, -1, -1))
        assert torch.allclose(projected.float(), sample["keypoints_2d_gt"][1], atol=1e-2, equal_nan=True)
        present = torch.isfinite(projected)
        assert torch.allclose(projected.float()[present], sample["keypoints_2d"][1][present], atol=1e-2)
    single = build_dataset(config(panoptic_root, "DATASETS.VIEWS", "single"), "test")
    assert len(single) == 4 * 11 and single[1]["meta"]["sequence"] == "171204_pose5/body0/00000100/cam1"
    cameras = build_dataset(config(panoptic_root, "DATASETS.PANOPTIC.CAMERAS", "['00_13', '01_01']"), "test")
    assert cameras[0]["cameras"].image_size.tolist() == [[1920.0, 1080.0], [640.0, 480.0]]
    held_out = config(panoptic_root, "DATASETS.PANOPTIC.TRAIN_SEQUENCES", "['171204_pose1', '171204_pose6']",
                      "DATASETS.VAL_SUBJECTS", "['171204_pose6']")
    assert {s.subject for s in build_dataset(held_out, "val").sequences} == {"171204_pose6"}
    assert {s.subject for s in build_dataset(held_out, "train").sequences} == {"171204_pose1"}


@pytest.mark.parametrize("overrides, message", [
    (["DATASETS.PANOPTIC.ROOT", "/nonexistent/panoptic"], "DATASETS.PANOPTIC.ROOT '/nonexistent/panoptic' is not a "
                                                         "folder"),
    (["DATASETS.PANOPTIC.TEST_SEQUENCES", "['160422_haggling1']"], "has no sequence '160422_haggling1'; its folders: "
                                                                   "171204_pose1, 171204_pose5, 171204_pose6"),
    (["DATASETS.PANOPTIC.CAMERAS", "['00_12', '00_99']"], "DATASETS.PANOPTIC.CAMERAS: .* no camera named 00_99"),
    (["DATASETS.PANOPTIC.CAMERAS", "[]"], "DATASETS.PANOPTIC.CAMERAS is empty"),
    (["DATASETS.SKELETON", "h36m17"], "DATASETS.SKELETON 'h36m17': the data cannot give it"),
    (["DATASETS.VAL_SUBJECTS", "['171204_pose5']"], "must be some, not all, of DATASETS.PANOPTIC.TRAIN_SEQUENCES"),
])
def test_mistakes_name_the_key(panoptic_root, overrides, message):
    with pytest.raises(DatasetError, match=message):
        build_dataset(config(panoptic_root, *overrides), "test")


def test_a_damaged_annotation_names_its_file(tmp_path):
    root = write_panoptic(tmp_path)
    damaged = root / "171204_pose5" / "hdPose3d_stage1_coco19" / "body3DScene_00000102.json"
    document = json.loads(damaged.read_text())
    document["bodies"][1]["joints19"] = document["bodies"][1]["joints19"][:-4]
    damaged.write_text(json.dumps(document))
    with pytest.raises(DatasetError, match=r"body3DScene_00000102.json: bodies\[1\].joints19: expected 76 numbers"):
        build_dataset(config(root), "test")


def test_a_joint_behind_a_camera_has_no_confidence_there(tmp_path, epipose_log):
    root = write_panoptic(tmp_path)
    camera = {c["name"]: c for c in calibration("171204_pose5")["cameras"]}["00_12"]
    R, t = np.array(camera["R"]), np.array(camera["t"])[:, 0]
    behind = -R.T @ t - 10.0 * R[2]                                           # 10 cm behind camera 00_12, cm
    path = root / "171204_pose5" / "hdPose3d_stage1_coco19" / "body3DScene_00000100.json"
    document = json.loads(path.read_text())
    joint = PANOPTIC19.index("r_ear")
    document["bodies"][0]["joints19"][4 * joint:4 * joint + 4] = [*behind, 0.05]
    path.write_text(json.dumps(document))
    sample = build_dataset(config(root), "test")[0]
    assert sample["visibility"][0, :, joint].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert sample["confidence_2d"][0, 0, joint] == 0 and sample["keypoints_2d"][0, 0, joint].tolist() == [960, 540]
    assert "1 joint views lie behind their camera" in epipose_log.text


@pytest.mark.slow
def test_main_triangulates_the_exact_2d_to_zero_error(panoptic_root, tmp_path):
    out = tmp_path / "out"
    code = main.main(["--cfg", str(CONFIGS / "dlt_gt2d.yaml"), "DATASETS.PANOPTIC.ROOT", str(panoptic_root),
                      "DOTRAIN", "False", "OUTPUT_DIR", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 11 and metrics["mpjpe_mm"]["frame_avg"] < 1e-2
    assert set(metrics["mpjpe_mm"]["per_action"]) == {"171204_pose5", "171204_pose6"}
