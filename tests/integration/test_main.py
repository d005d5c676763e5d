"""End to end through the command line: the two first pipelines, checkpoints, resumption, errors."""
import argparse
import hashlib
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core.config import ConfigError, load_config
from core.engine.output_dir import check_free_space
from datasets.synthetic.dataset import build_synthetic
from modeling.pipelines import build_pipeline

ROOT = Path(__file__).resolve().parents[2]
# A small world: 2 actions, 40 frames per sequence, so each run takes seconds.
SMALL = ["DATASETS.SYNTHETIC.ACTIONS", "['walk','squat']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "40",
         "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5']", "DATASETS.VAL_SUBJECTS", "[]",
         "VIS.PREVIEW_SAMPLES", "1"]


def run(tmp_path, config, *overrides):
    out = tmp_path / "out"
    code = main.main(["--cfg", str(ROOT / "configs" / "synthetic" / config), "OUTPUT_DIR", str(out),
                      *SMALL, *overrides])
    return code, out


def test_dlt_on_exact_2d_recovers_the_world(tmp_path):
    code, out = run(tmp_path, "dlt_noisy2d.yaml", "DATASETS.SYNTHETIC.NOISE.JITTER_PX", "0.0",
                    "DATASETS.SYNTHETIC.NOISE.OUTLIER_PROB", "0.0", "DATASETS.SYNTHETIC.NOISE.SWAP_PROB", "0.0")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 2 * 2 * 40  # test subjects S9, S11 x 2 actions x 40 frames
    assert metrics["mpjpe_mm"]["frame_avg"] < 1e-3
    assert set(metrics["mpjpe_mm"]["per_action"]) == {"walk", "squat"}
    for name in ("config.yaml", "log.txt", "predictions.npz"):
        assert (out / name).is_file(), name
    assert list((out / "preview").glob("*.png"))
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_dlt_on_noisy_2d_reports_a_realistic_error(tmp_path):
    code, out = run(tmp_path, "dlt_noisy2d.yaml")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 15.0 < metrics["mpjpe_mm"]["action_avg"] < 60.0  # 30 mm measured on the full world
    assert metrics["p_mpjpe_mm"]["action_avg"] < metrics["mpjpe_mm"]["action_avg"]


def test_linear_lifter_trains_tests_reloads_and_resumes(tmp_path):
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "128", "MODEL.LIFTER.LINEAR.DROPOUT", "0.0", "SOLVER.BASE_LR", "0.01",
            "SOLVER.BATCH_SIZE", "32"]
    code, out = run(tmp_path, "linear_lifter.yaml", *tiny, "SOLVER.MAX_EPOCHS", "3")
    assert code == 0
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    first = json.loads((out / "metrics.json").read_text())
    assert "mpjpe_mm" not in first  # root-relative predictions: no absolute MPJPE
    # After 3 short epochs the lifter clearly beats predicting the training set's mean pose.
    final = torch.load(out / "model_final.pth", weights_only=True)["model"]
    predictions = np.load(out / "predictions.npz")
    mean_pose = np.concatenate([[0.0, 0.0, 0.0], final["outputs.mean"].numpy()]).reshape(17, 3)
    mean_pose_error = np.linalg.norm(predictions["target_3d"] - mean_pose, axis=-1).mean()
    assert first["mpjpe_root_relative_mm"]["frame_avg"] < 0.8 * mean_pose_error

    # Testing the saved weights reproduces the metrics.
    retest = tmp_path / "retest"
    assert main.main(["--cfg", str(out / "config.yaml"), "DOTRAIN", "False", "OUTPUT_DIR", str(retest),
                      "WEIGHTS", str(out / "model_final.pth")]) == 0
    again = json.loads((retest / "metrics.json").read_text())
    assert again["mpjpe_root_relative_mm"]["frame_avg"] == pytest.approx(first["mpjpe_root_relative_mm"]["frame_avg"])

    # The same command with more epochs resumes from the last checkpoint instead of starting over.
    code, _ = run(tmp_path, "linear_lifter.yaml", *tiny, "SOLVER.MAX_EPOCHS", "4")
    assert code == 0
    log = (out / "log.txt").read_text()
    assert "resumed from" in log and "epoch 4/4 done" in log and "epoch 3/4 done" not in log
    state = torch.load(out / "model_final.pth", weights_only=True)
    assert state["epoch"] == 4


def hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_evaluations_write_their_own_subfolder_and_leave_the_training_run_as_it_was(tmp_path, capsys):
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "32", "SOLVER.MAX_EPOCHS", "2", "DATASETS.VAL_SUBJECTS", "['S5']"]
    code, out = run(tmp_path, "linear_lifter.yaml", *tiny)
    assert code == 0
    trained = hashes(out)
    training_metrics = json.loads((out / "metrics.json").read_text())

    # the README's "test the trained run": no weights named, the run's best validated checkpoint is tested
    code, _ = run(tmp_path, "linear_lifter.yaml", *tiny, "DOTRAIN", "False")
    assert code == 0
    best = out / "eval_model_best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["mpjpe_root_relative_mm"] == training_metrics["mpjpe_root_relative_mm"]
    assert metrics["checkpoint"].startswith(f"{out / 'model_best.pth'} (epoch ")
    assert load_config(str(best / "config.yaml"), []).DOTRAIN is False
    assert (best / "predictions.npz").is_file() and "not training: writing into eval_model_best" in \
        (best / "log.txt").read_text()
    assert len(list((best / "preview").glob("*.png"))) == 1
    (events,) = (best / "tensorboard").glob("events.out.tfevents.*")
    # other weights, videos alone, and weights that are no checkpoint (refused before anything is written)
    weights = ["DOTRAIN", "False", "WEIGHTS", str(out / "model_final.pth")]
    assert main.main(["--cfg", str(out / "config.yaml"), *weights]) == 0
    assert json.loads((out / "eval_model_final" / "metrics.json").read_text())["checkpoint"].startswith(
        str(out / "model_final.pth"))
    assert main.main(["--cfg", str(out / "config.yaml"), *weights, "DOTEST", "False", "VIS.VIDEO", "True",
                      "VIS.VIDEO_SEQUENCES", "1", "VIS.VIDEO_HEIGHT", "32"]) == 0
    assert len(list((out / "video_model_final" / "videos").glob("*.mp4"))) == 1
    assert not (out / "video_model_final" / "metrics.json").exists()
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    assert main.main(["--cfg", str(out / "config.yaml"), "DOTRAIN", "False", "WEIGHTS", str(text)]) == 2
    assert f"WEIGHTS: '{text}' is not an EpiPose checkpoint" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} - {Path(name).parts[0] for name in trained} == \
        {"eval_model_best", "eval_model_final", "video_model_final"}
    assert {k: v for k, v in hashes(out).items() if k in trained} == trained  # byte for byte as training left them

    # the evaluation's own config.yaml evaluates again into the same subfolder, which then holds that run alone
    (best / "notes.md").write_text("mine")    # not the toolbox's: stays
    assert main.main(["--cfg", str(best / "config.yaml")]) == 0
    assert json.loads((best / "metrics.json").read_text()) == metrics
    (refreshed,) = (best / "tensorboard").glob("events.out.tfevents.*")
    assert refreshed != events                # one set of test points: the new run's
    assert (best / "log.txt").read_text().count("not training: writing into") == 2
    assert (best / "notes.md").read_text() == "mine"
    # another test setting of the same weights is another evaluation: a folder of its own, the first one kept
    first = hashes(best)
    assert main.main(["--cfg", str(best / "config.yaml"), "VIS.PREVIEW_SAMPLES", "0"]) == 0
    other = out / "eval_model_best_2"
    assert load_config(str(other / "config.yaml"), []).VIS.PREVIEW_SAMPLES == 0 and not (other / "preview").exists()
    assert hashes(best) == first
    assert not [p.name for p in out.rglob(".*")]  # no temporary file left
    assert {k: v for k, v in hashes(out).items() if k in trained} == trained


@pytest.mark.parametrize("content", [b"a text file\n", pickle.dumps(argparse.Namespace(weights=[1.0]))],
                         ids=["text", "pickle"])
def test_weights_that_are_not_a_checkpoint_stop_before_anything_is_written(tmp_path, capsys, recwarn, content):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(content)
    code, out = run(tmp_path, "linear_lifter.yaml", "WEIGHTS", str(weights))  # fine-tuning from them
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: WEIGHTS: '{weights}' is not an EpiPose checkpoint: ") and "\n" not in err
    assert "weights_only" in err and "weights_only=False" not in err  # no advice to load it unsafely
    assert not [str(w.message) for w in recwarn]  # nor torch's warnings about the file


