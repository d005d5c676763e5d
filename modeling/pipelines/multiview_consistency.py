"""The multi-view consistency pipeline: a single-view lifter of root-relative pixels trained from the 2D of all views
without 3D labels (Bouazizi et al. 2021) and tested on single views."""
from typing import Dict

import torch
from torch import nn

from core.registry import PIPELINES
from core.sample_schema import centre_frame
from core.skeleton import H36M17, Skeleton, skeleton_of
from modeling.losses.multiview import multiview_consistency_losses
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.lifter_config import build_lifter
from modeling.pipelines.targets import root_relative_camera_targets


@PIPELINES.register("multiview_consistency")
class MultiViewConsistencyPipeline(Pipeline):
    """Self-supervised multi-view training of a single-view lifter (Bouazizi et al., FG 2021).

    The lifter maps each view's root-relative 2D (pixels, non-root joints) to its root-relative camera-frame
    3D. Training samples hold every view of a frame (``DATASETS.TRAIN_VIEWS all``); the losses
    (``modeling.losses.multiview``) compare the per-view predictions with the DLT of the input 2D of all
    views (``triangulation``), with each other view's pseudo-label after the relative camera rotation
    (``rigid``) and, optionally, their reprojections with the input 2D (``reprojection``). Test samples
    hold one view; ``pred_3d`` is root-relative in its camera frame, root at 0.

    Fixes to the reference training code (``vru2020/Pose_3D``, ``main_h36m.py``): the optimiser is created
    once (the reference re-creates Adam at every batch, which resets its moments); the pseudo-labels are
    computed from the input 2D with lens distortion removed (the reference reads them from an offline file
    made by a DLT that ignores distortion); the reprojection loss is root-relative in every view (the
    reference compares one of the four views in absolute pixels); the views of a frame are grouped by the
    sample, not by four consecutive rows of an unshuffled loader, so training batches can be shuffled.
    Not implemented: the reference's ``tri_out`` switch, which re-triangulates the same input 2D and so
    duplicates the triangulation loss.
    """

    parts = "MODEL.LIFTER.NAME {lifters} (root-relative pixels), with MODEL.BACKBONE.NAME and MODEL.REFINER.NAME none"

    def __init__(self, lifter: nn.Module, reprojection_weight: float = 0.0, skeleton: Skeleton = H36M17):
        super().__init__(skeleton)
        self.lifter, self.reprojection_weight = lifter, reprojection_weight
        self.register_buffer("non_root", torch.tensor(skeleton.non_root_joints()),
                             persistent=False)

    @classmethod
    def from_config(cls, cfg) -> "MultiViewConsistencyPipeline":
        lf = cfg.MODEL.LIFTER
        if cfg.DATASETS.TRAIN_VIEWS != "all" or cfg.DATASETS.FRAMES != 1:
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{lf.NAME}' trains on every view of single frames: "
                                      "set DATASETS.TRAIN_VIEWS all and DATASETS.FRAMES 1")
        skeleton = skeleton_of(cfg)
        return cls(lifter=build_lifter(cfg, num_joints=skeleton.num_joints), reprojection_weight=lf.REPROJECTION_WEIGHT,
                   skeleton=skeleton)

    def _lift(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        """(B, V, J, 2) pixels -> (B, V, J, 3) root-relative camera-frame mm, root at 0."""
        relative = keypoints_2d - keypoints_2d[..., self.skeleton.root:self.skeleton.root + 1, :]
        lifted = self.lifter(relative[..., self.non_root, :].flatten(0, 1))
        pred = lifted.new_zeros(*keypoints_2d.shape[:-1], 3)
        pred[..., self.non_root, :] = lifted.view(*keypoints_2d.shape[:2], -1, 3)
        return pred

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        pred = self._lift(centre_frame(batch["keypoints_2d"]).float())
        if pred.shape[1] == 1:
            return {"pred_3d": pred[:, 0]}
        return {"pred_views": pred}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        """``target_3d`` (B, J, 3): a single-view sample's root-relative camera-frame 3D, mm (training has none)."""
        return {"target_3d": root_relative_camera_targets(batch, self.skeleton.root)}

    def losses(self, outputs, batch):
        if "pred_views" not in outputs:
            raise PipelineConfigError("the multi-view consistency losses need every view of a frame in a training "
                                      "sample: set DATASETS.TRAIN_VIEWS all")
        return multiview_consistency_losses(outputs["pred_views"], centre_frame(batch["keypoints_2d"]), batch["cameras"],
                                            self.skeleton.root, self.reprojection_weight)
