"""What the score-map and image lifting pipelines share: lifters that predict each view's root-relative pose divided
by a bone length (Zimmermann & Brox, ICCV 2017; Epipolar Transformers' lifting tasks), directly or as a canonical
pose and the rotation of its viewpoint.

Each view of a sample is lifted on its own, in its camera frame, to ``normalised_3d`` (the pose divided by the
length of the skeleton's scale bone). ``pred_3d`` is that pose times the scale, rotated into the world frame and
averaged over the sample's views (with one view: the view's pose, in world axes), root-relative, mm; ``target_3d``
is the root-relative world pose. The scale is the target pose's own bone length (``scale`` "truth", given as an
input by ``truth_inputs``: the protocol of both references, which score the normalised prediction times the true
length), or the training set's mean bone length (``scale`` "mean", fitted by ``prepare``: the pipeline then runs
on its inputs alone).

The frame of each skeleton, by the joints' common names (``core.skeleton``), so every body layout shares one:

- hand (``hand21``): Zimmermann & Brox's, scale bone middle_mcp -> middle_pip, canonical frame middle_mcp on -y and
  little_mcp in the xy plane (hand3d's ``canonical_trafo``: RHD's joints 12 and 20);
- body (``h36m17`` and the layouts with pelvis, thorax and l_hip): Epipolar Transformers' scale, pelvis ->
  thorax (its H36M reader, joint 0 -> 8); its H36M reader has no canonical frame (so its ``lifting_rot`` and
  ``img_lifting_rot`` tasks cannot run on Human3.6M), here thorax on -y and l_hip in the xy plane at x > 0: a
  person upright and facing the camera has a rotation near the identity.
"""
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from core.geometry.rotation import canonical_frame
from core.sample_schema import centre_frame
from core.skeleton import Skeleton
from modeling.losses.canonical import canonical_mses, normalised_mse
from modeling.pipelines.base import Pipeline, PipelineConfigError

SCALES = ("truth", "mean")
TRUE_SCALE_NEEDED = ("MODEL.LIFTER.SCALE truth takes the target pose's bone length as an input "
                     "(model(batch, **model.truth_inputs(batch))); set MODEL.LIFTER.SCALE mean to lift from the "
                     "inputs alone")
# common joint names -> (scale bone from, to, canonical align joint, canonical rotate joint)
FRAMES = {"hand": ("middle_mcp", "middle_pip", "middle_mcp", "little_mcp"),
          "body": ("pelvis", "thorax", "thorax", "l_hip")}


@dataclass(frozen=True)
class PoseFrame:
    """Joint indices of a skeleton's scale bone and canonical frame."""
    scale_from: int
    scale_to: int
    align: int
    rotate: int


def pose_frame(skeleton: Skeleton) -> PoseFrame:
    """The scale bone and canonical frame of ``skeleton`` (``FRAMES``, by common names); PipelineConfigError names
    the joints a skeleton lacks."""
    names = skeleton.common_names()
    for joints in FRAMES.values():
        if all(name in names for name in joints):
            return PoseFrame(*(names.index(name) for name in joints))
    raise PipelineConfigError(f"the normalised-pose lifters need a scale bone and a canonical frame: skeleton "
                              f"'{skeleton.name}' has none of the joint sets {list(FRAMES.values())}")


