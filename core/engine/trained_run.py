"""Trained weights into built pipelines: the parts a pipeline composes from earlier runs (``load_pretrained_parts``),
and a finished run's model, rebuilt from its output folder: ``config.yaml`` and its best weights."""
from pathlib import Path
from typing import Optional, Tuple

from core.config import ConfigError, load_config
from core.engine.checkpoint import CheckpointError, load_state_strict, read_checkpoint
from modeling.pipelines import ImagePipeline, Pipeline, PipelineConfigError, build_pipeline


def load_pretrained_parts(cfg, pipeline: Pipeline) -> None:
    """Load the checkpoints of earlier runs into the parts of ``pipeline`` that start from them
    (``Pipeline.pretrained_parts``: e.g. a refined pipeline's lifter from MODEL.LIFTER.WEIGHTS), in their order.
    Raises PipelineConfigError naming the key when its path is empty or its checkpoint does not fit."""
    for attribute, (key, settings) in pipeline.pretrained_parts.items():
        path = cfg
        for name in key.split("."):  # e.g. MODEL.LIFTER.WEIGHTS
            path = path[name]
        if not path:
            raise PipelineConfigError(f"{key} is empty: set it to the checkpoint of a trained run with the same "
                                      f"{settings} settings (e.g. outs/<config>/model_best.pth)")
        try:
            load_state_strict(getattr(pipeline, attribute), read_checkpoint(path)["model"], path)
        except CheckpointError as err:
            raise PipelineConfigError(f"{key}: {err} (it must come from a run with the same {settings} "
                                      "settings)") from None


def load_trained_run(run, weights: Optional[str] = None) -> Tuple[object, object]:
    """(config, pipeline in eval mode) of the run in folder ``run``, with ``weights`` or else its
    ``model_best.pth`` (validated), else its ``model_final.pth`` (none for a parameter-free pipeline). Raises ConfigError, CheckpointError,
    PipelineConfigError naming what is missing."""
    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"'{run / 'config.yaml'}' does not exist (a run's output folder expected)")
    cfg = load_config(str(run / "config.yaml"), [])
    model = build_pipeline(cfg)
    if weights is None and not model.state_dict():  # parameter-free (e.g. triangulation): nothing to load
        return cfg, model.eval()
    if weights is None:
        weights = next((str(run / n) for n in ("model_best.pth", "model_final.pth") if (run / n).is_file()), None)
        if weights is None:
            raise ConfigError(f"'{run}' holds neither model_best.pth nor model_final.pth: train it first or name the "
                              "weights")
    load_state_strict(model, read_checkpoint(str(weights))["model"], str(weights))
    return cfg, model.eval()


def load_image_pipeline(run, weights: Optional[str] = None) -> Tuple[object, ImagePipeline]:
    """(config, the image pipeline) of a run whose model is an image pipeline, or composes one (its detector)."""
    cfg, model = load_trained_run(run, weights)
    detector = getattr(model, "detector", model)
    if not isinstance(detector, ImagePipeline):
        raise ConfigError(f"'{run}' is a {type(model).__name__}, not an image pipeline (MODEL.BACKBONE)")
    return cfg, detector