def test_only_the_newest_periodic_checkpoints_are_kept_and_resumption_finds_them(tmp_path):
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "32", "DOTEST", "False", "DATASETS.VAL_SUBJECTS", "['S5']", "SOLVER.MAX_EPOCHS", "3"]
    code, out = run(tmp_path / "one", "linear_lifter.yaml", *tiny)  # SOLVER.KEEP_CHECKPOINTS 1 by default
    assert code == 0
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_best.pth", "model_epoch0002.pth", "model_final.pth"]
    code, out = run(tmp_path / "two", "linear_lifter.yaml", *tiny, "SOLVER.KEEP_CHECKPOINTS", "2")
    assert code == 0
    assert sorted(p.name for p in out.glob("model_epoch*.pth")) == ["model_epoch0001.pth", "model_epoch0002.pth"]
    # resumed with more epochs and fewer kept: the older ones go once a newer one is written
    code, _ = run(tmp_path / "two", "linear_lifter.yaml", *tiny, "SOLVER.KEEP_CHECKPOINTS", "1",
                  "SOLVER.MAX_EPOCHS", "5")
    assert code == 0
    assert "resumed from" in (out / "log.txt").read_text()
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_best.pth", "model_epoch0004.pth", "model_final.pth"]
    assert torch.load(out / "model_final.pth", weights_only=True)["epoch"] == 5


def test_the_free_space_needed_counts_the_checkpoints_kept(monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 2**30, 2**30))  # 1 GB free
    config = str(ROOT / "configs" / "synthetic" / "linear_lifter.yaml")
    long_run = ["SOLVER.MAX_EPOCHS", "200", "MODEL.LIFTER.LINEAR.HIDDEN", "1024"]  # 16 MB of weights
    cfg = load_config(config, long_run)
    check_free_space(cfg, build_pipeline(cfg), training=True)  # the newest periodic, the best and the final
    cfg = load_config(config, [*long_run, "SOLVER.KEEP_CHECKPOINTS", "0"])
    with pytest.raises(ConfigError, match="1024 MB free on its disk"):  # all 200 of them
        check_free_space(cfg, build_pipeline(cfg), training=True)


def test_a_changed_config_does_not_resume_a_foreign_checkpoint(tmp_path, capsys):
    code, out = run(tmp_path, "linear_lifter.yaml", "MODEL.LIFTER.LINEAR.HIDDEN", "32", "SOLVER.MAX_EPOCHS", "1")
    assert code == 0
    config_before = (out / "config.yaml").read_text()
    code, _ = run(tmp_path, "linear_lifter.yaml", "MODEL.LIFTER.LINEAR.HIDDEN", "64", "SOLVER.MAX_EPOCHS", "1")
    assert code == 2
    err = capsys.readouterr().err
    assert "holds a checkpoint of another configuration (MODEL.LIFTER.LINEAR.HIDDEN: 32 there, 64 now" in err
    assert (out / "config.yaml").read_text() == config_before  # nothing was overwritten


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "32", "SOLVER.BATCH_SIZE", "256", "DOTEST", "False"]
    straight = tmp_path / "straight"
    assert main.main(["--cfg", str(ROOT / "configs/synthetic/linear_lifter.yaml"), "OUTPUT_DIR", str(straight),
                      *SMALL, *tiny, "SOLVER.MAX_EPOCHS", "2"]) == 0
    split = tmp_path / "split"
    for epochs in ("1", "2"):
        assert main.main(["--cfg", str(ROOT / "configs/synthetic/linear_lifter.yaml"), "OUTPUT_DIR", str(split),
                          *SMALL, *tiny, "SOLVER.MAX_EPOCHS", epochs]) == 0
    a = torch.load(straight / "model_final.pth", weights_only=True)["model"]
    b = torch.load(split / "model_final.pth", weights_only=True)["model"]
    for key in a:
        assert torch.allclose(a[key].double(), b[key].double(), atol=1e-6), key


