"""Learnable algebraic triangulation (Iskakov et al., "Learnable Triangulation of Human Pose", ICCV 2019).

Per view, the soft-argmax 2D keypoints of the heatmaps (``softmax(beta * heatmap)``, their
``heatmap_multiplier`` = 100; decoded by the image pipeline, ``MODEL.BACKBONE.DECODE soft_argmax``, and given to
the head in the pixels of its cameras like every head's 2D); a confidence branch on the backbone features (their
``GlobalAveragePoolingHead``: two [3x3 conv, batch norm, 2x2 max pool, ReLU] blocks with 512 and 256
channels, a spatial mean, an MLP 256-512-256-J with ReLUs and a sigmoid) gives per-view per-joint
confidences; these are normalised over the views (``c / sum_v c + 1e-5``) and weight each view's
two DLT rows. The DLT is ``core.geometry.triangulation.triangulate_cameras`` (with undistortion), so
the whole head is differentiable and a 3D loss trains the confidence branch and the backbone.

Deviations from the reference code: the 2D and the cameras share one pixel frame (the image pipeline maps the
heatmap pixels into the crop with their half-pixel offset, ``heatmap_to_image``; the reference multiplies by image
/ heatmap size, which ignores that offset); lens distortion
is handled; views whose raw confidence is below ``min_confidence`` are dropped (weight 0, not even
the 1e-5) and the normalisation runs over the remaining views; joints with fewer than 2 usable
views come out as NaN with ``valid`` False instead of an SVD failure; the confidence branch's max pools
round up (``ceil_mode``), so that odd feature maps pool too (3 x 3 from 96 px crops: 3 -> 2 -> 1; the reference's
8 x 8 from 256 px pools exactly as there).
"""
from typing import Optional

import torch
from torch import Tensor, nn

from core.geometry.cameras import Cameras
from core.geometry.triangulation import triangulate_cameras
from core.registry import HEADS
from modeling.heads.result import HeadResult

_WEIGHT_EPS = 1e-5  # added to the normalised confidences of the kept views (as in the reference)


class ConfidenceHead(nn.Module):
    """Backbone features (N, C, h, w), h, w >= 1 -> per-joint confidences (N, J) in (0, 1)."""

    def __init__(self, in_channels: int, num_joints: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 512, 3, padding=1), nn.BatchNorm2d(512), nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(inplace=True), nn.Conv2d(512, 256, 3, padding=1), nn.BatchNorm2d(256), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(nn.Linear(256, 512), nn.ReLU(inplace=True), nn.Linear(512, 256),
                                 nn.ReLU(inplace=True), nn.Linear(256, num_joints), nn.Sigmoid())

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(self.features(features).mean(dim=(-2, -1)))


@HEADS.register("algebraic")
class AlgebraicTriangulationHead(nn.Module):
    def __init__(self, num_joints: int, in_channels: int, use_confidences: bool = True, min_confidence: float = 0.0):
        super().__init__()
        for name, value in (("num_joints", num_joints), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        self.num_joints = num_joints
        self.in_channels = in_channels
        self.min_confidence = min_confidence
        self.confidence_head = ConfidenceHead(in_channels, num_joints) if use_confidences else None

    def forward(self, keypoints_2d: Tensor, confidence: Tensor, cameras: Cameras,
                features: Optional[Tensor] = None) -> HeadResult:
        """keypoints_2d (B, V, J, 2) distorted pixels of ``cameras`` (B, V), differentiable (soft-argmax);
        ``confidence`` (B, V, J) is not used: the branch learns its own from ``features`` (B, V, C, h', w'), the
        backbone's (not needed without the branch, where every view weighs 1). The result's ``confidence`` is
        the learnt one, its ``weights`` the view-normalised DLT row weights."""
        if not isinstance(keypoints_2d, Tensor) or keypoints_2d.dim() != 4 or \
                tuple(keypoints_2d.shape[2:]) != (self.num_joints, 2):
            raise ValueError(f"keypoints_2d must have shape (B, V, {self.num_joints}, 2), got "
                             f"{tuple(keypoints_2d.shape) if isinstance(keypoints_2d, Tensor) else type(keypoints_2d).__name__}")
        batch, views = keypoints_2d.shape[:2]
        if tuple(cameras.batch_shape) != (batch, views):
            raise ValueError(f"cameras must have batch shape ({batch}, {views}) like keypoints_2d, got "
                             f"{tuple(cameras.batch_shape)}")
        if self.confidence_head is None:
            confidences = torch.ones_like(keypoints_2d[..., 0])
        else:
            if (not isinstance(features, Tensor) or features.dim() != 5 or features.shape[:2] != (batch, views)
                    or features.shape[2] != self.in_channels or min(features.shape[-2:]) < 1):
                raise ValueError(f"features must have shape ({batch}, {views}, {self.in_channels}, h', w') with "
                                 f"h', w' >= 1, got {tuple(features.shape) if isinstance(features, Tensor) else features!r}")
            confidences = self.confidence_head(features.flatten(0, 1)).unflatten(0, (batch, views))

        keep = confidences >= self.min_confidence
        kept = torch.where(keep, confidences, torch.zeros_like(confidences))
        weights = kept / kept.sum(dim=1, keepdim=True).clamp(min=torch.finfo(kept.dtype).tiny) + _WEIGHT_EPS * keep
        result = triangulate_cameras(cameras, keypoints_2d.to(cameras.dtype), weights.to(cameras.dtype))
        return HeadResult(result.points_3d, result.valid, result.num_views, weights, confidences)
