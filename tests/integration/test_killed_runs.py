"""A training process killed at any moment (SIGKILL, SIGTERM, SIGINT) resumes from its last complete checkpoint
with the same command and ends with the result of an uninterrupted run; no half-written file is left."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--cfg", str(ROOT / "configs" / "synthetic" / "linear_lifter.yaml"),
        "DATASETS.SYNTHETIC.ACTIONS", "['walk','squat']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "60",
        "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5','S6']", "DATASETS.VAL_SUBJECTS", "[]",
        "VIS.PREVIEW_SAMPLES", "0", "MODEL.LIFTER.LINEAR.HIDDEN", "256", "SOLVER.BATCH_SIZE", "32", "SOLVER.MAX_EPOCHS", "6"]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # every run alike: the thread count changes float sums


def _interruptible():
    # a suite started in the background of a non-interactive shell inherits SIGINT ignored, and Python then
    # keeps ignoring it: the run must get Ctrl-C as a user's terminal sends it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *ARGS, "OUTPUT_DIR", str(out)], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_interruptible)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    assert start(out).wait(timeout=300) == 0
    return out


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_killed_run_resumes_to_the_same_result(tmp_path, uninterrupted, kill):
    out = tmp_path / "run"
    process = start(out)
    deadline = time.monotonic() + 120
    while not (out / "model_epoch0002.pth").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(kill)  # somewhere in epoch 3, possibly while a checkpoint is being written
    process.wait(timeout=60)
    assert process.returncode != 0, "the run finished before it could be killed"
    assert not (out / "model_final.pth").exists()
    assert start(out).wait(timeout=300) == 0                                    # the same command again
    assert "resumed from" in (out / "log.txt").read_text()
    # SOLVER.KEEP_CHECKPOINTS 1: of the periodic checkpoints only the newest is left, whenever the kill came
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_epoch0005.pth", "model_final.pth"]
    a = torch.load(uninterrupted / "model_final.pth", weights_only=True)["model"]
    b = torch.load(out / "model_final.pth", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.allclose(a[k].double(), b[k].double(), atol=1e-6) for k in a)
    metrics = [json.loads((d / "metrics.json").read_text())["mpjpe_root_relative_mm"]["frame_avg"]
               for d in (uninterrupted, out)]
    assert metrics[1] == pytest.approx(metrics[0], rel=1e-6)
    assert not [p.name for p in out.rglob(".*")]                                 # no temporary file left