@pytest.mark.parametrize("overrides, message", [
    (["SOLVER.MAX_EPOCH", "2"], "unknown config key 'SOLVER.MAX_EPOCH'; closest valid keys: SOLVER.MAX_EPOCHS"),
    (["MODEL.LIFTER.NAME", "linaer"],
     "unknown lifter 'linaer'; registered lifter names: esmformer, image_canonical, lcn, linear, pose3d, poseformer, "
     "scoremap_canonical, scoremap_direct, semgcn"),
    (["DATASETS.VIEWS", "all"], "is single-view but DATASETS.VIEWS is 'all'"),
    (["DATASETS.SYNTHETIC.ACTIONS", "['moonwalk']"], "unknown action(s) moonwalk"),
    (["DEVICE", "tpu"], "DEVICE 'tpu' is not a device"),
    (["SOLVER.OPTIMIZER", "adagrad"],
     "SOLVER.OPTIMIZER: unknown value 'adagrad'; expected one of 'adam', 'amsgrad', 'adamw', 'sgd'"),
    (["SOLVER.LOG_PERIOD", "0"], "SOLVER.LOG_PERIOD must be >= 1"),
    (["DOTRAIN", "False", "DOTEST", "False"], "DOTRAIN, DOTEST and VIS.VIDEO are all False: the run would do nothing"),
    (["SOLVER.KEEP_CHECKPOINTS", "-1"], "SOLVER.KEEP_CHECKPOINTS must be >= 0 (the newest periodic checkpoints kept; "
                                        "0 = all), got -1"),
    (["DATASETS.SYNTHETIC.NOISE.TEMPORAL_CORRELATION", "1.0"], "DATASETS.SYNTHETIC.NOISE: "),
    (["DOTRAIN", "False"], "DOTRAIN is False but the pipeline has trainable parameters and no weights"),
    (["TEST.GT_3D", "real3d"], "TEST.GT_3D: unknown value 'real3d'; expected one of 'mocap', 'triangulated'"),
    (["TEST.GT_3D", "triangulated"], "TEST.GT_3D triangulated compares world 3D with the DLT of the true 2D"),
])
def test_mistakes_stop_before_anything_is_written(tmp_path, capsys, overrides, message):
    code, out = run(tmp_path, "linear_lifter.yaml", *overrides)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_missing_weights_file_is_a_clear_error(tmp_path, capsys):
    code, _ = run(tmp_path, "linear_lifter.yaml", "DOTRAIN", "False", "WEIGHTS", str(tmp_path / "nope.pth"))
    assert code == 2
    assert "nope.pth' does not exist" in capsys.readouterr().err


def test_predictions_file_matches_the_metrics(tmp_path):
    code, out = run(tmp_path, "dlt_noisy2d.yaml")
    assert code == 0
    pred = np.load(out / "predictions.npz")
    metrics = json.loads((out / "metrics.json").read_text())
    errors = np.linalg.norm(pred["pred_3d"] - pred["target_3d"], axis=-1)
    assert np.nanmean(errors) == pytest.approx(metrics["mpjpe_mm"]["frame_avg"], rel=1e-4)
    assert set(pred["subject"]) == {"S9", "S11"}
    assert bool(pred["absolute"]) and pred["input_2d"].shape == (len(errors), 4, 17, 2)
    assert pred["input_confidence"].shape == (len(errors), 4, 17) and np.isfinite(pred["input_2d"]).all()
    # the 2D given to the DLT is the noisy input, not the exact projection of the truth
    first = build_synthetic(load_config(str(out / "config.yaml"), []), "test")[0]
    assert np.allclose(pred["input_2d"][0], first["keypoints_2d"][0].numpy())


