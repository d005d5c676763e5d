"""End to end through the command line: the two first pipelines, the mistakes a run refuses, the predictions file."""
import json

import numpy as np
import pytest

from core.config import load_config
from datasets.synthetic.dataset import build_synthetic
from tests.integration.runs import run


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
