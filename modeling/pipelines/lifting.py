"""The lifting pipeline: single-view 2D keypoints -> lifter -> root-relative camera-frame 3D, with the inputs and
outputs standardised by training-set statistics (Martinez et al. 2017)."""
import logging
from typing import Dict

import torch
from torch import nn

from core.registry import PIPELINES
from core.skeleton import H36M17, Skeleton, skeleton_of
from core.missing_joints import filled, masked_mean, present_joints
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.lifter_config import build_lifter, configured_lifter
from modeling.pipelines.targets import root_relative_camera_targets
from modeling.standardizer import Standardizer, load_old_statistics_names

logger = logging.getLogger("epipose")


@PIPELINES.register("lifting")
class LiftingPipeline(Pipeline):
    """Single-view lifting of a window of 2D keypoints to the centre frame's root-relative 3D pose in the
    camera frame. Inputs (full-image pixels) and outputs (mm) are standardised with statistics fitted on
    the training set by ``prepare``; the loss is the MSE of the standardised outputs (Martinez et al.).
    Lifters with ``outputs_all_joints`` (the graph networks) predict every joint; their pelvis is dropped.
    With ``pca_components`` the lifter takes the standardised input's first principal components instead
    (ERD's ``--pca_input`` for the linear lifter), fitted with the statistics."""

    parts = "MODEL.LIFTER.NAME {lifters} (standardised 2D), with MODEL.BACKBONE.NAME and MODEL.REFINER.NAME none"

    def __init__(self, lifter: nn.Module, num_frames: int, pca_components: int = 0, skeleton: Skeleton = H36M17):
        super().__init__(skeleton)
        self.lifter = lifter
        num_joints = skeleton.num_joints
        in_features, out_features = num_frames * num_joints * 2, (num_joints - 1) * 3
        if not 0 <= pca_components <= in_features:
            raise PipelineConfigError(f"MODEL.LIFTER.PCA_COMPONENTS must be in 0..{in_features} (the input's "
                                      f"coordinates; 0 = off), got {pca_components}")
        self.pca_components = pca_components
        self.inputs = Standardizer((in_features,), pca_components)
        self.outputs = Standardizer((out_features,))
        load_old_statistics_names(self, {"input_mean": "inputs.mean", "input_std": "inputs.std",
                                         "pca_mean": "inputs.pca_mean", "pca_basis": "inputs.pca_basis",
                                         "target_mean": "outputs.mean", "target_std": "outputs.std"})
        self.register_buffer("statistics_fitted", torch.tensor(False))
        self.register_buffer("non_root", torch.tensor(skeleton.non_root_joints()),
                             persistent=False)

    @classmethod
    def from_config(cls, cfg) -> "LiftingPipeline":
        lifter_cls, lf, frames, skeleton = configured_lifter(cfg), cfg.MODEL.LIFTER, cfg.DATASETS.FRAMES, skeleton_of(cfg)
        joints = skeleton.num_joints
        if getattr(lifter_cls, "outputs_all_joints", False):  # graph lifters: one node per joint of one frame
            if frames != 1:
                raise PipelineConfigError(f"MODEL.LIFTER.NAME '{lf.NAME}' is a graph of one frame's joints: set "
                                          "DATASETS.FRAMES 1")
            return cls(lifter=build_lifter(cfg, skeleton=skeleton), num_frames=1, skeleton=skeleton)
        lifter = build_lifter(cfg, in_features=lf.PCA_COMPONENTS or frames * joints * 2, out_features=(joints - 1) * 3)
        return cls(lifter=lifter, num_frames=frames, pca_components=lf.PCA_COMPONENTS, skeleton=skeleton)

    @staticmethod
    def _inputs(batch):
        keypoints_2d = batch["keypoints_2d"]                      # B, T, 1, J, 2
        if keypoints_2d.shape[2] != 1:
            raise PipelineConfigError(f"a single-view lifter got {keypoints_2d.shape[2]} views per sample; "
                                      "set DATASETS.VIEWS single")
        return keypoints_2d.flatten(1)

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        """``target_3d`` (B, J, 3): the centre frame's root-relative camera-frame 3D, mm."""
        return {"target_3d": root_relative_camera_targets(batch, self.skeleton.root).to(batch["keypoints_2d"].dtype)}

    def _non_root(self, pose):
        return pose[:, self.non_root].flatten(1)

    @torch.no_grad()
    def prepare(self, train_loader) -> None:
        if bool(self.statistics_fitted):
            return
        inputs, targets = [], []
        for batch in train_loader:
            inputs.append(self._inputs(batch))
            targets.append(self._non_root(self.targets(batch)["target_3d"]))
        inputs, targets = torch.cat(inputs), torch.cat(targets)
        if (torch.isfinite(targets).sum(0) < 2).any():          # missing target joints are left out
            raise PipelineConfigError("the training set has fewer than 2 samples with a target for some joint: "
                                      "its output statistics cannot be fitted")
        self.inputs.fit(inputs)
        self.outputs.fit(targets)
        self.statistics_fitted.fill_(True)
        logger.info("fitted input/output standardisation%s on %d training samples",
                    f" and a {self.pca_components}-component PCA" if self.pca_components else "", len(inputs))

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        normalised = self.lifter(self.inputs(self._inputs(batch)))
        if getattr(self.lifter, "outputs_all_joints", False):  # graph lifters: one output node per joint
            normalised = self._non_root(normalised.view(len(normalised), -1, 3))
        pred = self.outputs.restore(normalised)
        pred_3d = pred.new_zeros(len(pred), len(self.non_root) + 1, 3)
        pred_3d[:, self.non_root] = pred.view(len(pred), -1, 3)
        return {"pred_3d": pred_3d, "pred_normalised": normalised}

    def losses(self, outputs, batch):
        pred = outputs["pred_normalised"].view(len(outputs["pred_normalised"]), -1, 3)
        target = self.outputs(self._non_root(self.targets(batch)["target_3d"])).view_as(pred)
        present = present_joints(target)
        return {"mse_3d": masked_mean((pred - filled(target, present, pred)).pow(2).mean(-1), present)}
