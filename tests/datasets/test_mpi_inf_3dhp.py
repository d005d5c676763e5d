"""MPI-INF-3DHP keypoint sequences (``DATASETS.NAME mpi_inf_3dhp``) on the fixtures of ``mpi_inf_3dhp_fixtures``, and
the shipped 3DHP configs built on them, through one evaluation batch."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from core.batch import collate_samples
from core.config import load_config
from core.engine.checkpoint import load_weights
from core.engine.evaluator import evaluate
from core.engine.run import format_summary
from core.sample_schema import check_sample
from core.skeleton import MPI_INF_3DHP17
from datasets import DatasetError, build_dataset
from datasets.formats.mpi_inf_3dhp import TRAIN_CAMERAS, sequence_camera, train_cameras
from modeling.pipelines import build_pipeline
from tests.datasets.mpi_inf_3dhp_fixtures import (calibration_text, sequence_take, train_rig, universal, walking_person,
                                                  write_test_npz, write_train_npz)

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "mpi_inf_3dhp"


@pytest.fixture
def root(mpi_inf_3dhp_root):
    return mpi_inf_3dhp_root


def config(root, *overrides, path=None):
    return load_config(path, ["DATASETS.NAME", "mpi_inf_3dhp", "DATASETS.SKELETON", "mpi_inf_3dhp17",
                              "DATASETS.MPI_INF_3DHP.ROOT", str(root), "DATASETS.MPI_INF_3DHP.TRAIN_SUBJECTS",
                              "['S1', 'S2']", "DATASETS.MPI_INF_3DHP.TEST_SUBJECTS", "['TS1', 'TS3', 'TS5']",
                              *overrides])


def world_of(sequence: str, points_cam) -> np.ndarray:
    return sequence_camera(sequence).camera_to_world(torch.from_numpy(points_cam).double()).numpy()


def test_test_sequences_from_the_processed_archive(root):
    test = build_dataset(config(root, "DATASETS.FRAMES", "5"), "test")
    assert [s.name for s in test.sequences] == ["TS1", "TS3", "TS5"] and len(test) == 36
    sample = test[14]                                                    # TS3, frame 2
    check_sample(sample, "TS3 sample")
    assert sample["meta"] == {"subject": "TS3", "action": "TS3", "frame": 2, "sequence": "TS3"}
    annot2, _, univ, _, _ = sequence_take("TS3")
    np.testing.assert_allclose(sample["keypoints_2d"][2, 0].numpy(), annot2[2], rtol=1e-6)
    np.testing.assert_allclose(sample["keypoints_3d"][2].numpy(), world_of("TS3", univ)[2], atol=1e-2)
    assert torch.isnan(sample["keypoints_3d"][3]).all() and torch.isfinite(sample["keypoints_2d"][3]).all()
    assert test[26]["cameras"].image_size.tolist() == [[1920, 1080]]          # TS5: outdoor camera
    assert test.num_missing_joints == 3 * 17                                 # one invalid frame per sequence


def test_the_official_test_set_gives_metric_or_universal_3d(root):
    folder = ["DATASETS.MPI_INF_3DHP.TEST_SET", "mpi_inf_3dhp_test_set"]
    metric = build_dataset(config(root, *folder, "DATASETS.MPI_INF_3DHP.UNIVERSAL_3D", "False"), "test")
    seq = metric.sequences[2]                                                # TS5, lens distortion
    np.testing.assert_allclose(seq.keypoints_3d[0], walking_person(12, y_up=True)[0], atol=1e-2)
    scored = np.isfinite(seq.keypoints_3d).all((1, 2))                       # annot2 is the projection of annot3
    assert scored.tolist() == [frame != 3 for frame in range(12)]
    np.testing.assert_allclose(seq.keypoints_2d_gt[scored], seq.keypoints_2d[scored], atol=1e-2)
    universal_3d = build_dataset(config(root, *folder), "test").sequences[2]
    np.testing.assert_allclose(universal_3d.keypoints_3d[5], world_of("TS5", sequence_take("TS5")[2])[5], atol=1e-2)
    with pytest.raises(DatasetError, match="holds univ_annot3 only"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.UNIVERSAL_3D", "False"), "test")


def test_training_cameras_without_calibration_are_single_view_sequences(root):
    train = build_dataset(config(root, "DATASETS.MPI_INF_3DHP.CAMERAS", "['8', '0']"), "train")
    assert [s.name for s in train.sequences][:3] == ["S1/Seq1/cam8", "S1/Seq1/cam0", "S1/Seq2/cam8"]
    assert train.num_views == 1 and len(train) == 2 * 2 * 2 * 10
    seq = train.sequences[0]
    cam = train_rig(("8",)).unsqueeze(1).world_to_camera(torch.from_numpy(walking_person(10))[None]).numpy()[0]
    np.testing.assert_allclose(seq.keypoints_3d, universal(cam), atol=1e-2)          # its own camera frame
    assert torch.equal(seq.cameras.K, train_cameras(["8"]).K) and (seq.cameras.R == torch.eye(3)).all()
    everything = build_dataset(config(root), "train")
    assert len(everything.sequences) == 2 * 2 * len(TRAIN_CAMERAS)


def test_calibrated_training_takes_are_multi_view(root):
    cfg = config(root, "DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT", str(root / "training_set"), "DATASETS.FRAMES", "3")
    train = build_dataset(cfg, "train")
    assert [s.name for s in train.sequences] == ["S1/Seq1", "S1/Seq2", "S2/Seq1", "S2/Seq2"] and train.num_views == 8
    np.testing.assert_allclose(train.sequences[0].keypoints_3d, universal(walking_person(10)), atol=1e-2)
    batch = collate_samples([train[i] for i in range(4)])
    check_sample(batch, "multi-view batch", batched=True)
    assert batch["keypoints_2d"].shape == (4, 3, 8, 17, 2)
    single = build_dataset(config(root, "DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT", str(root / "training_set"),
                                  "DATASETS.VIEWS", "single"), "train")
    assert len(single) == 8 * len(train) and single[9]["meta"]["sequence"] == "S1/Seq1/cam1"


def test_wrong_settings_and_files_are_refused(root, tmp_path):
    with pytest.raises(DatasetError, match="no subject.s. S3; the file has S1, S2, S7, S8"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.TRAIN_SUBJECTS", "['S1', 'S3']"), "train")
    with pytest.raises(DatasetError, match=r"data\['S1 Seq1'\]: no camera.s. 3"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.CAMERAS", "['3']"), "train")
    write_train_npz(root / "camera_9.npz", subjects=("S1",), names=("0", "9"))
    with pytest.raises(DatasetError, match=r"camera_9.npz data\['S1 Seq1'\]: no intrinsics for training camera.s. 9"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.TRAIN_FILE", "camera_9.npz",
                             "DATASETS.MPI_INF_3DHP.TRAIN_SUBJECTS", "['S1']"), "train")
    write_test_npz(root / "only_ts1.npz", sequences=("TS1",))
    with pytest.raises(DatasetError, match="only_ts1.npz: no test sequence.s. TS2; it has TS1"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.TEST_SET", "only_ts1.npz",
                             "DATASETS.MPI_INF_3DHP.TEST_SUBJECTS", "['TS2']"), "test")
    with pytest.raises(DatasetError, match="TS2.annot_data.mat: file not found"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.TEST_SET", "mpi_inf_3dhp_test_set",
                             "DATASETS.MPI_INF_3DHP.TEST_SUBJECTS", "['TS2']"), "test")
    with pytest.raises(DatasetError, match="ROOT '.*nowhere' is not a folder"):
        build_dataset(config(tmp_path / "nowhere"), "train")
    with pytest.raises(DatasetError, match="holds 2D keypoints only"):
        build_dataset(config(root, "DATASETS.MODE", "images"), "train")
    with pytest.raises(DatasetError, match="CALIBRATION_ROOT: .*camera.calibration: cannot read"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT", str(tmp_path / "none")), "train")
    names = tuple(str(n) for n in range(9))                                  # S2 Seq1 with its cameras relabelled
    (root / "training_set" / "S2" / "Seq1" / "camera.calibration").write_text(
        calibration_text(train_rig(names), names[::-1]))
    with pytest.raises(DatasetError, match=r"S2.Seq1.camera.calibration: the views of .* disagree by \d+ mm"):
        build_dataset(config(root, "DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT", str(root / "training_set")), "train")
    with pytest.raises(DatasetError, match="VAL_SUBJECTS"):
        build_dataset(config(root, "DATASETS.VAL_SUBJECTS", "['TS1']"), "val")


def test_held_out_training_subjects_and_other_skeletons(root):
    cfg = config(root, "DATASETS.VAL_SUBJECTS", "['S2']", "DATASETS.SKELETON", "h36m17",
                 "DATASETS.MPI_INF_3DHP.TEST_SUBJECTS", "['S7', 'TS1']")
    val, test = build_dataset(cfg, "val"), build_dataset(cfg, "test")
    assert {s.subject for s in val.sequences} == {"S2"}
    assert [s.name for s in test.sequences][-1] == "TS1" and test.sequences[0].subject == "S7"
    pelvis_first = test[0]["keypoints_3d"][0]                               # h36m17: the pelvis leads
    np.testing.assert_allclose(pelvis_first[0].numpy(), test.sequences[0].keypoints_3d[0, 14], atol=1e-6)


@pytest.mark.parametrize("name", ["poseformer_9.yaml", "poseformer_81.yaml", "esmformer.yaml", "esmformer_selfsup.yaml",
                                  "esmformer_h36m_plus.yaml", "esmformer_selfsup_h36m_plus.yaml"])
def test_the_configs_run_an_evaluation_batch_on_fixtures(root, name):
    torch.manual_seed(0)
    cfg = load_config(str(CONFIGS / name), ["DATASETS.MPI_INF_3DHP.ROOT", str(root), "DATASETS.NUM_WORKERS", "0",
                                            "DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT", str(root / "training_set")])
    test = build_dataset(cfg, "test")
    model = build_pipeline(cfg)
    indices = [0, 2, 3, len(test) - 1]
    loader = DataLoader(Subset(test, indices), batch_size=4, collate_fn=collate_samples)
    summary, predictions = evaluate(model, loader, torch.device("cpu"))
    summary.update(test.protocol_metrics(predictions))                     # as the engine's test does
    protocol = summary["mpi_inf_3dhp"]
    multi_view = "esmformer" in name                                          # tests on held-out S7 and S8
    assert protocol["all"]["num_frames"] == (4 if multi_view else 3)         # frame 3 of TS1 is not scored
    assert 0 <= protocol["all"]["pck"] <= 100 and protocol["all"]["mpjpe_mm"] > 0
    assert sorted(protocol["per_sequence"]) == (["S7", "S8"] if multi_view else ["TS1", "TS6"])
    frames = protocol["all"]["num_frames"]
    assert any(line.startswith(f"MPI-INF-3DHP ({frames} frames): PCK ") for line in format_summary(summary))


def test_the_pck_joint_set_is_chosen_by_the_config_and_named_in_the_metrics(root):
    cfg = config(root, "DATASETS.MPI_INF_3DHP.TEST_SUBJECTS", "['TS1']")
    test = build_dataset(cfg, "test")
    target = torch.stack([test[i]["keypoints_3d"][0] for i in range(2)]).numpy()
    head_centre = np.arange(17) == MPI_INF_3DHP17.index("head")
    predictions = {"pred_3d": target + 200.0 * head_centre[:, None], "target_3d": target,
                   "subject": np.array(["TS1", "TS1"])}                    # the head centre 200 mm off
    default = test.protocol_metrics(predictions)["mpi_inf_3dhp"]
    assert default["pck_joint_set"] == "pstmo" and default["all"]["pck"] == 100.0 and len(default["pck_joints"]) == 14
    official = build_dataset(config(root, "DATASETS.MPI_INF_3DHP.TEST_SUBJECTS", "['TS1']",
                                    "DATASETS.MPI_INF_3DHP.PCK_JOINTS", "official"), "test")
    result = official.protocol_metrics(predictions)["mpi_inf_3dhp"]
    assert result["pck_joint_set"] == "official" and result["all"]["pck"] == pytest.approx(100 * 16 / 17)


@pytest.mark.parametrize("name, human36m", [("esmformer_h36m_plus.yaml", "esmformer_27f_cpn_supervised.yaml"),
                                            ("esmformer_selfsup_h36m_plus.yaml", "esmformer_27f_cpn_selfsup.yaml")])
def test_the_h36m_plus_configs_start_from_their_human36m_model(root, tmp_path, name, human36m):
    """Every tensor of the Human3.6M model fits the 3DHP model (4 views, Human3.6M-17 joints), which the engine loads
    strictly from WEIGHTS before training."""
    source = build_pipeline(load_config(str(CONFIGS.parent / "h36m" / human36m), []))
    checkpoint = tmp_path / "model_final.pth"
    torch.save({"model": source.state_dict(), "epoch": 50}, checkpoint)
    cfg = load_config(str(CONFIGS / name), ["DATASETS.MPI_INF_3DHP.ROOT", str(root), "WEIGHTS", str(checkpoint)])
    assert Path(load_config(str(CONFIGS / name), []).WEIGHTS) == Path("outs") / Path(human36m).stem / "model_final.pth"
    target = build_pipeline(cfg)
    tested, kept = load_weights(target, cfg.WEIGHTS)
    assert kept == [] and tested.endswith("(epoch 50)")
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value)
