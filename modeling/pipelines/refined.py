"""The refined pipeline: a trained single-view lifting pipeline, frozen, whose 3D a refiner improves stage by stage
from how it re-projects (ERD, Kang et al. 2020)."""
import logging
from typing import Dict, Optional

import torch
from torch import nn

from core.registry import PIPELINES, REFINERS
from core.sample_schema import centre_frame
from core.missing_joints import joint_errors, masked_mean
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.lifter_config import keypoint_lifting
from modeling.pipelines.lifting import LiftingPipeline
from modeling.pipelines.screen_lifting import ScreenLiftingPipeline

logger = logging.getLogger("epipose")

TRUE_PELVIS_NEEDED = ("MODEL.REFINER.ROOT gt takes the true pelvis as an input (ERD's protocol: "
                      "model(batch, **model.truth_inputs(batch))); set MODEL.REFINER.ROOT least_squares to refine "
                      "from the 2D and cameras alone")


@PIPELINES.register("refined")
class RefinedPipeline(Pipeline):
    """A trained single-view lifting pipeline (``base``, frozen and always in eval mode) whose root-relative
    camera-frame 3D a refiner (``modeling.refiners``) improves from the centre frame's input 2D and camera.

    Greedy stage-wise training (ERD): epoch e trains refinement stage e // ``epochs_per_stage`` alone. The
    loss is the mean squared error, mm^2, of the refined non-root joints (ERD's MSE on the cumulative estimate).
    Outputs ``pred_lifter``, the base's estimate, besides ``pred_3d``. With the refiner's ``root='gt'`` (the protocol
    of every number ERD reports) the true pelvis is one of its inputs, ``forward``'s ``root_true``, which
    ``truth_inputs`` reads from ``keypoints_3d``; with ``least_squares`` the pipeline runs on the 2D and cameras
    alone.
    """

    partially_trained = True  # only the current stage trains
    parts = "MODEL.REFINER.NAME and MODEL.LIFTER.NAME (a single-view lifter), with MODEL.BACKBONE.NAME none"
    pretrained_parts = {"base": ("MODEL.LIFTER.WEIGHTS", "MODEL.LIFTER")}

    def __init__(self, base: Pipeline, refiner: nn.Module, epochs_per_stage: int):
        super().__init__(base.skeleton)
        self.base, self.refiner, self.epochs_per_stage = base, refiner, epochs_per_stage
        self.base.requires_grad_(False)
        self.register_buffer("non_root", torch.tensor(base.skeleton.non_root_joints()), persistent=False)

    @classmethod
    def from_config(cls, cfg) -> "RefinedPipeline":
        """The configured refiner around the single-view lifting pipeline of MODEL.LIFTER (its weights:
        MODEL.LIFTER.WEIGHTS, loaded by the engine)."""
        r, d = cfg.MODEL.REFINER, cfg.DATASETS
        base = keypoint_lifting(cfg)
        if not isinstance(base, (LiftingPipeline, ScreenLiftingPipeline)) or d.VIEWS != "single" or \
                d.TRAIN_VIEWS not in ("", "single"):
            raise PipelineConfigError(f"MODEL.REFINER.NAME '{r.NAME}' refines single-view lifters trained with 3D "
                                      f"(linear, lcn, semgcn, poseformer) on single views: set DATASETS.VIEWS single "
                                      f"and DATASETS.TRAIN_VIEWS ''")
        if r.EPOCHS_PER_STAGE < 1 or (cfg.DOTRAIN and cfg.SOLVER.MAX_EPOCHS != r.STAGES * r.EPOCHS_PER_STAGE):
            raise PipelineConfigError(f"greedy stage-wise training: SOLVER.MAX_EPOCHS ({cfg.SOLVER.MAX_EPOCHS}) must "
                                      f"be MODEL.REFINER.STAGES x EPOCHS_PER_STAGE ({r.STAGES} x {r.EPOCHS_PER_STAGE})")
        try:
            refiner = REFINERS.get(r.NAME)(skeleton=base.skeleton, num_stages=r.STAGES, hidden=r.HIDDEN,
                                           num_blocks=r.NUM_BLOCKS, dropout=r.DROPOUT, features=r.FEATURES,
                                           pca_components=r.PCA_COMPONENTS, root=r.ROOT, update_root=r.UPDATE_ROOT)
        except ValueError as err:
            raise PipelineConfigError(f"MODEL.REFINER: {err}") from None
        return cls(base=base, refiner=refiner, epochs_per_stage=r.EPOCHS_PER_STAGE)

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()
        return self

    def start_epoch(self, epoch: int) -> None:
        self.refiner.start_stage(epoch // self.epochs_per_stage)

    def truth_inputs(self, batch) -> Dict[str, torch.Tensor]:
        """With the refiner's ``root='gt'``: ``root_true``, the true camera-frame pelvis (B, 3), from ``keypoints_3d``."""
        if self.refiner.root != "gt":
            return {}
        if "keypoints_3d" not in batch:
            raise ValueError(TRUE_PELVIS_NEEDED + " (the batch has no keypoints_3d)")
        cameras = batch["cameras"][:, 0]
        pelvis = centre_frame(batch["keypoints_3d"])[:, None, self.skeleton.root].to(cameras.dtype)
        return {"root_true": cameras.world_to_camera(pelvis)[:, 0]}

    @torch.no_grad()
    def prepare(self, train_loader) -> None:
        self.refiner.fit(torch.cat([centre_frame(batch["keypoints_2d"])[:, 0] for batch in train_loader]))
        logger.info("fitted the refiner's 2D statistics on %d training samples", len(train_loader.dataset))

    def forward(self, batch, root_true: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """``root_true`` (B, 3): the true camera-frame pelvis, which the refiner's ``root='gt'`` needs
        (``truth_inputs``) and any other root ignores."""
        if self.refiner.root == "gt" and root_true is None:
            raise ValueError(TRUE_PELVIS_NEEDED)
        with torch.no_grad():
            outputs = self.base(batch)
        lifted = outputs["pred_3d"] - outputs["pred_3d"][:, self.skeleton.root:self.skeleton.root + 1]
        keypoints_2d = centre_frame(batch["keypoints_2d"])[:, 0].to(lifted.dtype)
        refined = self.refiner(lifted, keypoints_2d, batch["cameras"][:, 0],
                               root_true if self.refiner.root == "gt" else None)
        return {"pred_3d": refined, "pred_lifter": lifted}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        return self.base.targets(batch)

    def losses(self, outputs, batch):
        target = self.targets(batch)["target_3d"]
        errors, present = joint_errors(outputs["pred_3d"][:, self.non_root], target[:, self.non_root])
        return {"mse_3d_mm2": masked_mean(errors.pow(2), present) / 3}
