"""The screen lifting pipeline: a single-view window of 2D keypoints in normalised screen coordinates -> sequence
lifter (PoseFormer) -> root-relative camera-frame 3D, MPJPE loss, flip test-time averaging (VideoPose3D's protocol,
which PoseFormer follows)."""
from typing import Dict

import torch
from torch import nn

from core.geometry.mirror import mirror_joints_3d
from core.registry import PIPELINES
from core.skeleton import H36M17, Skeleton, skeleton_of
from datasets.sequences import mirror_sample
from core.missing_joints import joint_errors, masked_mean
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.lifter_config import build_lifter
from modeling.pipelines.targets import normalised_screen_coordinates, root_relative_camera_targets


@PIPELINES.register("screen_lifting")
class ScreenLiftingPipeline(Pipeline):
    """Single-view lifting of a window of F frames of 2D keypoints (normalised screen coordinates) to the centre
    frame's root-relative 3D in the camera frame (Pavllo et al. 2019's protocol, used by PoseFormer).

    The lifter works in metres (outputs ``pred_3d`` in mm); the loss is the MPJPE in metres over all joints
    with the target pelvis at 0, as in the reference code (the predicted pelvis is trained towards 0, not
    forced to it). Deviation: the metrics re-centre the prediction on its own pelvis (root-relative MPJPE),
    where the reference scores the raw prediction. With ``test_flip``, the evaluation averages the prediction
    with the mirrored-back prediction of the mirrored input (``core.geometry.mirror``: about the principal
    point).
    """

    parts = "MODEL.LIFTER.NAME {lifters} (screen coordinates), with MODEL.BACKBONE.NAME and MODEL.REFINER.NAME none"

    def __init__(self, lifter: nn.Module, test_flip: bool = False, skeleton: Skeleton = H36M17):
        super().__init__(skeleton)
        self.lifter, self.test_flip = lifter, test_flip

    @classmethod
    def from_config(cls, cfg) -> "ScreenLiftingPipeline":
        skeleton = skeleton_of(cfg)
        lifter = build_lifter(cfg, num_frames=cfg.DATASETS.FRAMES, num_joints=skeleton.num_joints)
        return cls(lifter=lifter, test_flip=cfg.TEST.FLIP, skeleton=skeleton)

    def _lift(self, batch) -> torch.Tensor:
        keypoints_2d = batch["keypoints_2d"]                                     # B, T, 1, J, 2
        if keypoints_2d.shape[2] != 1:
            raise PipelineConfigError(f"a single-view lifter got {keypoints_2d.shape[2]} views per sample; "
                                      "set DATASETS.VIEWS single")
        inputs = normalised_screen_coordinates(keypoints_2d.float(), batch["cameras"])[:, :, 0]
        return self.lifter(inputs) * 1000.0

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        pred = self._lift(batch)
        if self.test_flip and not self.training:
            pred = (pred + mirror_joints_3d(self._lift(mirror_sample(batch, self.skeleton)), self.skeleton)) / 2
        return {"pred_3d": pred}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        """``target_3d`` (B, J, 3): the centre frame's root-relative camera-frame 3D, mm."""
        return {"target_3d": root_relative_camera_targets(batch, self.skeleton.root)}

    def losses(self, outputs, batch):
        return {"mpjpe": masked_mean(*joint_errors(outputs["pred_3d"], self.targets(batch)["target_3d"])) / 1000.0}
