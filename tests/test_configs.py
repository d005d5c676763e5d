"""Every shipped config loads, states the pipeline its parts made before MODEL.PIPELINE existed, and builds it (the
weights of earlier runs that refined or composed pipelines start from are checked up to the missing files where those
runs have not been made)."""
from pathlib import Path

import pytest
import yaml

from core.config import load_config
from core.config.pipelines import LEGACY_LIFTER_PIPELINES, legacy_pipeline
from core.engine.trained_run import load_pretrained_parts
from core.registry import PIPELINES
from modeling.pipelines import PipelineConfigError, build_pipeline

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
# the lifters registered before MODEL.PIPELINE existed, whose configs may have been written without it
LEGACY_LIFTERS = {"none", "linear", "lcn", "semgcn", *LEGACY_LIFTER_PIPELINES}


def stated_pipelines(path: Path) -> list:
    """The MODEL.PIPELINE values that ``path`` and its _BASE_ files set."""
    mapping = yaml.safe_load(path.read_text()) or {}
    own = [mapping["MODEL"]["PIPELINE"]] if "PIPELINE" in (mapping.get("MODEL") or {}) else []
    return (stated_pipelines(path.parent / mapping["_BASE_"]) if "_BASE_" in mapping else []) + own


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_builds(path):
    cfg = load_config(str(path), ["MODEL.BACKBONE.PRETRAINED", "none"])
    flat = {f"MODEL.{part}.NAME": cfg.MODEL[part].NAME for part in ("BACKBONE", "LIFTER", "REFINER")}
    if cfg.MODEL.LIFTER.NAME in LEGACY_LIFTERS:
        assert cfg.MODEL.PIPELINE == legacy_pipeline(flat)  # the pipeline the builder chose from the NAMEs
    assert stated_pipelines(path) or cfg.MODEL.PIPELINE == "triangulation"  # only the default goes unsaid
    model = build_pipeline(cfg)  # loads no weights
    assert type(model) is PIPELINES.get(cfg.MODEL.PIPELINE)
    weights = [w for w in (cfg.MODEL.LIFTER.WEIGHTS, cfg.MODEL.BACKBONE.WEIGHTS) if w]
    if not all(Path(w).is_file() for w in weights):  # an earlier run's weights, not trained here
        with pytest.raises(PipelineConfigError, match="WEIGHTS"):
            load_pretrained_parts(cfg, model)
    else:
        load_pretrained_parts(cfg, model)
