"""Temporal smoothing of keypoint trajectories with gaps."""
import torch
from torch import Tensor


def smooth_trajectories(points: Tensor, sigma_frames: float) -> Tensor:
    """(T, ..., C) trajectories (NaN = missing) -> the same, each coordinate replaced by its Gaussian-weighted
    mean over the frames within 3 sigma where it is known (normalised convolution, so gaps and the ends are
    not pulled towards zero); entries missing before stay missing. ``sigma_frames`` <= 0 returns a copy."""
    if sigma_frames <= 0:
        return points.clone()
    radius = max(1, int(round(3 * sigma_frames)))
    offsets = torch.arange(-radius, radius + 1, dtype=points.dtype, device=points.device)
    kernel = torch.exp(-0.5 * (offsets / sigma_frames) ** 2).view(1, 1, -1)
    known = torch.isfinite(points)
    series = points.reshape(len(points), -1).T.unsqueeze(1)                            # S, 1, T
    mask = known.reshape(len(points), -1).T.unsqueeze(1).to(points.dtype)
    values = torch.nn.functional.conv1d(torch.where(mask > 0, series, 0.0), kernel, padding=radius)
    weights = torch.nn.functional.conv1d(mask, kernel, padding=radius)
    smoothed = (values / weights.clamp_min(1e-12)).squeeze(1).T.reshape(points.shape)
    return torch.where(known, smoothed, points)
