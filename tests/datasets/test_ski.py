"""Ski-Pose keypoints (``DATASETS.NAME ski``) on the fixture of ``tests.datasets.ski_fixtures``: the six views of a
frame with that frame's calibration, flips through each window frame's own cameras, splits, refused labels, and the
ESMformer config building its dataset and model."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core.batch import collate_samples
from core.config import load_config
from core.engine.checkpoint import load_weights
from core.geometry.mirror import mirror_cameras, mirror_joints_3d
from datasets import DatasetError, build_dataset
from datasets.sequences import frame_cameras, mirror_sample
from modeling.pipelines import build_pipeline
from tests.datasets.ski_fixtures import MISSING, rows_of_split, skier, write_labels

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ski" / "esmformer.yaml"


def config(root, *overrides):
    return load_config(None, ["DATASETS.NAME", "ski", "DATASETS.SKI.ROOT", str(root), "DATASETS.FRAMES", "9",
                              *overrides])


def test_a_sample_holds_the_six_views_of_a_frame_with_its_calibration(ski_root):
    train = build_dataset(config(ski_root), "train")
    assert [s.name for s in train.sequences] == ["seq_101", "seq_102"] and len(train) == 30 + 19  # frame 7 lacks cam 4
    assert [s.subject for s in train.sequences] == ["1", "2"] and train.sequences[0].cameras.batch_shape == (30, 6)
    sample = train[12]
    assert sample["keypoints_2d"].shape == (9, 6, 17, 2) and sample["cameras"].batch_shape == (6,)
    assert sample["meta"] == {"subject": "1", "action": "ski", "frame": 12, "sequence": "seq_101"}
    np.testing.assert_allclose(sample["keypoints_3d"][4].numpy(), skier(101, 12)[1] * 1000.0, atol=1e-2)
    # the sample's cameras are its target frame's: they map its 3D onto the file's 2D (cv2's projections)
    projected = sample["cameras"].project(sample["keypoints_3d"][4].double().expand(6, -1, -1))
    torch.testing.assert_close(sample["keypoints_2d"][4].double(), projected, atol=2e-3, rtol=0)
    torch.testing.assert_close(sample["keypoints_2d_gt"], sample["keypoints_2d"], atol=2e-3, rtol=0)
    assert not torch.allclose(train[13]["cameras"].K, sample["cameras"].K)       # pan, tilt and zoom per frame
    seq, frame, _ = MISSING                                   # that frame is left out: the run's 8th frame is frame 8
    np.testing.assert_allclose(train.sequences[1].keypoints_3d[frame], skier(seq, frame + 1)[1] * 1000.0, atol=1e-2)
    test = build_dataset(config(ski_root), "test")
    assert [s.name for s in test.sequences] == ["seq_201"] and len(test) == 25


def test_some_cameras_become_the_views_in_the_order_given(ski_root):
    every = build_dataset(config(ski_root), "train")
    some = build_dataset(config(ski_root, "DATASETS.SKI.CAMERAS", "[5, 0, 2, 3]"), "train")
    # frame 7 of seq 102 lacks camera 4 only: with camera 4 left out it is kept
    assert len(some) == len(every) + 1 and some.sequences[0].cameras.batch_shape == (30, 4)
    sample, reference = some[12], every[12]
    assert sample["keypoints_2d"].shape == (9, 4, 17, 2)
    torch.testing.assert_close(sample["keypoints_2d"], reference["keypoints_2d"][:, [5, 0, 2, 3]])
    torch.testing.assert_close(sample["cameras"].K, reference["cameras"].K[[5, 0, 2, 3]])
    for wrong in ("[0, 9]", "[1, 1]"):
        with pytest.raises(DatasetError, match=r"DATASETS.SKI.CAMERAS .*expected distinct camera numbers"):
            build_dataset(config(ski_root, "DATASETS.SKI.CAMERAS", wrong), "train")


def test_flips_mirror_every_window_frame_through_its_own_cameras(ski_root):
    torch.manual_seed(0)
    train = build_dataset(config(ski_root, "DATASETS.FLIP", "True"), "train")
    seen = 0
    for index in range(0, 30, 3):
        sample = train[index]
        if not bool(sample["flipped"]):
            continue
        seen += 1
        _, views, number, _, window = train.locate(index)
        mirrored = mirror_cameras(frame_cameras(train.sequences[number].cameras, window, views))       # T, V
        exact = mirrored.project(sample["keypoints_3d"].double()[:, None].expand(-1, 6, -1, -1))
        torch.testing.assert_close(sample["keypoints_2d"].double(), exact, atol=2e-3, rtol=0)
        torch.testing.assert_close(sample["cameras"].K, mirrored[len(window) // 2].K)
    assert seen
    # through the target frame's cameras alone, the other frames would be mirrored about the wrong principal points
    plain, skeleton = build_dataset(config(ski_root), "train")[12], train.skeleton
    centre_only = mirror_sample(plain, skeleton)
    window = mirror_sample(plain, skeleton, frame_cameras(train.sequences[0].cameras, np.arange(8, 17), np.arange(6)))
    torch.testing.assert_close(centre_only["keypoints_2d"][4], window["keypoints_2d"][4])
    assert (centre_only["keypoints_2d"][0] - window["keypoints_2d"][0]).abs().max() > 1.0
    torch.testing.assert_close(window["keypoints_3d"], mirror_joints_3d(plain["keypoints_3d"], skeleton))


def test_skiers_choose_the_runs_and_validation_holds_some_out(ski_root):
    assert [s.name for s in build_dataset(config(ski_root, "DATASETS.SKI.TRAIN_SUBJECTS", "['2']"),
                                          "train").sequences] == ["seq_102"]
    held = config(ski_root, "DATASETS.VAL_SUBJECTS", "['1']")
    assert [s.name for s in build_dataset(held, "val").sequences] == ["seq_101"]
    assert [s.name for s in build_dataset(held, "train").sequences] == ["seq_102"]
    with pytest.raises(DatasetError, match=r"DATASETS.SKI.TEST_SUBJECTS: no skier\(s\) 7 in .*test/labels.h5; it has "
                                           r"3$"):
        build_dataset(config(ski_root, "DATASETS.SKI.TEST_SUBJECTS", "['7']"), "test")
    with pytest.raises(DatasetError, match=r"DATASETS.VAL_SUBJECTS \['1', '2'\] must be some, not all"):
        build_dataset(config(ski_root, "DATASETS.VAL_SUBJECTS", "['1', '2']"), "val")


def _edited_train(root, edit):
    rows = rows_of_split("train")[0]
    write_labels(root / "train" / "labels.h5", edit(rows))


def test_labels_in_other_conventions_and_missing_files_are_refused(ski_root, tmp_path):
    with pytest.raises(DatasetError, match="DATASETS.SKI.ROOT '.*nowhere' is not a folder"):
        build_dataset(config(ski_root / "nowhere"), "train")
    with pytest.raises(DatasetError, match="holds 2D keypoints only"):
        build_dataset(config(ski_root, "DATASETS.MODE", "images"), "train")
    with pytest.raises(DatasetError, match=r"other.csv: not a readable|other.csv: cannot be read as text"):
        build_dataset(config(ski_root, "DATASETS.SKI.CENTERS", str(tmp_path / "other.csv")), "train")
    lines = (ski_root / "ski_centers.csv").read_text().splitlines()
    (tmp_path / "short.csv").write_text("\n".join(line for line in lines if not line.startswith("101 5 ")))
    with pytest.raises(DatasetError, match=r"short.csv: no centre for seq 101 frame 5 \(1 frames of seq_101 lack "
                                           r"one\)"):
        build_dataset(config(ski_root, "DATASETS.SKI.CENTERS", str(tmp_path / "short.csv")), "train")
    # world-oriented 3D read as camera-oriented: the six views' world poses disagree
    _edited_train(ski_root, lambda r: dict(r, **{"3D": np.einsum("nij,nkj->nki", r["R_cam_2_world"],
                                                                  r["3D"].reshape(-1, 17, 3)).reshape(-1, 51)}))
    with pytest.raises(DatasetError, match=r"train/labels.h5: seq_101: the views' world poses .* disagree"):
        build_dataset(config(ski_root), "train")
    # a camera position in the wrong place: the 2D no longer lie on the projected 3D
    _edited_train(ski_root, lambda r: dict(r, cam_position=r["cam_position"] + [0.0, 0.0, 5.0]))
    with pytest.raises(DatasetError, match=r"seq_101: '2D' lies \d+\.\d px \(median\) from the projection"):
        build_dataset(config(ski_root), "train")
    _edited_train(ski_root, lambda r: dict(r, cam=np.where(np.arange(len(r["cam"])) == 1, 0, r["cam"])))
    with pytest.raises(DatasetError, match="seq_101 has several rows for one frame and camera"):
        build_dataset(config(ski_root), "train")


def test_the_esmformer_config_builds_its_dataset_and_model(ski_root):
    cfg = load_config(str(CONFIG), ["DATASETS.SKI.ROOT", str(ski_root), "DATASETS.NUM_WORKERS", "0",
                                    "MODEL.LIFTER.ESMFORMER.FEATURES", "16"])
    assert cfg.MODEL.LIFTER.ESMFORMER.NUM_VIEWS == 6 and cfg.DATASETS.FRAMES == 27
    test = build_dataset(cfg, "test")
    model = build_pipeline(cfg).eval()
    batch = collate_samples([test[i] for i in range(3)])
    with torch.no_grad():
        outputs = model(batch)
    assert outputs["pred_3d"].shape == (3, 17, 3) and torch.isfinite(outputs["pred_3d"]).all()


@pytest.mark.slow
def test_a_short_training_then_a_test_of_its_weights(ski_root, tmp_path):
    tiny = ["DATASETS.SKI.ROOT", str(ski_root), "DATASETS.NUM_WORKERS", "0", "DATASETS.FRAMES", "9",
            "MODEL.LIFTER.ESMFORMER.FEATURES", "16", "MODEL.LIFTER.ESMFORMER.SMFE_DEPTH", "1",
            "MODEL.LIFTER.ESMFORMER.MILF_DEPTH", "1", "SOLVER.MAX_EPOCHS", "1", "SOLVER.BATCH_SIZE", "16",
            "TEST.BATCH_SIZE", "16", "VIS.PREVIEW_SAMPLES", "0"]
    out = tmp_path / "out"
    assert main.main(["--cfg", str(CONFIG), "OUTPUT_DIR", str(out), *tiny]) == 0
    trained = json.loads((out / "metrics.json").read_text())
    assert trained["num_poses"] == 25 and np.isfinite(trained["p_mpjpe_mm"]["frame_avg"])
    assert main.main(["--cfg", str(out / "config.yaml"), "DOTRAIN", "False"]) == 0
    tested = json.loads((out / "eval_model_final" / "metrics.json").read_text())
    key = "mpjpe_root_relative_mm"
    assert tested[key]["frame_avg"] == pytest.approx(trained[key]["frame_avg"])


def test_the_h36m_plus_config_starts_from_the_human36m_model(ski_root, tmp_path):
    source = build_pipeline(load_config(str(CONFIG.parents[1] / "h36m" / "esmformer_27f_cpn_supervised.yaml"), []))
    checkpoint = tmp_path / "model_final.pth"
    torch.save({"model": source.state_dict(), "epoch": 50}, checkpoint)
    cfg = load_config(str(CONFIG.parent / "esmformer_h36m_plus.yaml"), ["DATASETS.SKI.ROOT", str(ski_root),
                                                                        "WEIGHTS", str(checkpoint)])
    target = build_pipeline(cfg)
    assert load_weights(target, cfg.WEIGHTS)[1] == []                  # every tensor fits (4 views)
    batch = collate_samples([build_dataset(cfg, "test")[i] for i in range(2)])
    assert batch["keypoints_2d"].shape[2] == 4
    with torch.no_grad():
        assert torch.isfinite(target.eval()(batch)["pred_3d"]).all()
