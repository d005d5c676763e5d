"""Every shipped config loads and builds its pipeline (those that refine or compose earlier runs' weights are
checked up to the missing weights where those runs have not been made)."""
from pathlib import Path

import pytest

from core.config import load_config
from modeling.pipeline import PipelineConfigError, build_pipeline

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_builds(path):
    cfg = load_config(str(path), ["MODEL.BACKBONE.PRETRAINED", "none"])
    weights = [w for w in (cfg.MODEL.LIFTER.WEIGHTS, cfg.MODEL.BACKBONE.WEIGHTS) if w]
    if not all(Path(w).is_file() for w in weights):  # an earlier run's weights, not trained here
        with pytest.raises(PipelineConfigError, match="WEIGHTS"):
            build_pipeline(cfg)
    else:
        assert build_pipeline(cfg) is not None
