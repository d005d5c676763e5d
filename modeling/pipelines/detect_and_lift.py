"""The detect-and-lift pipeline: an image pipeline's 2D of every view, mapped back to full-image pixels, lifted view
by view by a single-view lifting pipeline; the views' root-relative 3D averaged in the world frame."""
from typing import Dict

import torch

from core.geometry.projection import crop_to_image_pixels
from core.registry import LIFTERS, PIPELINES
from core.sample_schema import centre_frame
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.image import ImagePipeline
from modeling.pipelines.lifter_config import keypoint_lifting
from modeling.pipelines.targets import root_relative_world_targets


@PIPELINES.register("detect_and_lift")
class DetectAndLiftPipeline(Pipeline):
    """Images of every view -> 2D (``detector``, an ``ImagePipeline`` whose head is not used) -> each view's 2D in
    full-image pixels (``crop_to_image_pixels``) -> a single-view lifting pipeline (``lifting``), one view at a
    time -> each view's root-relative camera-frame 3D rotated into the world frame and averaged over the views.

    ``pred_3d``: root-relative world 3D, mm. Either part may be frozen (fixed weights, eval mode, no loss); the
    losses are the detector's heatmap loss and the lifting pipeline's loss on every view (``lifter_*``), which
    fine-tunes the lifter on the detector's 2D. Samples must hold ``image_cameras``, the full images' cameras.
    """

    parts = "MODEL.BACKBONE.NAME and MODEL.LIFTER.NAME (a single-view lifter), with MODEL.HEAD.NAME none"
    pretrained_parts = {"lifting": ("MODEL.LIFTER.WEIGHTS", "MODEL.LIFTER"),
                        "detector": ("MODEL.BACKBONE.WEIGHTS", "MODEL.BACKBONE and MODEL.FUSION")}

    def __init__(self, detector: "ImagePipeline", lifting: Pipeline, freeze_detector: bool, freeze_lifter: bool):
        super().__init__(detector.skeleton)
        self.detector, self.lifting = detector, lifting
        self.frozen = tuple(part for part, frozen in (("detector", freeze_detector), ("lifting", freeze_lifter))
                            if frozen)
        for name in self.frozen:
            getattr(self, name).requires_grad_(False)

    @classmethod
    def from_config(cls, cfg) -> "DetectAndLiftPipeline":
        """MODEL.BACKBONE (+ MODEL.FUSION) and MODEL.LIFTER; their weights (MODEL.BACKBONE.WEIGHTS,
        MODEL.LIFTER.WEIGHTS) are loaded by the engine."""
        m = cfg.MODEL
        lifter_cls = LIFTERS.get(m.LIFTER.NAME)
        if not getattr(lifter_cls, "single_view", False) or lifter_cls.inputs not in ("standardised", "screen") or \
                cfg.DATASETS.FRAMES != 1:
            raise PipelineConfigError(f"an image pipeline's 2D is lifted one frame and one view at a time: "
                                      f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' must be a single-view lifter trained with "
                                      "3D (linear, lcn, semgcn, poseformer with DATASETS.FRAMES 1)")
        single_view = cfg.clone()  # the lifter sees one view at a time
        single_view.defrost()
        single_view.DATASETS.VIEWS, single_view.DATASETS.TRAIN_VIEWS = "single", ""
        lifting = keypoint_lifting(single_view)
        if m.HEAD.LOSS_3D_WEIGHT > 0:
            raise PipelineConfigError("MODEL.HEAD.LOSS_3D_WEIGHT trains a triangulation head; with MODEL.LIFTER the "
                                      "3D loss is the lifter's: set it to 0")
        return cls(detector=ImagePipeline.from_config(cfg), lifting=lifting, freeze_detector=m.BACKBONE.FREEZE,
                   freeze_lifter=m.LIFTER.FREEZE)

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and "detector" not in self.frozen):
            detected = self.detector.detect(batch)
        pixels = crop_to_image_pixels(detected["pred_2d"], batch["cameras"], batch["image_cameras"])  # B, V, J, 2
        b, v = pixels.shape[:2]
        views = {"keypoints_2d": pixels.reshape(b * v, 1, 1, *pixels.shape[2:]),
                 "cameras": batch["image_cameras"].reshape(b * v, 1)}
        lifted = self.lifting(views)
        rotations = views["cameras"].R[:, 0].to(lifted["pred_3d"].dtype)          # world -> camera
        world = (lifted["pred_3d"] @ rotations).view(b, v, *lifted["pred_3d"].shape[1:])
        return {"pred_3d": world.mean(1), "lifting_outputs": lifted, "lifting_batch": views, **detected}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        """``target_3d``: the target frame's root-relative world 3D (mm); ``target_2d``: the detector's."""
        return {**self.detector.targets(batch),
                "target_3d": centre_frame(root_relative_world_targets(batch, self.skeleton.root))}

    def losses(self, outputs, batch):
        losses = {}
        if "detector" not in self.frozen:
            losses.update(self.detector.losses(outputs, batch))
        if "lifting" not in self.frozen:
            views = outputs["lifting_batch"]                  # each view a sample, with the target frame's 3D
            truth = centre_frame(batch["keypoints_3d"])[:, None].repeat_interleave(batch["cameras"].batch_shape[1], 0)
            lifting = self.lifting.losses(outputs["lifting_outputs"], {**views, "keypoints_3d": truth})
            losses.update({f"lifter_{k}": v for k, v in lifting.items()})
        return losses
