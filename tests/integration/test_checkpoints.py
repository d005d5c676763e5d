"""End to end through the command line: checkpoints, reloading, resumption and evaluations beside a training run."""
import argparse
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core.config import ConfigError, load_config
from core.engine.output_dir import check_free_space
from modeling.pipelines import build_pipeline
from tests.integration.runs import ROOT, SMALL, run


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


