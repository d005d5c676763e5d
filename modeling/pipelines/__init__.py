"""Pipelines: the end-to-end models that ``main.py`` trains and tests, composed from the registries.

``MODEL.PIPELINE`` names one of the registry ``PIPELINES``; each module holds one pipeline and its ``from_config``:

- ``triangulation``: 2D keypoints of every view -> triangulation head -> world 3D.
- ``lifting``: single-view 2D keypoints -> lifter -> root-relative camera-frame 3D, with the inputs and outputs
  standardised by training-set statistics (Martinez et al. 2017).
- ``screen_lifting``: a single-view window of 2D keypoints in normalised screen coordinates -> sequence lifter
  (PoseFormer) -> root-relative camera-frame 3D, MPJPE loss, flip test-time averaging (VideoPose3D's protocol).
- ``multiview_lifting``: windows of every view's 2D (normalised screen coordinates) -> multi-view lifter (ESMformer)
  -> root-relative world-frame 3D, supervised (MPJPE) or self-supervised.
- ``multiview_consistency``: a single-view lifter of root-relative pixels trained from the 2D of all views without
  3D labels (Bouazizi et al. 2021) and tested on single views.
- ``refined``: a trained single-view lifting pipeline, frozen, whose 3D a refiner improves stage by stage from how
  it re-projects (ERD, Kang et al. 2020).
- ``image``: crops of every view -> ResNet heatmap backbone, optionally with an epipolar transformer -> heatmaps ->
  2D -> triangulation head (dlt, ransac, or the learnable algebraic head) -> world 3D.
- ``detect_and_lift``: an image pipeline's 2D of every view, mapped back to full-image pixels, lifted view by view
  by a single-view lifting pipeline; the views' root-relative 3D averaged in the world frame.
- ``scoremap_lifting``: each view's 2D keypoints drawn as Gaussian score maps of a crop around them -> score-map
  lifter (Zimmermann & Brox 2017: directly, or a canonical pose and its viewpoint) -> the pose over a bone length;
  the views' root-relative 3D averaged in the world frame.
- ``image_lifting``: each view's crop -> pooled ResNet features -> image lifter (Epipolar Transformers after
  Boukhayma et al. 2019: a canonical pose and its viewpoint) -> the pose over a bone length, as ``scoremap_lifting``.

``build_pipeline(cfg)`` builds the configured one and loads no weights: the parts that start from earlier runs
(``Pipeline.pretrained_parts``) are loaded by the engine (``core.engine.trained_run.load_pretrained_parts``).
"""
import modeling.backbones  # noqa: F401  (registers the backbones)
import modeling.fusion  # noqa: F401  (registers the fusion layers)
import modeling.heads  # noqa: F401  (registers the heads)
import modeling.lifters  # noqa: F401  (registers the lifters)
import modeling.losses  # noqa: F401  (registers the losses)
import modeling.refiners  # noqa: F401  (registers the refiners)
from core.config.pipelines import pipeline_of_parts
from core.registry import LIFTERS, PIPELINES
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.detect_and_lift import DetectAndLiftPipeline
from modeling.pipelines.image import ImagePipeline
from modeling.pipelines.image_lifting import ImageLiftingPipeline
from modeling.pipelines.lifter_config import lifter_pipeline
from modeling.pipelines.lifting import LiftingPipeline
from modeling.pipelines.multiview_consistency import MultiViewConsistencyPipeline
from modeling.pipelines.multiview_lifting import MultiViewLiftingPipeline
from modeling.pipelines.refined import RefinedPipeline
from modeling.pipelines.scoremap_lifting import ScoremapLiftingPipeline
from modeling.pipelines.screen_lifting import ScreenLiftingPipeline
from modeling.pipelines.triangulation import TriangulationPipeline

__all__ = ["build_pipeline", "Pipeline", "PipelineConfigError", "TriangulationPipeline", "LiftingPipeline",
           "ScreenLiftingPipeline", "MultiViewLiftingPipeline", "MultiViewConsistencyPipeline", "RefinedPipeline",
           "ImagePipeline", "DetectAndLiftPipeline", "ScoremapLiftingPipeline", "ImageLiftingPipeline"]

FLIPPING_PIPELINES = ("screen_lifting", "multiview_lifting")  # the lifting pipelines that average TEST.FLIP


def _check_parts(cfg) -> None:
    """The checks across pipelines: TEST.FLIP, a refiner without a lifter, and that MODEL.PIPELINE is the
    pipeline that the model's NAMEs make (``core.config.pipelines.pipeline_of_parts``)."""
    m = cfg.MODEL
    if cfg.TEST.FLIP and (m.LIFTER.NAME == "none" or m.BACKBONE.NAME != "none"
                          or lifter_pipeline(m.LIFTER.NAME) not in FLIPPING_PIPELINES):
        raise PipelineConfigError("TEST.FLIP is implemented for the screen-coordinate lifters (poseformer, esmformer), "
                                  f"not for MODEL.LIFTER.NAME '{m.LIFTER.NAME}' with MODEL.BACKBONE.NAME "
                                  f"'{m.BACKBONE.NAME}'")
    if m.REFINER.NAME != "none" and (m.LIFTER.NAME == "none" or m.BACKBONE.NAME != "none"):
        raise PipelineConfigError(f"MODEL.REFINER.NAME '{m.REFINER.NAME}' refines a keypoint lifter: set "
                                  "MODEL.LIFTER.NAME (and MODEL.BACKBONE.NAME none)")
    made = pipeline_of_parts(m.BACKBONE.NAME, m.LIFTER.NAME, m.REFINER.NAME, lifter_pipeline)
    if made != m.PIPELINE:
        lifters = ", ".join(name for name in LIFTERS if lifter_pipeline(name) == m.PIPELINE) or "(none)"
        raise PipelineConfigError(
            f"MODEL.PIPELINE '{m.PIPELINE}' does not fit the model's parts: MODEL.BACKBONE.NAME '{m.BACKBONE.NAME}', "
            f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' and MODEL.REFINER.NAME '{m.REFINER.NAME}' make a '{made}' pipeline; "
            f"set MODEL.PIPELINE {made}, or the parts of a '{m.PIPELINE}' pipeline: "
            f"{PIPELINES.get(m.PIPELINE).parts.format(lifters=lifters)}")


def build_pipeline(cfg) -> Pipeline:
    """The pipeline MODEL.PIPELINE, built from its keys (``from_config``) without loading weights; an unknown name
    fails listing the registered ones, one that does not fit the model's NAMEs names the keys."""
    pipeline_cls = PIPELINES.get(cfg.MODEL.PIPELINE)
    _check_parts(cfg)
    return pipeline_cls.from_config(cfg)
