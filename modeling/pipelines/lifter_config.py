"""The configured lifter (MODEL.LIFTER) of the keypoint-lifting pipelines, and which pipeline feeds it.

A lifter's options live in its own node, MODEL.LIFTER.<NAME>, whose keys are its constructor's argument names in upper
case (``build_lifter`` passes them on as they are); the sizes that the data fixes (frames, joints, the input width)
are given by the pipeline that builds it. The constructor checks its arguments, once.
"""
from core.registry import LIFTERS, PIPELINES
from modeling.pipelines.base import PipelineConfigError

# a lifter's ``inputs`` -> the MODEL.PIPELINE that makes them
LIFTER_PIPELINES = {"standardised": "lifting", "screen": "screen_lifting", "screen_views": "multiview_lifting",
                    "root_relative_pixels": "multiview_consistency", "scoremaps": "scoremap_lifting",
                    "image_features": "image_lifting"}


def lifter_pipeline(name: str) -> str:
    """The keypoint-lifting pipeline (MODEL.PIPELINE) of the lifter registered as ``name``."""
    return LIFTER_PIPELINES[LIFTERS.get(name).inputs]


def configured_lifter(cfg):
    """The class of MODEL.LIFTER.NAME, after the checks that every keypoint-lifting pipeline shares."""
    m = cfg.MODEL
    if m.HEAD.NAME != "none":
        raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' and MODEL.HEAD.NAME '{m.HEAD.NAME}' "
                                  "are both set; choose one")
    lifter_cls = LIFTERS.get(m.LIFTER.NAME)
    if getattr(lifter_cls, "single_view", False) and cfg.DATASETS.VIEWS != "single":
        raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' is single-view but DATASETS.VIEWS is "
                                  f"'{cfg.DATASETS.VIEWS}'; set DATASETS.VIEWS single")
    if m.LIFTER.PCA_COMPONENTS and (lifter_cls.inputs != "standardised" or
                                    getattr(lifter_cls, "outputs_all_joints", False)):
        raise PipelineConfigError(f"MODEL.LIFTER.PCA_COMPONENTS codes a flat input vector (the linear lifter); "
                                  f"'{m.LIFTER.NAME}' takes per-joint coordinates: set it to 0")
    return lifter_cls


def lifter_options(cfg) -> dict:
    """The constructor arguments that MODEL.LIFTER.<NAME> holds for the lifter MODEL.LIFTER.NAME."""
    name = cfg.MODEL.LIFTER.NAME
    return {key.lower(): value for key, value in cfg.MODEL.LIFTER[name.upper()].items()}


def build_lifter(cfg, **sizes):
    """The lifter MODEL.LIFTER.NAME built from its node MODEL.LIFTER.<NAME> and the ``sizes`` the pipeline fixes; a
    bad argument fails naming the node."""
    lifter_cls, node = configured_lifter(cfg), f"MODEL.LIFTER.{cfg.MODEL.LIFTER.NAME.upper()}"
    try:
        return lifter_cls(**sizes, **lifter_options(cfg))
    except ValueError as err:
        raise PipelineConfigError(f"{node}: {err}") from None


def keypoint_lifting(cfg):
    """The keypoint-lifting pipeline of MODEL.LIFTER (``lifter_pipeline``) built from ``cfg``: the part that a refined
    or detect-and-lift pipeline composes."""
    return PIPELINES.get(lifter_pipeline(cfg.MODEL.LIFTER.NAME)).from_config(cfg)