class NormalisedLiftingPipeline(Pipeline):
    """Subclasses implement ``_lift(batch)``: the lifter's outputs for every view, (B, V, ...)."""

    def __init__(self, lifter: nn.Module, skeleton: Skeleton, scale: str = "truth"):
        super().__init__(skeleton)
        if scale not in SCALES:
            raise PipelineConfigError(f"MODEL.LIFTER.SCALE must be one of {', '.join(SCALES)}, got '{scale}'")
        self.lifter, self.scale, self.frame = lifter, scale, pose_frame(skeleton)
        self.register_buffer("mean_scale_mm", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("scale_fitted", torch.tensor(False))

    def _lift(self, batch) -> Dict[str, Tensor]:
        raise NotImplementedError

    def _true_scale(self, batch) -> Tensor:
        """(B,) mm: the length of the scale bone in the target frame's 3D."""
        if "keypoints_3d" not in batch:
            raise ValueError(TRUE_SCALE_NEEDED + " (the batch has no keypoints_3d)")
        points = centre_frame(batch["keypoints_3d"]).double()
        return (points[:, self.frame.scale_to] - points[:, self.frame.scale_from]).norm(dim=-1)

    def truth_inputs(self, batch) -> Dict[str, Tensor]:
        """With ``scale`` "truth": ``scale_mm`` (B,), the target pose's scale-bone length."""
        return {"scale_mm": self._true_scale(batch)} if self.scale == "truth" else {}

    @torch.no_grad()
    def prepare(self, train_loader) -> None:
        """With ``scale`` "mean": the training set's mean scale-bone length."""
        if self.scale != "mean" or bool(self.scale_fitted):
            return
        lengths = torch.cat([self._true_scale(batch) for batch in train_loader])
        self.mean_scale_mm.fill_(lengths[torch.isfinite(lengths)].mean())
        self.scale_fitted.fill_(True)

    def forward(self, batch, scale_mm: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """``scale_mm`` (B,): the true bone lengths, which ``scale`` "truth" needs (``truth_inputs``) and "mean"
        ignores. Outputs: ``pred_3d`` (B, J, 3) and the lifter's outputs of every view (B, V, ...)."""
        if self.scale == "truth" and scale_mm is None:
            raise ValueError(TRUE_SCALE_NEEDED)
        outputs = self._lift(batch)
        normalised = outputs["normalised_3d"]                                   # (B, V, J, 3)
        scale = scale_mm if self.scale == "truth" else self.mean_scale_mm.expand(len(normalised))
        rotations = batch["cameras"].R.to(normalised.dtype)                      # (B, V, 3, 3) world -> camera
        world = (normalised * scale.to(normalised.dtype)[:, None, None, None]) @ rotations
        return {"pred_3d": world.mean(1), **outputs}

    def targets(self, batch) -> Dict[str, Tensor]:
        """``target_3d`` (B, J, 3): the target frame's root-relative world 3D, mm."""
        points = centre_frame(batch["keypoints_3d"]).float()
        return {"target_3d": points - points[:, self.skeleton.root:self.skeleton.root + 1]}

    def view_targets(self, batch) -> Dict[str, Tensor]:
        """Each view's ``normalised_3d`` (B, V, J, 3): the root-relative camera-frame pose over the scale-bone
        length; for canonical lifters also ``canonical_3d`` (B, V, J, 3) and ``rotation`` (B, V, 3, 3), with
        ``normalised_3d = canonical_3d @ rotation`` (NaN where the frame is undefined)."""
        cameras = batch["cameras"]
        points = centre_frame(batch["keypoints_3d"]).to(cameras.dtype)
        views = cameras.world_to_camera(points[:, None].expand(-1, cameras.batch_shape[1], -1, -1))
        root = self.skeleton.root
        normalised = (views - views[..., root:root + 1, :]) / self._true_scale(batch)[:, None, None, None]
        targets = {"normalised_3d": normalised.float()}
        if self.lifter.canonical:
            frame = canonical_frame(normalised, self.frame.align, self.frame.rotate)
            targets.update(canonical_3d=(normalised @ frame).float(), rotation=frame.transpose(-1, -2).float())
        return targets

    def losses(self, outputs, batch):
        """Canonical lifters: ``mse_canonical`` + ``mse_rotation``; direct ones: ``mse_normalised``
        (``modeling.losses.canonical``), over every view."""
        targets = self.view_targets(batch)
        if self.lifter.canonical:
            return canonical_mses(outputs["canonical_3d"], outputs["rotation"], targets["canonical_3d"],
                                  targets["rotation"])
        return {"mse_normalised": normalised_mse(outputs["normalised_3d"], targets["normalised_3d"])}