@pytest.mark.parametrize("config", ["r18_baseline_dlt.yaml", "r18_epipolar_dlt.yaml"])
def test_image_pipelines_train_and_report_2d_and_3d(tmp_path, config):
    code, out = run(tmp_path, config, "DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.TRAIN_STRIDE", "20",
                    "DATASETS.TEST_STRIDE", "20", "SOLVER.MAX_EPOCHS", "1", "DATASETS.NUM_WORKERS", "0",
                    "MODEL.FUSION.SAMPLES", "8")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 2 * 2 * 2  # S9, S11 x walk, squat x frames 0 and 20
    assert set(metrics["jdr_percent"]["per_joint"]) >= {"pelvis", "l_wrist"}
    assert 0.0 <= metrics["jdr_percent"]["mean"] <= 100.0
    assert metrics["jdr_percent"]["threshold_px"] == [0.05 * 64]     # the reference's half head size
    occlusion = metrics["mpjpe_by_occlusion_mm"]
    assert occlusion["num_visible_in_every_view"] + occlusion["num_occluded_in_some_view"] == 8 * 17
    assert metrics["jdr_percent"]["num_joint_views"] + metrics["jdr_occluded_percent"]["num_joint_views"] == 8 * 4 * 17
    predictions = np.load(out / "predictions.npz")
    assert predictions["pred_2d"].shape == (8, 4, 17, 2) and predictions["visibility"].shape == (8, 4, 17)
    errors = np.linalg.norm(predictions["pred_2d"] - predictions["target_2d"], axis=-1)
    visible = predictions["visibility"] > 0.5
    rates = [100 * np.mean(errors[..., j][visible[..., j]] < 3.2) for j in range(17) if visible[..., j].any()]
    assert metrics["jdr_percent"]["mean"] == pytest.approx(np.mean(rates))
    hidden = [100 * np.mean(errors[..., j][~visible[..., j]] < 3.2) for j in range(17) if (~visible[..., j]).any()]
    assert metrics["jdr_occluded_percent"]["mean"] == pytest.approx(np.mean(hidden))
    errors_3d = np.linalg.norm(predictions["pred_3d"] - predictions["target_3d"], axis=-1)
    seen = visible.all(1)
    assert occlusion["visible_in_every_view"] == pytest.approx(errors_3d[seen].mean())
    assert occlusion["occluded_in_some_view"] == pytest.approx(errors_3d[~seen].mean())
    confusion = metrics["left_right_confusion"]
    separated = np.linalg.norm(predictions["target_2d"][..., [4, 5, 6, 11, 12, 13], :]
                               - predictions["target_2d"][..., [1, 2, 3, 14, 15, 16], :], axis=-1) >= 3.2
    found = np.isfinite(predictions["pred_2d"]).all(-1)
    separated &= found[..., [4, 5, 6, 11, 12, 13]] & found[..., [1, 2, 3, 14, 15, 16]]
    assert confusion["num_pairs"] == separated.sum() and 0 <= confusion["swapped_percent"] <= 100
    assert list((out / "preview").glob("*.png"))


def test_epipolar_layer_fine_tunes_into_a_trained_baseline(tmp_path, capsys):
    tiny = ("DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.TRAIN_STRIDE", "40", "DATASETS.TEST_STRIDE", "40",
            "SOLVER.MAX_EPOCHS", "1", "DATASETS.NUM_WORKERS", "0", "MODEL.FUSION.SAMPLES", "8")
    code, baseline = run(tmp_path / "baseline", "r18_baseline_dlt.yaml", *tiny)
    assert code == 0
    weights = str(baseline / "model_final.pth")
    code, out = run(tmp_path / "finetune", "r18_epipolar_finetune.yaml", *tiny, "WEIGHTS", weights)
    assert code == 0 and (out / "metrics.json").is_file()
    assert "kept at their initialisation: fusion" in (out / "log.txt").read_text()
    # testing needs every weight: the baseline checkpoint lacks the epipolar layer
    code, _ = run(tmp_path / "test_only", "r18_epipolar_dlt.yaml", *tiny, "DOTRAIN", "False", "WEIGHTS", weights)
    assert code == 2 and "missing keys: fusion." in capsys.readouterr().err
    # learnable triangulation's recipe: a new confidence branch on the 2D-trained backbone, the 3D loss alone
    code, out = run(tmp_path / "algebraic", "r18_algebraic.yaml", *tiny, "WEIGHTS", weights,
                    "DATASETS.SYNTHETIC.IMAGE_SIZE", "128")
    assert code == 0 and (out / "metrics.json").is_file()
    log = (out / "log.txt").read_text()
    assert "kept at their initialisation: head" in log and re.search(r"mean loss \d+\.\d+", log)


def test_poseformer_trains_with_flips_and_tests_with_flip_averaging(tmp_path):
    tiny = ["DATASETS.FRAMES", "9", "MODEL.LIFTER.POSEFORMER.DEPTH", "1", "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "SOLVER.MAX_EPOCHS", "1",
            "DATASETS.TRAIN_STRIDE", "4", "DATASETS.TEST_STRIDE", "10"]
    code, out = run(tmp_path, "poseformer_27f.yaml", *tiny)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 2 * 2 * 4 * 4          # S9, S11 x 2 actions x 4 frames x 4 views
    assert metrics["mpjpe_root_relative_mm"]["frame_avg"] < 1000.0


