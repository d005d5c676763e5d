"""The score-map lifting pipeline: each view's 2D keypoints -> Gaussian score maps of a square crop around them ->
a score-map lifter (Zimmermann & Brox 2017: ``scoremap_direct``, ``scoremap_canonical``) -> the pose over a bone
length -> root-relative 3D (``modeling.pipelines.normalised_lifting``)."""
from typing import Dict

import torch
from torch import Tensor, nn

from core.registry import PIPELINES
from core.sample_schema import centre_frame
from core.skeleton import H36M17, Skeleton, skeleton_of
from modeling.losses.heatmap import gaussian_heatmaps
from modeling.pipelines.base import PipelineConfigError
from modeling.pipelines.lifter_config import build_lifter
from modeling.pipelines.normalised_lifting import NormalisedLiftingPipeline


def crop_scoremaps(keypoints_2d: Tensor, confidence: Tensor, size: int, sigma: float, crop_scale: float) -> Tensor:
    """(..., J, 2) pixels and (..., J) confidences -> (..., J, size, size) Gaussian score maps (peak 1, std ``sigma``
    map pixels) of the square crop of side ``crop_scale`` x the larger side of the box of the joints with a
    confidence above 0, centred on that box (all joints where none has one); a joint of confidence 0 has a zero
    map."""
    known = confidence > 0
    known = torch.where(known.any(-1, keepdim=True), known, torch.ones_like(known))[..., None]
    inf = torch.tensor(float("inf"), dtype=keypoints_2d.dtype, device=keypoints_2d.device)
    low = torch.where(known, keypoints_2d, inf).amin(-2, keepdim=True)
    high = torch.where(known, keypoints_2d, -inf).amax(-2, keepdim=True)
    side = ((high - low).amax(-1, keepdim=True) * crop_scale).clamp_min(1e-3)
    pixels = (keypoints_2d - (low + high) / 2) * (size / side) + (size / 2 - 0.5)
    return gaussian_heatmaps(pixels, confidence, (size, size), sigma)


@PIPELINES.register("scoremap_lifting")
class ScoremapLiftingPipeline(NormalisedLiftingPipeline):
    """Lifting of Gaussian score maps drawn from each view's input 2D (Zimmermann & Brox, ICCV 2017; Epipolar
    Transformers' ``lifting_direct`` / ``lifting_rot`` tasks).

    The maps of each view cover a square crop around its 2D (``crop_scoremaps``): ``lifter.scoremap_size`` pixels a
    side, Gaussians of std ``sigma`` map pixels, one map per joint, zero for a joint of confidence 0 (the
    references draw the visible joints). Lifting, scale and losses: ``NormalisedLiftingPipeline``.

    Deviations: the references draw the maps from the true 2D of the crops that their data sets cut (RHD: centred
    on the middle finger's knuckle, twice its largest distance to a visible joint; Human3.6M: the H36M-Toolbox box);
    here they are drawn from the 2D input in a box that the input itself gives, so detected 2D is lifted the same
    way. Epipolar Transformers' maps are floored at 0.01 away from the joints (hand3d's, as here, fall to 0).
    """

    parts = "MODEL.LIFTER.NAME {lifters} (score maps), with MODEL.BACKBONE.NAME and MODEL.REFINER.NAME none"

    def __init__(self, lifter: nn.Module, skeleton: Skeleton = H36M17, scale: str = "truth", sigma: float = 2.0,
                 crop_scale: float = 1.25):
        super().__init__(lifter, skeleton, scale)
        if not (sigma > 0 and crop_scale >= 1):
            raise PipelineConfigError(f"MODEL.LIFTER.SCOREMAP_SIGMA must be > 0 and MODEL.LIFTER.SCOREMAP_CROP_SCALE "
                                      f">= 1 (the crop holds the 2D), got {sigma} and {crop_scale}")
        self.sigma, self.crop_scale = sigma, crop_scale

    @classmethod
    def from_config(cls, cfg) -> "ScoremapLiftingPipeline":
        lf, skeleton = cfg.MODEL.LIFTER, skeleton_of(cfg)
        if cfg.DATASETS.MODE != "keypoints" or cfg.DATASETS.FRAMES != 1:
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{lf.NAME}' lifts the score maps of single frames of 2D "
                                      "keypoints: set DATASETS.MODE keypoints and DATASETS.FRAMES 1")
        return cls(lifter=build_lifter(cfg, num_joints=skeleton.num_joints), skeleton=skeleton, scale=lf.SCALE,
                   sigma=lf.SCOREMAP_SIGMA, crop_scale=lf.SCOREMAP_CROP_SCALE)

    def scoremaps(self, batch) -> Tensor:
        """(B, V, J, S, S) the score maps of the target frame's input 2D of every view."""
        keypoints_2d = centre_frame(batch["keypoints_2d"]).float()
        return crop_scoremaps(keypoints_2d, centre_frame(batch["confidence_2d"]), self.lifter.scoremap_size,
                              self.sigma, self.crop_scale)

    def _lift(self, batch) -> Dict[str, Tensor]:
        maps = self.scoremaps(batch)
        outputs = self.lifter(maps.flatten(0, 1))
        return {key: value.unflatten(0, maps.shape[:2]) for key, value in outputs.items()}
