"""DDP under torchrun: two CPU processes (gloo) train and test like one process with the same global batch."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import main
from core.engine.distributed import DistContext, gather_in_order, shard

ROOT = Path(__file__).resolve().parents[3]
# A tiny PoseFormer: no batch norm (per-process statistics would differ from one process's; SyncBatchNorm is
# GPU-only), no stochastic depth and no flips (random draws differ between the ranks and one process).
TINY = ["DATASETS.SYNTHETIC.ACTIONS", "['walk','squat']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "40",
        "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5']", "DATASETS.VAL_SUBJECTS", "['S5']",
        "VIS.PREVIEW_SAMPLES", "0", "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "MODEL.LIFTER.POSEFORMER.DEPTH", "1",
        "MODEL.LIFTER.POSEFORMER.NUM_HEADS", "2", "MODEL.LIFTER.POSEFORMER.DROP_PATH_RATE", "0.0", "DATASETS.FRAMES", "3",
        "DATASETS.FLIP", "False", "TEST.FLIP", "False", "DATASETS.TRAIN_STRIDE", "1", "SOLVER.MAX_EPOCHS", "2",
        "SOLVER.OPTIMIZER", "sgd", "SOLVER.BASE_LR", "0.01", "DEVICE", "cpu"]
CONFIG = str(ROOT / "configs" / "synthetic" / "poseformer_27f.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main.main(["--cfg", CONFIG, "OUTPUT_DIR", str(single), "SOLVER.BATCH_SIZE", "32", *TINY]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(ROOT / "main.py"),
                             "--cfg", CONFIG, "OUTPUT_DIR", str(ddp), "SOLVER.BATCH_SIZE", "16", *TINY],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (ddp / "log.txt").read_text()
    assert "DDP: 2 processes x batch 16 = global batch 32" in log and "10 iterations per epoch" in log
    one, two = (json.loads((d / "metrics.json").read_text()) for d in (single, ddp))
    for key in ("mpjpe_root_relative_mm", "p_mpjpe_mm"):
        assert two[key]["frame_avg"] == pytest.approx(one[key]["frame_avg"], rel=1e-4)
    assert two["num_poses"] == one["num_poses"] == 2 * 2 * 40 * 4
    a, b = (torch.load(d / "model_final.pth", weights_only=True)["model"] for d in (single, ddp))
    assert a.keys() == b.keys()
    assert max((a[k].double() - b[k].double()).abs().max().item() for k in a) < 1e-5
    # only rank 0 writes: one log, one TensorBoard folder, checkpoints without a DDP prefix
    assert not any(k.startswith("module.") for k in b) and (ddp / "model_best.pth").is_file()


def test_shards_cover_the_set_in_order():
    parts = [shard(10, DistContext(rank, 3)) for rank in range(3)]
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    assert list(shard(5, DistContext())) == list(range(5))
    part = {"a": [1, 2]}
    assert gather_in_order(part, DistContext()) is part


def test_sync_bn_on_cpu_processes_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main.main(["--cfg", CONFIG, "OUTPUT_DIR", str(tmp_path / "x"), *TINY, "SOLVER.SYNC_BN", "True"]) == 2
    assert "SOLVER.SYNC_BN needs CUDA devices" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_gathering_skips_the_empty_shards(monkeypatch):
    import numpy as np
    from core.engine import distributed
    parts = [{"pred_3d": np.ones((2, 3)), "subject": np.array(["S9", "S9"])}, {"subject": np.array([])},
             {"pred_3d": np.zeros((1, 3)), "subject": np.array(["S11"])}]   # rank 1's shard is empty

    def fake_all_gather_object(out, part):
        out[:] = parts
    monkeypatch.setattr(distributed.dist, "all_gather_object", fake_all_gather_object)
    gathered = gather_in_order(parts[0], DistContext(0, 3))
    assert gathered["pred_3d"].shape == (3, 3) and list(gathered["subject"]) == ["S9", "S9", "S11"]
