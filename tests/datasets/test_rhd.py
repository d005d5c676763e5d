"""The RHD hand samples (``DATASETS.NAME rhd``) on the made-up layout of ``rhd_fixtures`` (never RHD's own data)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core.batch import collate_samples
from core.config import load_config
from core.geometry.mirror import mirror_pixels
from core.sample_schema import check_sample
from core.skeleton import HAND21
from datasets import DatasetError, build_dataset
from datasets.rhd import hand_crop_boxes, with_palm_root
from tests.datasets.rhd_fixtures import DISC_JOINT, SETS, project, write_rhd

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "lifting"
MIDDLE_MCP = HAND21.index("middle_mcp")


@pytest.fixture(scope="module")
def rhd(tmp_path_factory):
    root = tmp_path_factory.mktemp("rhd")
    return root, write_rhd(root)


def config(root, *overrides):
    return load_config(None, ["DATASETS.NAME", "rhd", "DATASETS.SKELETON", "hand21", "DATASETS.RHD.ROOT", str(root),
                              *overrides])


def file_hand(record, side: int):
    """(21, 3) mm, (21, 2) px and (21,) visibility of one hand of a fixture record."""
    rows = slice(21 * side, 21 * side + 21)
    return 1000.0 * record["xyz"][rows].astype(np.float64), record["uv_vis"][rows, :2], record["uv_vis"][rows, 2] == 1


def test_keypoint_samples_hold_the_hand_of_the_larger_mask_in_the_camera_frame(rhd):
    root, written = rhd
    dataset = build_dataset(config(root, "DATASETS.RHD.PALM", "False"), "train")
    records, larger = written["training"]
    assert len(dataset) == len(SETS["training"]) and dataset.num_frames == len(dataset)
    for index, sample_id in enumerate(sorted(SETS["training"])):
        sample = dataset[index]
        check_sample(sample, "rhd")
        xyz, uv, visible = file_hand(records[sample_id], larger[sample_id])
        side = ("left", "right")[larger[sample_id]]
        assert sample["meta"] == {"subject": "training", "action": side, "frame": sample_id,
                                  "sequence": f"training/{sample_id:05d}/{side}"}
        np.testing.assert_allclose(sample["keypoints_3d"][0].numpy(), xyz, rtol=1e-6)
        np.testing.assert_array_equal(sample["keypoints_2d"][0, 0].numpy(), uv)
        assert sample["visibility"][0, 0].bool().numpy().tolist() == visible.tolist()
        assert torch.equal(sample["confidence_2d"], sample["visibility"])
        cameras = sample["cameras"]
        np.testing.assert_allclose(cameras.K[0].numpy(), records[sample_id]["K"], rtol=1e-6)
        assert torch.equal(cameras.R[0], torch.eye(3, dtype=torch.float64)) and not cameras.t.any()
        # the exact 2D is the projection through K; the file's uv lies within its 0.3 px noise of it
        np.testing.assert_allclose(sample["keypoints_2d_gt"][0, 0].numpy(), project(xyz, cameras.K[0].numpy()),
                                   atol=1e-3)
        assert (sample["keypoints_2d_gt"] - sample["keypoints_2d"]).abs().max() < 0.31
    assert dataset.sample_sequences()[1] == dataset[1]["meta"]["sequence"]
    test = build_dataset(config(root), "test")
    assert [test[i]["meta"]["frame"] for i in range(len(test))] == sorted(SETS["evaluation"])


def test_the_palm_replaces_the_wrist_by_default(rhd):
    root, written = rhd
    sample = build_dataset(config(root), "test")[0]
    records, larger = written["evaluation"]
    xyz, uv, visible = file_hand(records[0], larger[0])
    palm_xyz, palm_uv, palm_visible = with_palm_root(xyz, uv, visible)
    np.testing.assert_allclose(palm_xyz[0], 0.5 * (xyz[0] + xyz[MIDDLE_MCP]))
    assert palm_visible[0] == (visible[0] or visible[MIDDLE_MCP]) and np.array_equal(palm_xyz[1:], xyz[1:])
    np.testing.assert_allclose(sample["keypoints_3d"][0].numpy(), palm_xyz, rtol=1e-6)
    np.testing.assert_allclose(sample["keypoints_2d"][0, 0].numpy(), palm_uv, rtol=1e-6)
    assert sample["visibility"][0, 0].bool().numpy().tolist() == palm_visible.tolist()


def test_the_hand_rules_and_the_stride(rhd):
    root, written = rhd
    records, _ = written["training"]
    visible = build_dataset(config(root, "DATASETS.RHD.HAND", "visible"), "train")
    for index, sample_id in enumerate(sorted(records)):
        counts = [int(records[sample_id]["uv_vis"][rows, 2].sum()) for rows in (slice(0, 21), slice(21, 42))]
        assert visible[index]["meta"]["action"] == ("left" if counts[0] > counts[1] else "right")
    both = build_dataset(config(root, "DATASETS.RHD.HAND", "both", "DATASETS.TRAIN_STRIDE", "2"), "train")
    assert len(both) == 2 * 3
    assert [both[i]["meta"]["action"] for i in range(2)] == ["left", "right"]
    assert [both[i]["meta"]["frame"] for i in range(0, 6, 2)] == sorted(records)[::2]
    batch = collate_samples([both[i] for i in range(len(both))])
    check_sample(batch, "rhd batch", batched=True)
    assert batch["frame_ids"].flatten().tolist() == list(range(6))


def test_flip_mirrors_a_hand_into_the_other_hand_consistently(rhd):
    root, _ = rhd
    plain = build_dataset(config(root), "train")
    flipping = build_dataset(config(root, "DATASETS.FLIP", "True"), "train")
    torch.manual_seed(0)
    samples = [flipping[0] for _ in range(8)]
    flipped = next(s for s in samples if s["flipped"])
    original = plain[0]
    assert flipped["meta"]["action"] != original["meta"]["action"]
    assert torch.allclose(flipped["keypoints_3d"], original["keypoints_3d"] * torch.tensor([-1.0, 1.0, 1.0]))
    mirrored_2d = mirror_pixels(original["keypoints_2d"][0].double(), original["cameras"])
    assert torch.allclose(flipped["keypoints_2d"][0].double(), mirrored_2d, atol=1e-4)
    projected = flipped["cameras"].project(flipped["keypoints_3d"].double())
    assert torch.allclose(projected.float(), flipped["keypoints_2d_gt"][0], atol=1e-3)
    assert not build_dataset(config(root, "DATASETS.FLIP", "True"), "test").flip


def test_image_samples_crop_the_hand_exactly(rhd):
    root, written = rhd
    records, larger = written["training"]
    torch.manual_seed(1)
    for overrides in ((), ("DATASETS.AUGMENT", "True", "DATASETS.ROTATION_FACTOR", "40.0")):
        dataset = build_dataset(config(root, "DATASETS.MODE", "images", "DATASETS.RHD.IMAGE_SIZE", "96",
                                       "DATASETS.RHD.PALM", "False", "DATASETS.RHD.CROP_SCALE", "1.5", *overrides),
                                "train")
        for index in range(len(dataset)):
            sample = dataset[index]
            check_sample(sample, "rhd images")
            crop_2d = sample["keypoints_2d_crop"][0, 0]
            assert torch.allclose(sample["cameras"].project(sample["keypoints_3d"].double()).float()[0], crop_2d,
                                  atol=1e-3)
            # the white disc drawn on the thumb tip lies where the crop cameras project it
            white = sample["images"][0].mean(0).numpy() > 0.5
            ys, xs = np.nonzero(white)
            assert np.linalg.norm([xs.mean(), ys.mean()] - crop_2d[DISC_JOINT].numpy()) < 0.6
            sample_id = sorted(SETS["training"])[index]
            _, _, visible = file_hand(records[sample_id], larger[sample_id])
            inside = ((crop_2d >= 0) & (crop_2d <= 95)).all(-1).numpy()
            assert sample["visibility"][0, 0].bool().numpy().tolist() == (visible & inside).tolist()
        if not overrides:      # the crop is centred on the middle knuckle's uv (0.3 px from its projection)
            assert torch.allclose(crop_2d[MIDDLE_MCP], torch.tensor([48.0, 48.0]), atol=0.6)


def test_the_hand_crop_is_tight_about_the_middle_knuckle_within_its_bounds():
    uv = np.full((3, 21, 2), 100.0)
    uv[:, 0] = (130.0, 60.0)                    # the wrist: 30 px right of and 40 px above the middle knuckle
    uv[:, 5] = (-40.0, 100.0)                   # the index tip: left of the image (counted up to its edge)
    visible = np.zeros((3, 21), bool)
    visible[0, 0] = visible[1, [0, 5]] = True   # the third hand has no visible keypoint: all of them are measured
    boxes = hand_crop_boxes(uv, visible, 1.0)
    np.testing.assert_allclose(boxes[:, :2], uv[:, MIDDLE_MCP])
    np.testing.assert_allclose(boxes[:, 2], [80.0, 200.0, 200.0])
    np.testing.assert_allclose(hand_crop_boxes(uv[:1] * 0.1 + 150, visible[:1], 2.0)[:, 2], [100.0])   # 50 px least


@pytest.mark.parametrize("overrides, words", [
    (("DATASETS.SKELETON", "h36m17"), "set DATASETS.SKELETON hand21, not 'h36m17'"),
    (("DATASETS.FRAMES", "3"), "set DATASETS.FRAMES 1, not 3"),
    (("DATASETS.RHD.HAND", "largest"), "DATASETS.RHD.HAND: unknown rule 'largest'"),
])
def test_wrong_settings_are_named(rhd, overrides, words):
    with pytest.raises(DatasetError, match=words):
        build_dataset(config(rhd[0], *overrides), "train")


def test_missing_files_and_the_validation_split_are_named(rhd, tmp_path):
    with pytest.raises(DatasetError, match="no subjects to hold out"):
        build_dataset(config(rhd[0]), "val")
    with pytest.raises(DatasetError, match=r"DATASETS.RHD.ROOT '' is not a folder"):
        build_dataset(config(""), "train")
    with pytest.raises(DatasetError, match=r"anno_training.pickle: file not found"):
        build_dataset(config(tmp_path), "train")
    write_rhd(tmp_path)
    (tmp_path / "training" / "mask" / "00003.png").unlink()
    with pytest.raises(DatasetError, match=r"00003.png: the segmentation mask is missing .* 'visible' reads none"):
        build_dataset(config(tmp_path), "train")
    assert len(build_dataset(config(tmp_path, "DATASETS.RHD.HAND", "visible"), "train")) == 6


def test_a_test_on_rhd_reports_the_papers_protocol(rhd):
    test = build_dataset(config(rhd[0]), "test")
    target = torch.stack([test[i]["keypoints_3d"][0] for i in range(len(test))]).numpy()
    pred = target.copy()
    pred[:, 5] += (30.0, 0.0, 0.0)                    # the index finger's tip 30 mm off in every sample
    figures = test.protocol_metrics({"pred_3d": pred, "target_3d": target})["rhd_protocol"]
    assert figures["epe_mean_mm"] == pytest.approx(30.0 / 21)
    assert json.loads(json.dumps(figures)) == figures           # metrics.json-ready


@pytest.mark.parametrize("name, extra", [
    ("lifting_direct.yaml", ["MODEL.LIFTER.SCOREMAP_DIRECT.SCOREMAP_SIZE", "64"]),
    ("lifting_rot.yaml", ["MODEL.LIFTER.SCOREMAP_CANONICAL.SCOREMAP_SIZE", "64", "MODEL.LIFTER.SCOREMAP_SIGMA", "4.0"]),
    ("img_lifting_rot.yaml", ["MODEL.BACKBONE.DEPTH", "18", "MODEL.BACKBONE.PRETRAINED", "none",
                              "DATASETS.RHD.IMAGE_SIZE", "64"]),
])
def test_the_rhd_lifting_configs_train_and_report_the_protocol(rhd, tmp_path, name, extra):
    out = tmp_path / "run"
    assert main.main(["--cfg", str(CONFIGS / name), "DATASETS.RHD.ROOT", str(rhd[0]), "OUTPUT_DIR", str(out),
                      "SOLVER.MAX_EPOCHS", "1", "SOLVER.STEPS", "[]", "SOLVER.BATCH_SIZE", "4",
                      "DATASETS.NUM_WORKERS", "0", "VIS.PREVIEW_SAMPLES", "1", *extra]) == 0
    figures = json.loads((out / "metrics.json").read_text())
    assert figures["rhd_protocol"]["epe_mean_mm"] > 0 and "auc" in json.dumps(figures["rhd_protocol"])
