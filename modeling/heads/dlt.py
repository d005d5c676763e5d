"""Algebraic triangulation head: the DLT of every view's 2D keypoints (``core.geometry``).

Optionally weights each view's equations by the 2D confidence (the "algebraic" triangulation of
Iskakov et al., ICCV 2019, with detector scores as weights) and drops views whose confidence is below
``min_confidence``, lowering that threshold per joint in steps of ``fallback_step`` until two views
pass when it is > 0 (``modeling.heads.views``; unweighted with 0.05 and 0.05 it is Epipolar
Transformers' ``pymvg`` protocol). With ``undistort`` False the 2D is triangulated through the cameras'
pinhole part, lens distortion ignored, as the reference's pymvg cameras (which carry no distortion). Joints
left with fewer than two usable views come out as NaN with ``valid`` False; the metrics count them.
"""
import torch
from torch import nn

from core.geometry.cameras import Cameras
from core.geometry.triangulation import triangulate_cameras
from core.registry import HEADS
from modeling.heads.result import HeadResult
from modeling.heads.views import check_fallback_step, view_weights


@HEADS.register("dlt")
class DLTHead(nn.Module):
    def __init__(self, confidence_weighted: bool = False, min_confidence: float = 0.0, fallback_step: float = 0.0,
                 undistort: bool = True):
        super().__init__()
        check_fallback_step(fallback_step)
        self.confidence_weighted = confidence_weighted
        self.min_confidence, self.fallback_step, self.undistort = min_confidence, fallback_step, undistort

    def forward(self, keypoints_2d: torch.Tensor, confidence: torch.Tensor, cameras: Cameras,
                features: torch.Tensor = None) -> HeadResult:
        """keypoints_2d (B,V,J,2) distorted pixels of ``cameras`` (B,V); confidence (B,V,J) -> (B,J,3) mm
        (``features``, the image backbone's, are not used)."""
        weights = view_weights(confidence, self.confidence_weighted, self.min_confidence, self.fallback_step)
        cameras = cameras if self.undistort else cameras.pinhole()
        result = triangulate_cameras(cameras, keypoints_2d.to(cameras.dtype), weights.to(cameras.dtype))
        used = result.valid.unsqueeze(1) & torch.isfinite(keypoints_2d).all(-1)
        return HeadResult(result.points_3d, result.valid, result.num_views,
                          torch.where(used, weights, torch.zeros_like(weights)), confidence)
