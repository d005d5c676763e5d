"""The multi-view lifting pipeline: windows of every view's 2D (normalised screen coordinates) -> multi-view lifter
(ESMformer) -> root-relative world-frame 3D, supervised (MPJPE) or self-supervised (triangulation and reprojection
consistency, error-aware weighting)."""
from typing import Dict

import torch
from torch import nn

from core.geometry.mirror import mirror_joints_3d
from core.registry import PIPELINES
from core.sample_schema import centre_frame
from core.skeleton import H36M17, Skeleton, skeleton_of
from datasets.sequences import mirror_sample
from modeling.losses.error_aware import ErrorAwareWeights
from core.missing_joints import joint_errors, masked_mean, present_joints
from modeling.losses.multiview import triangulation_reprojection_losses
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.lifter_config import build_lifter
from modeling.pipelines.targets import normalised_screen_coordinates, root_relative_world_targets


@PIPELINES.register("multiview_lifting")
class MultiViewLiftingPipeline(Pipeline):
    """Multi-view lifting of windows of every view's 2D (normalised screen coordinates) to root-relative world-frame
    3D (ESMformer; the lifter works in metres, ``pred_3d`` is the centre frame in mm).

    - Supervised: the MPJPE (m) of every window frame against the root-relative world 3D (the reference's
      ``mpjpe_cal`` over all 27 frames; the predicted pelvis is trained towards 0, and the metrics re-centre
      the prediction on it, where the reference scores the raw prediction).
    - Self-supervised (the lifter predicts the centre frame): per window, ``loss_weight`` x the triangulation
      loss (mean over joints of the L1 norm, m, between the prediction and the root-relative DLT of the
      centre frame's input 2D of all views) + (1 - ``loss_weight``) x the reprojection loss (the prediction,
      placed at the DLT's pelvis, projected into every view; mean over joints of the L1 norm between its
      root-relative normalised screen coordinates and the input's, mean over views).
    - ``error_aware``: the windows' losses are averaged with ESMformer's adaptive weights
      (``modeling.losses.error_aware``) instead of uniformly.
    - ``test_flip``: the prediction is averaged with the mirrored-back prediction of the mirrored views. The
      mirrored views are those of the mirrored rig (each camera at its mirror position), which the lifter
      knows only if it was trained with ``DATASETS.FLIP``; ``from_config`` requires that.

    Fixes to the reference (``main.py``, ``common/computer_*_loss.py``): the reprojection-only setting
    (``loss_weight`` 0) works; the DLT removes lens distortion (the reference's DLT ignores it while its
    reprojection applies it); the reprojected pose sits at the triangulated pelvis, not at the world origin;
    each camera's own image height is used (the reference's ``cam_idx == 0 or 3`` test is always true);
    flips are applied in training (``DATASETS.FLIP``) and testing (the reference's flip flags duplicate
    unflipped samples).
    """

    parts = "MODEL.LIFTER.NAME {lifters} (every view's screen coordinates), with MODEL.BACKBONE.NAME and " \
            "MODEL.REFINER.NAME none"

    def __init__(self, lifter: nn.Module, self_supervised: bool = False, loss_weight: float = 0.8,
                 error_aware: bool = False, test_flip: bool = False, skeleton: Skeleton = H36M17):
        super().__init__(skeleton)
        if not 0.0 <= loss_weight <= 1.0:
            raise PipelineConfigError(f"MODEL.LIFTER.LOSS_W must be in [0, 1] (a convex weight), got {loss_weight}")
        self.lifter, self.self_supervised, self.loss_weight = lifter, self_supervised, loss_weight
        self.test_flip = test_flip
        self.error_weights = ErrorAwareWeights() if error_aware else None

    @classmethod
    def from_config(cls, cfg) -> "MultiViewLiftingPipeline":
        lf, d = cfg.MODEL.LIFTER, cfg.DATASETS
        if d.VIEWS != "all" or d.TRAIN_VIEWS not in ("", "all"):
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{lf.NAME}' fuses every view of a frame: set "
                                      "DATASETS.VIEWS all (and DATASETS.TRAIN_VIEWS '' or all)")
        if cfg.TEST.FLIP and not d.FLIP:
            raise PipelineConfigError(f"TEST.FLIP with MODEL.LIFTER.NAME '{lf.NAME}' shows it the mirrored "
                                      "rig, which it learns only from mirrored training samples: set "
                                      "DATASETS.FLIP True")
        if d.NAME == "synthetic" and d.SYNTHETIC.RIG != "h36m_ring":
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{lf.NAME}' learns one fixed rig (it never sees "
                                      "the cameras): set DATASETS.SYNTHETIC.RIG h36m_ring")
        skeleton = skeleton_of(cfg)
        lifter = build_lifter(cfg, num_frames=d.FRAMES, num_joints=skeleton.num_joints,
                              centre_frame=lf.SELF_SUPERVISED)
        return cls(lifter=lifter, self_supervised=lf.SELF_SUPERVISED, loss_weight=lf.LOSS_W,
                   error_aware=lf.ERROR_AWARE, test_flip=cfg.TEST.FLIP, skeleton=skeleton)

    def prepare(self, train_loader) -> None:
        if self.error_weights is not None:
            self.error_weights.reset(train_loader.dataset.num_frames)

    def _lift(self, batch) -> torch.Tensor:
        """(B, T or 1, J, 3) root-relative world mm."""
        inputs = normalised_screen_coordinates(batch["keypoints_2d"].float(), batch["cameras"])
        return self.lifter(inputs) * 1000.0

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        pred = self._lift(batch)
        centre = 0 if pred.shape[1] == 1 else pred.shape[1] // 2
        pred_3d = pred[:, centre]
        if self.test_flip and not self.training:
            pred_3d = (pred_3d + mirror_joints_3d(self._lift(mirror_sample(batch, self.skeleton))[:, centre], self.skeleton)) / 2
        return {"pred_3d": pred_3d, "pred_window": pred}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        """``target_window`` (B, T, J, 3): every window frame's root-relative world 3D, mm; ``target_3d``: its centre
        frame."""
        window = root_relative_world_targets(batch, self.skeleton.root)
        return {"target_3d": centre_frame(window), "target_window": window}

    def _window_losses(self, outputs, batch) -> Dict[str, torch.Tensor]:
        """Per-window (B,) losses."""
        pred = outputs["pred_window"] / 1000.0
        if not self.self_supervised:
            target = self.targets(batch)["target_window"]
            return {"mpjpe": masked_mean(*joint_errors(pred, target / 1000.0), dim=(1, 2))}
        return triangulation_reprojection_losses(centre_frame(pred), centre_frame(batch["keypoints_2d"]),
                                                 batch["cameras"], self.skeleton.root, self.loss_weight)

    def losses(self, outputs, batch):
        """The per-window losses averaged over the windows (error-aware: weighted); supervised, a window without
        any target joint (``core.missing_joints``) weighs nothing."""
        per_window = self._window_losses(outputs, batch)
        counted = torch.ones_like(batch["frame_ids"][:, 0], dtype=torch.bool) if self.self_supervised else \
            present_joints(self.targets(batch)["target_window"]).flatten(1).any(1)
        if self.error_weights is None:
            return {name: masked_mean(value, counted) for name, value in per_window.items()}
        weights = self.error_weights(sum(per_window.values()).detach(), batch["frame_ids"], counted)
        return {name: (weights * value).sum() for name, value in per_window.items()}
