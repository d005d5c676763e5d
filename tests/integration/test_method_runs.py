"""End to end through the command line: each method's pipeline trains and tests (image pipelines, lifters, ERD)."""
import json
import re

import numpy as np
import pytest
import torch

import main
from tests.integration.runs import ROOT, SMALL, run


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