def test_pose3d_trains_from_multi_view_2d_alone_and_tests_on_single_views(tmp_path):
    tiny = ["MODEL.LIFTER.POSE3D.HIDDEN", "64", "MODEL.LIFTER.POSE3D.LATENT", "32", "SOLVER.MAX_EPOCHS", "2",
            "MODEL.LIFTER.REPROJECTION_WEIGHT", "0.1", "DATASETS.TEST_STRIDE", "10", "SOLVER.LOG_PERIOD", "1"]
    code, out = run(tmp_path, "pose3d_selfsup.yaml", *tiny)
    assert code == 0
    lines = [line for line in (out / "log.txt").read_text().splitlines() if " iter " in line]
    assert all("triangulation" in line and "rigid" in line and "reprojection" in line for line in lines)
    losses = [float(line.split(" loss ")[1].split()[0]) for line in lines]
    assert len(losses) == 4 and losses[-1] < losses[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 2 * 2 * 4 * 4          # S9, S11 x 2 actions x 4 frames x 4 single views
    assert np.isfinite(metrics["mpjpe_root_relative_mm"]["frame_avg"])


def test_self_supervised_esmformer_trains_and_tests_on_every_view(tmp_path):
    code, out = run(tmp_path, "esmformer_selfsup.yaml", "DATASETS.TRAIN_STRIDE", "20", "DATASETS.TEST_STRIDE", "20",
                    "SOLVER.MAX_EPOCHS", "1", "SOLVER.BATCH_SIZE", "4")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 2 * 2 * 2                 # S9, S11 x 2 actions x frames 0 and 20
    assert np.isfinite(metrics["mpjpe_root_relative_mm"]["frame_avg"])


def test_validation_subjects_choose_the_tested_checkpoint(tmp_path):
    code, out = run(tmp_path, "linear_lifter.yaml", "MODEL.LIFTER.LINEAR.HIDDEN", "64", "SOLVER.MAX_EPOCHS", "2",
                    "DATASETS.VAL_SUBJECTS", "['S5']")
    assert code == 0
    best = torch.load(out / "model_best.pth", weights_only=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checkpoint"].endswith(f"model_best.pth (epoch {best['epoch']}), best on validation")
    assert "validation MPJPE" in (out / "log.txt").read_text()


@pytest.mark.parametrize("held_out", ["['S9']", "['S1','S5']"])
def test_validation_subjects_must_be_some_training_subjects(tmp_path, held_out):
    code, out = run(tmp_path, "linear_lifter.yaml", "DATASETS.VAL_SUBJECTS", held_out)
    assert code == 2 and not out.exists()


def _training_errors_by_stage(config_file, checkpoint, overrides):
    """Root-relative training-set MPJPE (mm) with 0, 1, ... K refinement stages of an ERD checkpoint."""
    from core.config import load_config
    from core.engine.checkpoint import load_state_strict
    from datasets import build_dataset
    from core.batch import collate_samples
    from modeling.pipelines import build_pipeline
    cfg = load_config(str(config_file), overrides)
    model = build_pipeline(cfg)
    load_state_strict(model, torch.load(checkpoint, weights_only=True)["model"], str(checkpoint))
    model.eval()
    samples = build_dataset(cfg, "train")
    batch = collate_samples([samples[i] for i in range(len(samples))])
    errors = []
    with torch.no_grad():
        for k in range(len(model.refiner.stages) + 1):
            model.refiner.num_active.fill_(k)
            out = model(batch, **model.truth_inputs(batch))
            errors.append((out["pred_3d"] - model.targets(batch)["target_3d"]).norm(dim=-1).mean().item())
    return errors


def test_erd_stages_trained_greedily_reduce_the_training_error(tmp_path):
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "64", "SOLVER.BATCH_SIZE", "32"]
    code, lifter_out = run(tmp_path / "lifter", "linear_lifter.yaml", *tiny, "SOLVER.MAX_EPOCHS", "1")
    assert code == 0
    erd = [*SMALL, *tiny, "MODEL.LIFTER.WEIGHTS", str(lifter_out / "model_final.pth"),
           "MODEL.REFINER.STAGES", "3", "SOLVER.MAX_EPOCHS", "3", "MODEL.REFINER.PCA_COMPONENTS", "20",
           "MODEL.REFINER.HIDDEN", "64", "DATASETS.VAL_SUBJECTS", "['S5']", "SOLVER.BASE_LR", "0.01",
           "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5','S6']"]
    out = tmp_path / "erd"
    config = ROOT / "configs" / "synthetic" / "erd_linear.yaml"
    assert main.main(["--cfg", str(config), "OUTPUT_DIR", str(out), *erd]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "best on validation" in metrics["checkpoint"]
    errors = _training_errors_by_stage(config, out / "model_final.pth", erd)
    assert errors[1] < 0.95 * errors[0] and errors[3] < errors[1], errors
    assert len([line for line in (out / "log.txt").read_text().splitlines() if "validation MPJPE" in line]) == 3


@pytest.mark.parametrize("overrides, message", [
    (["SOLVER.MAX_EPOCHS", "4"], "SOLVER.MAX_EPOCHS .4. must be MODEL.REFINER.STAGES x EPOCHS_PER_STAGE"),
    (["MODEL.LIFTER.WEIGHTS", "''"], "MODEL.LIFTER.WEIGHTS is empty"),
    (["MODEL.LIFTER.WEIGHTS", "missing.pth"], "MODEL.LIFTER.WEIGHTS: checkpoint file 'missing.pth' does not"),
    (["DATASETS.VIEWS", "all"], "single-view"),
    (["MODEL.REFINER.FEATURES", "ori"], "MODEL.REFINER.FEATURES: unknown value 'ori'; expected one of 'delta', 'proj', "
                                        "'cat'"),
])
def test_erd_misconfigurations_name_the_key(tmp_path, capsys, overrides, message):
    code, out = run(tmp_path, "erd_linear.yaml", *overrides)
    assert code == 2 and not out.exists()
    assert re.search(message, capsys.readouterr().err)


def test_one_yaml_composes_an_image_pipeline_with_a_lifter(tmp_path):
    tiny = ("DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.TRAIN_STRIDE", "40", "DATASETS.TEST_STRIDE", "40",
            "SOLVER.MAX_EPOCHS", "1", "DATASETS.NUM_WORKERS", "0", "MODEL.FUSION.SAMPLES", "8")
    code, detector = run(tmp_path / "detector", "r18_epipolar_dlt.yaml", *tiny)
    assert code == 0
    code, lifter = run(tmp_path / "lifter", "linear_lifter.yaml", "MODEL.LIFTER.LINEAR.HIDDEN", "64", "SOLVER.MAX_EPOCHS", "1")
    assert code == 0
    parts = ("MODEL.BACKBONE.WEIGHTS", str(detector / "model_final.pth"), "MODEL.LIFTER.WEIGHTS",
             str(lifter / "model_final.pth"), "MODEL.LIFTER.LINEAR.HIDDEN", "64")
    code, out = run(tmp_path / "frozen", "r18_epipolar_linear.yaml", *tiny, *parts)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "mpjpe_mm" not in metrics and metrics["mpjpe_root_relative_mm"]["frame_avg"] < 1000
    assert metrics["jdr_percent"]["mean"] is not None and metrics["checkpoint"].startswith("the MODEL.*.WEIGHTS")
    predictions = np.load(out / "predictions.npz")
    assert np.allclose(predictions["pred_3d"][:, 0], 0.0, atol=1e-3)  # root-relative, pelvis at 0
    # fine-tuning the lifter on the network's 2D
    code, tuned = run(tmp_path / "tuned", "r18_epipolar_linear.yaml", *tiny, *parts, "DOTRAIN", "True",
                      "MODEL.LIFTER.FREEZE", "False", "SOLVER.LOG_PERIOD", "1")
    assert code == 0
    log = (tuned / "log.txt").read_text()
    assert "lifter_mse_3d" in log and "heatmap" not in log.split("training on")[1].split("testing on")[0]
    state = torch.load(tuned / "model_final.pth", weights_only=True)["model"]
    before = torch.load(detector / "model_final.pth", weights_only=True)["model"]
    assert all(torch.equal(state[f"detector.{k}"], v) if isinstance(v, torch.Tensor) else state[f"detector.{k}"] == v
               for k, v in before.items())  # the frozen detector (the epipolar layer's residual form included)


def test_an_unusable_output_dir_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _ = run(tmp_path, "dlt_noisy2d.yaml", "OUTPUT_DIR", str(blocker / "out"))
    assert code == 2 and "is not writable" in capsys.readouterr().err
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))  # 1 MB free
    code, out = run(tmp_path, "linear_lifter.yaml")
    assert code == 2 and "1 MB free on its disk" in capsys.readouterr().err and not out.exists()
