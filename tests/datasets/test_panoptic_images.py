"""CMU Panoptic images mode (``DATASETS.NAME panoptic``, ``DATASETS.MODE images``) on the fixtures of
``panoptic_fixtures``, whose HD frames hold a white disc where OpenCV projects each person's left wrist: the disc
lies where the crop cameras project the wrist, the crop frames the joints with truth, missing and damaged frames
are named, and the learnable-triangulation config runs through ``main.py``."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import main
from core.config import load_config
from core.images import to_uint8_images
from core.skeleton import PANOPTIC19
from datasets import DatasetError, build_dataset
from modeling.pipelines import build_pipeline
from tests.datasets.panoptic_fixtures import BACKGROUND, DISC_JOINT, calibration, person_cm, project_cv2, \
    write_panoptic

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "panoptic"
CAMERAS = ["00_12", "00_06", "00_23", "00_13"]    # the default DATASETS.PANOPTIC.CAMERAS
SIZE = 192


def config(root, *overrides):
    return load_config(None, ["DATASETS.NAME", "panoptic", "DATASETS.SKELETON", "panoptic19", "DATASETS.MODE", "images",
                              "DATASETS.PANOPTIC.ROOT", str(root), "DATASETS.PANOPTIC.TRAIN_SEQUENCES",
                              "['171204_pose1']", "DATASETS.PANOPTIC.IMAGE_SIZE", str(SIZE), *overrides])


def disc_centres(sample, expected: np.ndarray) -> np.ndarray:
    """(V, 2) the brightness centroid of each crop within 12 pixels of ``expected`` (V, 2)."""
    grey = to_uint8_images(sample["images"]).astype(np.float64).mean(-1) - BACKGROUND      # (V, S, S)
    ys, xs = np.mgrid[:SIZE, :SIZE]
    near = np.hypot(xs - expected[:, :1, None], ys - expected[:, 1:, None]) < 12
    weights = np.clip(grey, 0, None) * near
    return np.stack([(weights * xs).sum((1, 2)), (weights * ys).sum((1, 2))], -1) / weights.sum((1, 2))[:, None]


@pytest.mark.parametrize("split, index", [("test", 8), ("train", 1)])
def test_the_disc_lies_where_the_crop_cameras_project_the_wrist(panoptic_root, split, index):
    torch.manual_seed(3)                                    # training crops are zoomed and rotated
    sample = build_dataset(config(panoptic_root, "DATASETS.AUGMENT", "True"), split)[index]
    assert set(sample) == {"keypoints_3d", "visibility", "camera_ids", "frame_ids", "flipped", "meta", "images",
                           "image_cameras", "cameras", "keypoints_2d_crop"}
    assert sample["images"].shape == (4, 3, SIZE, SIZE) and sample["cameras"].image_size.tolist() == [[SIZE] * 2] * 4
    wrist = sample["keypoints_3d"][0, DISC_JOINT].double().expand(4, 1, 3)
    expected = sample["cameras"].project(wrist)[:, 0].numpy()
    assert np.abs(disc_centres(sample, expected) - expected).max() < 0.25
    torch.testing.assert_close(sample["keypoints_2d_crop"][0, :, DISC_JOINT], torch.from_numpy(expected).float())
    # the full images' cameras are the calibration's: they project the file's wrist where OpenCV does
    sequence, (body, frame) = ("171204_pose6", (3, 1)) if split == "test" else ("171204_pose1", (0, 1))
    cameras = {c["name"]: c for c in calibration(sequence)["cameras"]}
    drawn = np.stack([project_cv2(person_cm(body, frame)[DISC_JOINT:DISC_JOINT + 1, :3], cameras[c])[0]
                      for c in CAMERAS])
    np.testing.assert_allclose(sample["image_cameras"].project(wrist)[:, 0].numpy(), drawn, atol=2e-3)
    if split == "train":                                    # augmented: not the plain square around the joints
        rotated = sample["cameras"].K[:, 0, 1].abs() > 1e-6
        assert rotated.any()


def test_the_crop_is_the_square_around_the_joints_with_truth(panoptic_root):
    test = build_dataset(config(panoptic_root), "test")
    sample = test[2]                                        # body 0 at frame 102: its l_ear has no truth
    ear = PANOPTIC19.index("l_ear")
    crop = sample["keypoints_2d_crop"][0].double()          # (V, J, 2)
    assert torch.isnan(crop[:, ear]).all() and sample["visibility"][0, :, ear].eq(0).all()
    others = torch.cat([crop[:, :ear], crop[:, ear + 1:]], 1)
    low, high = others.amin(1), others.amax(1)
    torch.testing.assert_close((low + high) / 2, torch.full((4, 2), SIZE / 2, dtype=torch.float64))
    torch.testing.assert_close((high - low).amax(-1), torch.full((4,), SIZE / 1.2, dtype=torch.float64))
    assert sample["visibility"][0, :, :ear].eq(1).all()    # the other joints lie in the crop
    batch_3d = sample["keypoints_3d"][0].double().expand(4, -1, -1)
    torch.testing.assert_close(sample["cameras"].project(batch_3d).float(), sample["keypoints_2d_crop"][0],
                               equal_nan=True)


def test_a_frame_without_truth_is_cropped_whole(tmp_path):
    root = write_panoptic(tmp_path)
    path = root / "171204_pose6" / "hdPose3d_stage1_coco19" / "body3DScene_00002000.json"
    document = json.loads(path.read_text())
    document["bodies"][0]["joints19"][3::4] = [0.05] * PANOPTIC19.num_joints
    path.write_text(json.dumps(document))
    test = build_dataset(config(root), "test")
    sample = test[7]                                        # 171204_pose6 frame 2000
    assert sample["meta"]["sequence"] == "171204_pose6/body3/00002000" and sample["meta"]["frame"] == 0
    assert torch.isnan(sample["keypoints_3d"]).all() and sample["visibility"].eq(0).all()
    affine = sample["cameras"].K @ torch.linalg.inv(sample["image_cameras"].K)             # full image -> crop
    scale = SIZE / 1920
    expected = torch.tensor([[scale, 0, SIZE / 2 - scale * 960], [0, scale, SIZE / 2 - scale * 540], [0, 0, 1]],
                            dtype=torch.float64)
    torch.testing.assert_close(affine, expected.expand(4, 3, 3))


def test_missing_and_damaged_frames_are_named(tmp_path):
    root = write_panoptic(tmp_path)
    frames = root / "171204_pose5" / "hdImgs"
    (frames / "00_23" / "00_23_00000103.jpg").unlink()
    (frames / "00_06" / "00_06_00000101.jpg").unlink()
    with pytest.raises(DatasetError) as missing:
        build_dataset(config(root), "test")
    assert str(missing.value) == (
        f"DATASETS.PANOPTIC.ROOT: 3 of the 44 HD images of the samples are missing, the first "
        f"'{frames / '00_06' / '00_06_00000101.jpg'}' (images mode reads <seq>/hdImgs/<cam>/<cam>_<frame:08d>.jpg, as "
        "the Panoptic toolbox's scripts/hdImgsExtractor.sh writes them)")     # 00_06 frame 101: two tracks' sample
    build_dataset(config(root, "DATASETS.MODE", "keypoints"), "test")         # keypoints need no images
    root = write_panoptic(tmp_path / "damaged")
    frames = root / "171204_pose6" / "hdImgs"
    (frames / "00_13" / "00_13_00002001.jpg").write_bytes(b"\xff\xd8 not a JPEG")
    cv2.imwrite(str(frames / "00_06" / "00_06_00002003.jpg"), np.zeros((540, 960, 3), np.uint8))
    test = build_dataset(config(root), "test")
    with pytest.raises(DatasetError) as unreadable:
        test[8]
    assert str(unreadable.value) == f"image '{frames / '00_13' / '00_13_00002001.jpg'}' is missing or unreadable " \
                                    "(DATASETS.PANOPTIC.ROOT)"
    with pytest.raises(DatasetError, match=r"^image '.*00_06_00002003.jpg' is 960 x 540 pixels, its camera's "
                                           r"calibration 1920 x 1080$"):
        test[9]


def test_single_views_windows_and_refused_settings(panoptic_root):
    single = build_dataset(config(panoptic_root, "DATASETS.VIEWS", "single"), "test")
    sample = single[4 * 8 + 2]                              # view 2 of sample 8
    assert sample["images"].shape == (1, 3, SIZE, SIZE) and sample["camera_ids"].tolist() == [2]
    whole = build_dataset(config(panoptic_root), "test")[8]
    torch.testing.assert_close(sample["images"][0], whole["images"][2])
    window = build_dataset(config(panoptic_root, "DATASETS.FRAMES", "3"), "test")[8]
    assert window["keypoints_2d_crop"].shape == (3, 4, 19, 2) and window["visibility"].shape == (3, 4, 19)
    torch.testing.assert_close(window["keypoints_2d_crop"][1], whole["keypoints_2d_crop"][0])
    with pytest.raises(DatasetError, match="DATASETS.FLIP mirrors keypoint samples; the Panoptic images mode does not "
                                           "mirror crops"):
        build_dataset(config(panoptic_root, "DATASETS.FLIP", "True"), "train")
    with pytest.raises(DatasetError, match="DATASETS.PANOPTIC.IMAGE_SIZE must be >= 8 and CROP_SCALE > 0"):
        build_dataset(config(panoptic_root, "DATASETS.PANOPTIC.CROP_SCALE", "0.0"), "test")


@pytest.mark.slow
def test_main_runs_the_algebraic_config_on_the_images(panoptic_root, tmp_path):
    tiny = ["DATASETS.PANOPTIC.ROOT", str(panoptic_root), "MODEL.BACKBONE.PRETRAINED", "none",
            "MODEL.BACKBONE.DEPTH", "18", "DATASETS.PANOPTIC.IMAGE_SIZE", "128", "DATASETS.NUM_WORKERS", "0"]
    recipe = str(CONFIGS / "r152_384_algebraic.yaml")
    torch.manual_seed(0)
    weights = tmp_path / "untrained.pth"
    torch.save({"model": build_pipeline(load_config(recipe, tiny)).state_dict(), "epoch": 0}, weights)
    out = tmp_path / "out"
    assert main.main(["--cfg", recipe, *tiny, "DOTRAIN", "False", "WEIGHTS", str(weights), "OUTPUT_DIR", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 11 and np.isfinite(metrics["mpjpe_root_relative_mm"]["frame_avg"])
    assert set(metrics["mpjpe_mm"]["per_action"]) == {"171204_pose5", "171204_pose6"}
    # the two joints without truth (frames 102 and 103 of body 0) count in neither detection rate
    joint_views = metrics["jdr_percent"]["num_joint_views"] + metrics["jdr_occluded_percent"]["num_joint_views"]
    assert joint_views == 11 * 4 * 19 - 2 * 4
    assert metrics["jdr_percent"]["threshold_px"] == [0.05 * 128]
    predictions = np.load(out / "predictions.npz")
    assert predictions["pred_2d"].shape == (11, 4, 19, 2) and np.isnan(predictions["target_2d"]).any(-1).sum() == 8
    assert list((out / "preview").glob("*.png"))
