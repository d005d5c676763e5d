"""Gaussian heatmap targets and the visibility-weighted heatmap MSE of Simple Baselines (Xiao et al. 2018).

Pixel convention (as everywhere in EpiPose): integer pixel coordinates are pixel centres. Heatmap
pixel (row i, column j) has its centre at (x, y) = (j, i) in heatmap coordinates, and a crop of
stride ``s`` maps to its heatmap by ``x_heat = (x_img + 0.5) / s - 0.5`` (the same for y), so that
the heatmap covers the crop edge to edge (``modeling.heads.decoding.image_to_heatmap`` and its inverse).

Targets are unnormalised Gaussians ``exp(-((x - x_j)^2 + (y - y_j)^2) / (2 sigma^2))`` (peak 1 at the
joint). The loss is the reference ``JointsMSELoss`` with ``use_target_weight``: the predicted and
target heatmaps are both multiplied by the joint's weight, and the loss is
``0.5 * mean over joints of mean over (samples, pixels) of (w * (pred - target))^2``.

Deviations from the reference code (microsoft/human-pose-estimation.pytorch): the Gaussian is centred
at the exact sub-pixel joint position (the reference rounds it to the nearest heatmap pixel) and
evaluated on the whole map (the reference cuts it at 3 sigma); a joint whose centre lies outside
the heatmap gets a zero map and weight 0 (the reference still draws the part of the 3-sigma window
that falls inside the map).
"""
from typing import Tuple

import torch
from torch import Tensor, nn

from core.registry import LOSSES
from modeling.heads.decoding import image_to_heatmap


def joints_in_map(keypoints_px: Tensor, size: Tuple[int, int]) -> Tensor:
    """(..., J) bool: the joint (heatmap pixels, (..., J, 2)) lies on the (h, w) map, edges included.

    Non-finite coordinates are outside.
    """
    height, width = size
    x, y = keypoints_px.unbind(-1)
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def gaussian_heatmaps(keypoints_px: Tensor, visibility: Tensor, size: Tuple[int, int], sigma: float) -> Tensor:
    """Gaussian target heatmaps (..., J, h, w), peak 1 at each joint; zero maps for invisible or off-map joints.

    keypoints_px: (..., J, 2) joint positions (x, y) in heatmap pixels (see ``image_to_heatmap``);
    visibility: (..., J), a joint is drawn where it is > 0 (its coordinates are ignored elsewhere and may
    be NaN); size: (h, w) of the heatmaps; sigma: Gaussian standard deviation in heatmap pixels.
    """
    height, width = size
    if keypoints_px.dim() < 2 or keypoints_px.shape[-1] != 2:
        raise ValueError(f"gaussian_heatmaps: keypoints_px must be (..., J, 2), got {tuple(keypoints_px.shape)}")
    if visibility.shape != keypoints_px.shape[:-1]:
        raise ValueError(f"gaussian_heatmaps: visibility must be {tuple(keypoints_px.shape[:-1])} to match "
                         f"keypoints_px {tuple(keypoints_px.shape)}, got {tuple(visibility.shape)}")
    if height < 1 or width < 1 or not sigma > 0:
        raise ValueError(f"gaussian_heatmaps: size must be positive and sigma > 0, got size {size}, sigma {sigma}")
    visible = visibility > 0
    if not torch.isfinite(keypoints_px[visible]).all():
        raise ValueError("gaussian_heatmaps: visible joints (visibility > 0) have non-finite keypoints_px")
    drawn = visible & joints_in_map(keypoints_px, size)
    centres = torch.where(drawn.unsqueeze(-1), keypoints_px, torch.zeros_like(keypoints_px))
    dtype = centres.dtype if centres.is_floating_point() else torch.get_default_dtype()
    xs = torch.arange(width, dtype=dtype, device=centres.device)
    ys = torch.arange(height, dtype=dtype, device=centres.device)
    # The 2D Gaussian is separable: (..., J, 1, w) * (..., J, h, 1).
    gauss_x = torch.exp(-(xs - centres[..., 0:1]) ** 2 / (2 * sigma ** 2))
    gauss_y = torch.exp(-(ys - centres[..., 1:2]) ** 2 / (2 * sigma ** 2)) * drawn.unsqueeze(-1)
    return gauss_y.unsqueeze(-1) * gauss_x.unsqueeze(-2)


def weighted_heatmap_mse(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """SimpleBaseline's JointsMSELoss: ``0.5 * mean((w * pred - w * target)^2)`` over (..., J, h, w).

    pred, target: (..., J, h, w); weight: (..., J). Averaging over every element equals the reference's
    mean over joints of the per-joint mean over samples and pixels.
    """
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(f"weighted_heatmap_mse: pred and target must both be (..., J, h, w), "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")
    if weight.shape != pred.shape[:-2]:
        raise ValueError(f"weighted_heatmap_mse: weight must be {tuple(pred.shape[:-2])}, got {tuple(weight.shape)}")
    w = weight.to(pred.dtype)[..., None, None]
    return 0.5 * ((w * (pred - target)) ** 2).mean()


@LOSSES.register("heatmap_mse")
class HeatmapMSELoss(nn.Module):
    """Visibility-weighted heatmap MSE against Gaussian targets drawn from crop-pixel keypoints.

    sigma: Gaussian standard deviation in heatmap pixels (2 for 64x64 heatmaps in the reference);
    stride: the crop-to-heatmap output stride of the backbone (4 for SimpleBaseline).
    """

    def __init__(self, sigma: float = 2.0, stride: int = 4):
        super().__init__()
        if not sigma > 0 or not stride > 0:
            raise ValueError(f"HeatmapMSELoss: sigma and stride must be positive, got {sigma} and {stride}")
        self.sigma = sigma
        self.stride = stride

    def targets(self, keypoints_px: Tensor, visibility: Tensor, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Crop-pixel keypoints (..., J, 2) and visibility (..., J) -> (target heatmaps (..., J, h, w),
        weights (..., J): the visibility where the joint is on the map, else 0)."""
        keypoints_heat = image_to_heatmap(keypoints_px, self.stride)
        heatmaps = gaussian_heatmaps(keypoints_heat, visibility, size, self.sigma)
        weights = torch.where(joints_in_map(keypoints_heat, size), visibility.to(heatmaps.dtype),
                              torch.zeros((), dtype=heatmaps.dtype, device=heatmaps.device))
        return heatmaps, weights

    def forward(self, pred_heatmaps: Tensor, keypoints_px: Tensor, visibility: Tensor) -> Tensor:
        """pred_heatmaps (..., J, h, w); keypoints_px (..., J, 2) crop pixels; visibility (..., J) -> scalar loss."""
        if pred_heatmaps.dim() < 3 or pred_heatmaps.shape[:-2] != keypoints_px.shape[:-1]:
            raise ValueError(f"HeatmapMSELoss: pred_heatmaps (..., J, h, w) {tuple(pred_heatmaps.shape)} does not "
                             f"match keypoints_px (..., J, 2) {tuple(keypoints_px.shape)}")
        targets, weights = self.targets(keypoints_px.to(pred_heatmaps.dtype), visibility,
                                        tuple(pred_heatmaps.shape[-2:]))
        return weighted_heatmap_mse(pred_heatmaps, targets, weights)
