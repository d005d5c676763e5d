"""The triangulation pipeline, and the configured triangulation head that image pipelines end in too."""
from typing import Dict

import numpy as np
import torch
from torch import nn

from core.registry import HEADS, PIPELINES
from core.sample_schema import centre_frame
from core.skeleton import H36M17, Skeleton, skeleton_of
from modeling.pipelines.base import Pipeline, PipelineConfigError


def build_head(cfg, backbone=None) -> nn.Module:
    """The configured triangulation head (MODEL.HEAD; the algebraic head needs the backbone's trunk channels) for the
    joints of DATASETS.SKELETON."""
    h, skeleton = cfg.MODEL.HEAD, skeleton_of(cfg)
    head_cls = HEADS.get(h.NAME)
    if h.NAME == "algebraic":
        if backbone is None:
            raise PipelineConfigError("MODEL.HEAD.NAME 'algebraic' learns from images: set MODEL.BACKBONE.NAME resnet")
        if h.CONFIDENCE_FALLBACK > 0 or not h.UNDISTORT:
            raise PipelineConfigError("MODEL.HEAD.CONFIDENCE_FALLBACK and UNDISTORT False are options of the dlt and "
                                      "ransac heads; the algebraic head weighs every view by its learned confidence "
                                      "and follows the lens: set 0 and True")
        return head_cls(num_joints=skeleton.num_joints, in_channels=backbone.trunk_channels,
                        min_confidence=h.MIN_CONFIDENCE)
    if h.NAME == "optimised" and backbone is not None and h.LOSS_3D_WEIGHT > 0:
        raise PipelineConfigError("MODEL.HEAD.NAME 'optimised' runs its own optimiser and passes no gradient to the "
                                  "2D: set MODEL.HEAD.LOSS_3D_WEIGHT 0 (it is for test-time use)")
    if h.CONFIDENCE_FALLBACK < 0:
        raise PipelineConfigError(f"MODEL.HEAD.CONFIDENCE_FALLBACK must be >= 0 (0 = off), got {h.CONFIDENCE_FALLBACK}")
    kwargs = dict(confidence_weighted=h.CONFIDENCE_WEIGHTED, min_confidence=h.MIN_CONFIDENCE,
                  fallback_step=h.CONFIDENCE_FALLBACK, undistort=h.UNDISTORT)
    if h.NAME in ("ransac", "optimised"):
        kwargs["inlier_threshold_px"] = h.INLIER_THRESHOLD_PX
    if h.NAME == "optimised":
        kwargs.update(loss=h.OPTIMISE_LOSS, robust_px=h.OPTIMISE_ROBUST_PX, smooth_weight=h.OPTIMISE_SMOOTH_WEIGHT,
                      bone_weight=h.OPTIMISE_BONE_WEIGHT, iterations=h.OPTIMISE_ITERATIONS,
                      over_time=h.OPTIMISE_OVER_TIME, views=h.OPTIMISE_VIEWS, bones=skeleton.bones)
    return head_cls(**kwargs)


def sequence_inputs(head: nn.Module, batch) -> Dict[str, torch.Tensor]:
    """For a head that ``takes_sequences`` (optimised): each sample's sequence, as integer labels (B,) of its
    ``meta`` subject and sequence, and its frame number in the take (B,); nothing for other heads or batches
    without ``meta``."""
    meta = batch.get("meta")
    if not getattr(head, "takes_sequences", False) or not meta or "sequence" not in meta or "frame" not in meta:
        return {}
    names = [f"{subject}/{sequence}" for subject, sequence in zip(meta.get("subject", [""] * len(meta["sequence"])),
                                                                   meta["sequence"])]
    labels = np.unique(np.array(names), return_inverse=True)[1].reshape(-1)
    device = batch["keypoints_2d"].device
    return {"sequence": torch.as_tensor(labels, dtype=torch.int64, device=device),
            "frames": torch.as_tensor(np.asarray(meta["frame"], dtype=np.int64), device=device)}


@PIPELINES.register("triangulation")
class TriangulationPipeline(Pipeline):
    """2D keypoints of every view -> triangulation head -> world 3D: triangulates the centre frame's 2D keypoints of
    all views."""

    predicts_absolute = True
    parts = "MODEL.HEAD.NAME (e.g. dlt) on keypoints, with MODEL.BACKBONE.NAME and MODEL.LIFTER.NAME none"

    def __init__(self, head: nn.Module, skeleton: Skeleton = H36M17):
        super().__init__(skeleton)
        self.head = head

    @classmethod
    def from_config(cls, cfg) -> "TriangulationPipeline":
        m = cfg.MODEL
        if m.HEAD.NAME == "none":
            raise PipelineConfigError("nothing to build: set MODEL.HEAD.NAME (e.g. dlt) or MODEL.LIFTER.NAME (e.g. "
                                      "linear)")
        if cfg.DATASETS.VIEWS != "all":
            raise PipelineConfigError(f"MODEL.HEAD.NAME '{m.HEAD.NAME}' triangulates several views but "
                                      f"DATASETS.VIEWS is '{cfg.DATASETS.VIEWS}'; set DATASETS.VIEWS all")
        return cls(head=build_head(cfg), skeleton=skeleton_of(cfg))

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        result = self.head(centre_frame(batch["keypoints_2d"]), centre_frame(batch["confidence_2d"]), batch["cameras"],
                           **sequence_inputs(self.head, batch))
        return {"pred_3d": result.points_3d, "valid_3d": result.valid}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        return {"target_3d": centre_frame(batch["keypoints_3d"])}
