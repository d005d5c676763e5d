"""Algebraic triangulation head: the DLT of every view's 2D keypoints (``core.geometry``).

Optionally weights each view's equations by the 2D confidence (the "algebraic" triangulation of
Iskakov et al., ICCV 2019, with detector scores as weights) and drops views whose confidence is below
``min_confidence``. Joints left with fewer than two usable views come out as NaN with ``valid``
False; the metrics count them.
"""
import torch
from torch import nn

from core.geometry.cameras import Cameras
from core.geometry.triangulation import Triangulation, triangulate_cameras
from core.registry import HEADS


@HEADS.register("dlt")
class DLTHead(nn.Module):
    def __init__(self, confidence_weighted: bool = False, min_confidence: float = 0.0):
        super().__init__()
        self.confidence_weighted = confidence_weighted
        self.min_confidence = min_confidence

    def forward(self, keypoints_2d: torch.Tensor, confidence: torch.Tensor, cameras: Cameras) -> Triangulation:
        """keypoints_2d (B,V,J,2) distorted pixels of ``cameras`` (B,V); confidence (B,V,J) -> (B,J,3) mm."""
        weights = confidence if self.confidence_weighted else torch.ones_like(confidence)
        weights = torch.where(confidence >= self.min_confidence, weights, torch.zeros_like(weights))
        return triangulate_cameras(cameras, keypoints_2d.to(cameras.dtype), weights.to(cameras.dtype))
