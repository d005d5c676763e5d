"""MODEL.CHANNELS_LAST and MODEL.COMPILE change speed, not results; SOLVER.AMP is ignored on the CPU."""
import json
from pathlib import Path

import pytest
import torch

import main
from core.config import load_config
from core.batch import collate_samples
from datasets.synthetic.dataset import build_synthetic
from modeling.pipelines import build_pipeline

ROOT = Path(__file__).resolve().parents[3]
WORLD = ["DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "8",
         "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.VAL_SUBJECTS", "[]", "VIS.PREVIEW_SAMPLES", "0"]


def test_channels_last_image_pipeline_gives_the_same_heatmaps():
    cfg = load_config(str(ROOT / "configs" / "synthetic" / "r18_epipolar_dlt.yaml"),
                      [*WORLD, "DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "MODEL.FUSION.SAMPLES", "8"])
    batch = collate_samples([build_synthetic(cfg, "test")[i] for i in range(2)])
    torch.manual_seed(0)
    model = build_pipeline(cfg).eval()
    with torch.no_grad():
        plain = model.detect(batch)["heatmaps"]
        model.to(memory_format=torch.channels_last)
        model.backbone.channels_last = True
        fast = model.detect(batch)["heatmaps"]
    assert model.backbone.final_layer.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(plain, fast, atol=1e-5)


def test_channels_last_needs_an_image_pipeline(tmp_path, capsys):
    assert main.main(["--cfg", str(ROOT / "configs" / "synthetic" / "linear_lifter.yaml"), "OUTPUT_DIR",
                      str(tmp_path / "x"), *WORLD, "MODEL.CHANNELS_LAST", "True"]) == 2
    assert "MODEL.CHANNELS_LAST is for image pipelines" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_compiled_training_matches_and_keeps_the_checkpoint_keys(tmp_path):
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "32", "MODEL.LIFTER.LINEAR.DROPOUT", "0.0", "SOLVER.MAX_EPOCHS", "1", "SOLVER.AMP", "True"]
    results = {}
    for compiled in ("False", "True"):
        out = tmp_path / compiled
        assert main.main(["--cfg", str(ROOT / "configs" / "synthetic" / "linear_lifter.yaml"), "OUTPUT_DIR", str(out),
                          *WORLD, *tiny, "MODEL.COMPILE", compiled]) == 0
        results[compiled] = (json.loads((out / "metrics.json").read_text()),
                             torch.load(out / "model_final.pth", weights_only=True)["model"])
    log = (tmp_path / "True" / "log.txt").read_text()
    assert "torch.compile (device cpu): lifter;" in log
    assert "SOLVER.AMP is for CUDA devices" in log
    (plain_metrics, plain_state), (compiled_metrics, compiled_state) = results["False"], results["True"]
    assert plain_state.keys() == compiled_state.keys()
    assert compiled_metrics["mpjpe_root_relative_mm"]["frame_avg"] == pytest.approx(
        plain_metrics["mpjpe_root_relative_mm"]["frame_avg"], rel=1e-3)
