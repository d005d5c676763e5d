"""Pipelines: the end-to-end models that ``main.py`` trains and tests, composed from the registries.

A pipeline maps a batch of the shared form (``datasets``) to an outputs dict holding at least
``pred_3d`` and ``target_3d``, (B, J, 3) millimetres for each sample's target (centre) frame and in
the same frame of reference, so the evaluator can compare them without knowing the method.
``predicts_absolute`` says whether ``pred_3d`` is absolute (world frame) or root-relative.

- ``TriangulationPipeline``: 2D keypoints of every view -> triangulation head -> world 3D.
- ``LiftingPipeline``: single-view 2D keypoints -> lifter -> root-relative camera-frame 3D, with the
  inputs and outputs standardised by training-set statistics (Martinez et al. 2017).

``build_pipeline(cfg)`` is the only place that reads the model config.
"""
import logging
from typing import Dict

import torch
from torch import nn

import modeling.heads  # noqa: F401  (registers the heads)
import modeling.lifters  # noqa: F401  (registers the lifters)
from core.registry import BACKBONES, HEADS, LIFTERS
from core.skeleton import NUM_JOINTS, ROOT

logger = logging.getLogger("epipose")


class PipelineConfigError(ValueError):
    """The configured pieces do not fit together."""


class Pipeline(nn.Module):
    predicts_absolute = False

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def prepare(self, train_loader) -> None:
        """Fit data-dependent state (e.g. normalisation statistics) before training; default: nothing."""

    def losses(self, outputs: Dict[str, torch.Tensor], batch) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has nothing to train")


class TriangulationPipeline(Pipeline):
    """Triangulates the centre frame's 2D keypoints of all views."""

    predicts_absolute = True

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        centre = batch["keypoints_2d"].shape[1] // 2
        result = self.head(batch["keypoints_2d"][:, centre], batch["confidence_2d"][:, centre], batch["cameras"])
        return {"pred_3d": result.points_3d, "target_3d": batch["keypoints_3d"][:, centre],
                "valid_3d": result.valid}


class LiftingPipeline(Pipeline):
    """Single-view lifting of a window of 2D keypoints to the centre frame's root-relative 3D pose in the
    camera frame. Inputs (full-image pixels) and outputs (mm) are standardised with statistics fitted on
    the training set by ``prepare``; the loss is the MSE of the standardised outputs (Martinez et al.)."""

    def __init__(self, lifter: nn.Module, num_frames: int, num_joints: int):
        super().__init__()
        self.lifter = lifter
        self.num_joints = num_joints
        in_features, out_features = num_frames * num_joints * 2, (num_joints - 1) * 3
        self.register_buffer("input_mean", torch.zeros(in_features))
        self.register_buffer("input_std", torch.ones(in_features))
        self.register_buffer("target_mean", torch.zeros(out_features))
        self.register_buffer("target_std", torch.ones(out_features))
        self.register_buffer("statistics_fitted", torch.tensor(False))
        self.register_buffer("non_root", torch.tensor([j for j in range(num_joints) if j != ROOT]),
                             persistent=False)

    def _inputs_and_targets(self, batch):
        keypoints_2d = batch["keypoints_2d"]                      # B, T, 1, J, 2
        if keypoints_2d.shape[2] != 1:
            raise PipelineConfigError(f"a single-view lifter got {keypoints_2d.shape[2]} views per sample; "
                                      "set DATASETS.VIEWS single")
        centre = keypoints_2d.shape[1] // 2
        inputs = keypoints_2d.flatten(1)
        target_cam = batch["cameras"].world_to_camera(batch["keypoints_3d"][:, centre:centre + 1]
                                                      .to(batch["cameras"].dtype))[:, 0]
        target_rel = (target_cam - target_cam[:, ROOT:ROOT + 1]).to(inputs.dtype)
        return inputs, target_rel

    def _non_root(self, pose):
        return pose[:, self.non_root].flatten(1)

    @torch.no_grad()
    def prepare(self, train_loader) -> None:
        if bool(self.statistics_fitted):
            return
        inputs, targets = [], []
        for batch in train_loader:
            x, y = self._inputs_and_targets(batch)
            inputs.append(x)
            targets.append(self._non_root(y))
        inputs, targets = torch.cat(inputs).double(), torch.cat(targets).double()
        self.input_mean.copy_(inputs.mean(0))
        self.input_std.copy_(inputs.std(0).clamp_min(1e-6))
        self.target_mean.copy_(targets.mean(0))
        self.target_std.copy_(targets.std(0).clamp_min(1e-6))
        self.statistics_fitted.fill_(True)
        logger.info("fitted input/output standardisation on %d training samples", len(inputs))

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        inputs, target_rel = self._inputs_and_targets(batch)
        normalised = self.lifter((inputs - self.input_mean) / self.input_std)
        pred = normalised * self.target_std + self.target_mean
        pred_3d = torch.zeros_like(target_rel)
        pred_3d[:, self.non_root] = pred.view(len(pred), -1, 3)
        return {"pred_3d": pred_3d, "target_3d": target_rel, "pred_normalised": normalised}

    def losses(self, outputs, batch):
        target = (self._non_root(outputs["target_3d"]) - self.target_mean) / self.target_std
        return {"mse_3d": torch.mean((outputs["pred_normalised"] - target) ** 2)}


def build_pipeline(cfg) -> Pipeline:
    """Compose the configured pieces; unknown names fail listing the registered ones."""
    m = cfg.MODEL
    if m.BACKBONE.NAME != "none":
        BACKBONES.get(m.BACKBONE.NAME)  # raises listing the registered backbones
        raise PipelineConfigError("image pipelines are not built yet")
    if m.LIFTER.NAME != "none":
        if m.HEAD.NAME != "none":
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' and MODEL.HEAD.NAME '{m.HEAD.NAME}' "
                                      "are both set; choose one")
        lifter_cls = LIFTERS.get(m.LIFTER.NAME)
        if getattr(lifter_cls, "single_view", False) and cfg.DATASETS.VIEWS != "single":
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' is single-view but DATASETS.VIEWS is "
                                      f"'{cfg.DATASETS.VIEWS}'; set DATASETS.VIEWS single")
        frames, joints = cfg.DATASETS.FRAMES, NUM_JOINTS
        lifter = lifter_cls(in_features=frames * joints * 2, out_features=(joints - 1) * 3, hidden=m.LIFTER.HIDDEN,
                            num_blocks=m.LIFTER.NUM_BLOCKS, dropout=m.LIFTER.DROPOUT,
                            max_norm=1.0 if m.LIFTER.MAX_NORM else None)
        return LiftingPipeline(lifter, num_frames=frames, num_joints=joints)
    if m.HEAD.NAME != "none":
        if cfg.DATASETS.VIEWS != "all":
            raise PipelineConfigError(f"MODEL.HEAD.NAME '{m.HEAD.NAME}' triangulates several views but "
                                      f"DATASETS.VIEWS is '{cfg.DATASETS.VIEWS}'; set DATASETS.VIEWS all")
        head = HEADS.get(m.HEAD.NAME)(confidence_weighted=m.HEAD.CONFIDENCE_WEIGHTED,
                                      min_confidence=m.HEAD.MIN_CONFIDENCE)
        return TriangulationPipeline(head)
    raise PipelineConfigError("nothing to build: set MODEL.HEAD.NAME (e.g. dlt) or MODEL.LIFTER.NAME (e.g. linear)")
