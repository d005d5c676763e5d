"""Heatmap -> 2D keypoint decoding: argmax with sub-pixel refinement, windowed centre of mass, soft-argmax, stride
conversion.

All functions are pure, vectorised and batched over any leading shape: heatmaps are (..., J, h, w)
and coordinates (..., J, 2) in heatmap pixels ``(x, y)``, pixel ``(i, j)`` of the heatmap having its
centre at ``x = j, y = i``.

- ``argmax_decode``: the maximum pixel plus a sub-pixel step, chosen by ``refinement``:
  ``"quarter"`` (default): the quarter-pixel shift towards the higher neighbour of SimpleBaseline /
  HRNet's ``get_final_preds`` (Xiao et al. ECCV 2018);
  ``"taylor"``: the second-order Taylor step on the log-heatmap of DARK (Zhang et al. CVPR 2020),
  exact for Gaussian heatmaps; ``"none"``. Confidence = the peak value.
  Deviations: each axis is refined whenever both of its neighbours exist (the reference needs
  ``1 < px < w - 1`` and ``1 < py < h - 1`` for both axes); the Taylor step uses 3-point central
  differences without DARK's Gaussian pre-blur, and is skipped (no shift) where the log-heatmap is
  not concave at the peak or the step would leave the peak's pixel neighbourhood (> 1 px).
- ``centre_of_mass_decode``: Epipolar Transformers' decoding (``find_tensor_peak_batch`` in its
  ``modeling/backbones/basic_batch.py``): the argmax, then the centre of mass of the (2r + 1)^2 heatmap
  pixels around it, values at or below 1e-6 (negative ones included) and pixels outside the heatmap
  counting as zero; r is its ``KEYPOINT.SIGMA`` used as a radius in heatmap pixels (8 for its 64 x 64
  heatmaps). Confidence = the peak value. Deviation: r must be a whole number of pixels (every reference
  config uses 8 or 12); the reference resamples the window bilinearly at spacing r / round(r), which
  for whole r reads exactly the pixels used here with the ``align_corners=True`` grids of the PyTorch
  it was written for (<= 1.2; later defaults would shift its window off the pixels).
- ``soft_argmax``: integral regression (Sun et al. ECCV 2018), as learnable triangulation's
  ``integrate_tensor_2d``: the expectation of the pixel coordinates under ``softmax(beta * heatmap)``
  over all h * w pixels; differentiable. Confidence = the peak value of the heatmap (differentiable).
- ``heatmap_to_image`` / ``image_to_heatmap``: pixel-centre convention
  ``x_img = (x_heat + 0.5) * stride - 0.5`` (as ``Cameras.for_feature_map`` folds into K) (a heatmap pixel covers ``stride`` image pixels and its
  centre is theirs; the convention of ``align_corners=False`` resampling). SimpleBaseline's
  ``transform_preds`` uses ``x_img = x_heat * stride`` instead (a shift of ``(stride - 1) / 2`` px).

A heatmap with a non-finite value decodes to NaN coordinates (and a NaN confidence), never to a
silently wrong pixel.
"""
from typing import Tuple, Union

import torch
from torch import Tensor

from core.geometry.projection import check_shape

REFINEMENTS = ("quarter", "taylor", "none")
_LOG_EPS = 1e-10  # heatmap values are clamped to this before the log of the Taylor step
_MASS_THRESHOLD = 1e-6  # centre of mass: values at or below this weigh nothing (the reference's F.threshold)


def _check_heatmaps(heatmaps: Tensor) -> None:
    check_shape(heatmaps, (-1, -1, -1), "heatmaps")
    if heatmaps.shape[-1] < 1 or heatmaps.shape[-2] < 1:
        raise ValueError(f"heatmaps must have shape (..., J, h, w) with h, w >= 1, got {tuple(heatmaps.shape)}")
    if not heatmaps.is_floating_point():
        raise TypeError(f"heatmaps must be a floating-point tensor, got {heatmaps.dtype}")


def argmax_decode(heatmaps: Tensor, refinement: str = "quarter") -> Tuple[Tensor, Tensor]:
    """heatmaps (..., J, h, w) -> (coords (..., J, 2) heatmap pixels x, y; confidence (..., J) peak value)."""
    _check_heatmaps(heatmaps)
    if refinement not in REFINEMENTS:
        raise ValueError(f"refinement must be one of {REFINEMENTS}, got {refinement!r}")
    height, width = heatmaps.shape[-2:]
    flat = heatmaps.flatten(-2)
    confidence, index = flat.max(dim=-1)
    x, y = index % width, index // width
    coords = torch.stack([x, y], dim=-1).to(heatmaps.dtype)

    if refinement != "none":
        offsets = torch.arange(-1, 2, device=heatmaps.device)  # the 3x3 neighbourhood, row-major
        dy, dx = offsets.repeat_interleave(3), offsets.repeat(3)
        nx = (x.unsqueeze(-1) + dx).clamp(0, width - 1)
        ny = (y.unsqueeze(-1) + dy).clamp(0, height - 1)
        v = flat.gather(-1, ny * width + nx)  # (..., J, 9): the 3x3 neighbourhood, row-major
        inside_x = (x >= 1) & (x <= width - 2)
        inside_y = (y >= 1) & (y <= height - 2)
        if refinement == "quarter":
            step = 0.25 * torch.stack([torch.sign(v[..., 5] - v[..., 3]) * inside_x,
                                       torch.sign(v[..., 7] - v[..., 1]) * inside_y], dim=-1)
        else:
            log_v = v.clamp(min=_LOG_EPS).log()
            gx, gy = 0.5 * (log_v[..., 5] - log_v[..., 3]), 0.5 * (log_v[..., 7] - log_v[..., 1])
            hxx = log_v[..., 5] - 2 * log_v[..., 4] + log_v[..., 3]
            hyy = log_v[..., 7] - 2 * log_v[..., 4] + log_v[..., 1]
            hxy = 0.25 * (log_v[..., 8] - log_v[..., 6] - log_v[..., 2] + log_v[..., 0])
            det = hxx * hyy - hxy * hxy
            concave = (det > 0) & (hxx < 0) & inside_x & inside_y
            safe_det = torch.where(concave, det, torch.ones_like(det))
            step = torch.stack([-(hyy * gx - hxy * gy), -(hxx * gy - hxy * gx)], dim=-1) / safe_det.unsqueeze(-1)
            ok = concave & (step.abs() <= 1.0).all(-1)
            step = torch.where(ok.unsqueeze(-1), step, torch.zeros_like(step))
        coords = coords + step
    finite = torch.isfinite(confidence).unsqueeze(-1)
    coords = torch.where(finite, coords, torch.full_like(coords, float("nan")))
    return coords, confidence


def centre_of_mass_decode(heatmaps: Tensor, radius: int = 8) -> Tuple[Tensor, Tensor]:
    """heatmaps (..., J, h, w) -> (coords (..., J, 2) heatmap pixels x, y; confidence (..., J) peak value).

    ``coords`` is the argmax pixel shifted by the centre of mass of the window of ``radius`` pixels
    around it (see the module docstring); a window without mass gives the argmax itself."""
    _check_heatmaps(heatmaps)
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ValueError(f"radius must be a positive whole number of heatmap pixels, got {radius!r}")
    height, width = heatmaps.shape[-2:]
    flat = heatmaps.flatten(-2)
    confidence, index = flat.max(dim=-1)
    peak = torch.stack([index % width, index // width], dim=-1)                           # (..., J, 2)
    offsets = torch.arange(-radius, radius + 1, device=heatmaps.device)
    x = peak[..., 0, None] + offsets                                                     # (..., J, n)
    y = peak[..., 1, None] + offsets
    inside = ((x >= 0) & (x < width)).unsqueeze(-2) & ((y >= 0) & (y < height)).unsqueeze(-1)   # (..., J, n, n)
    pixels = y.clamp(0, height - 1).unsqueeze(-1) * width + x.clamp(0, width - 1).unsqueeze(-2)
    window = flat.gather(-1, pixels.flatten(-2)).unflatten(-1, pixels.shape[-2:])
    mass = torch.where(inside & (window > _MASS_THRESHOLD), window, torch.zeros_like(window))
    total = mass.sum((-2, -1))
    steps = offsets.to(heatmaps.dtype)
    shift = torch.stack([(mass.sum(-2) * steps).sum(-1), (mass.sum(-1) * steps).sum(-1)], dim=-1)
    shift = shift / total.clamp(min=torch.finfo(heatmaps.dtype).tiny).unsqueeze(-1)
    coords = peak.to(heatmaps.dtype) + shift
    finite = torch.isfinite(confidence).unsqueeze(-1)
    coords = torch.where(finite, coords, torch.full_like(coords, float("nan")))
    return coords, confidence


def soft_argmax(heatmaps: Tensor, beta: Union[float, Tensor] = 100.0) -> Tuple[Tensor, Tensor]:
    """heatmaps (..., J, h, w) -> (coords (..., J, 2) heatmap pixels x, y; confidence (..., J) peak value).

    ``coords`` is the expectation of the pixel coordinates under ``softmax(beta * heatmap)`` over the
    h * w pixels. ``beta`` (learnable triangulation's ``heatmap_multiplier``, 100 in its configs)
    must be positive; a larger beta approaches the (unrefined) argmax, a smaller one is pulled
    towards the heatmap centre by the background.
    """
    _check_heatmaps(heatmaps)
    if isinstance(beta, Tensor):
        if beta.numel() != 1:
            raise ValueError(f"beta must be a scalar, got a tensor of shape {tuple(beta.shape)}")
    elif not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and 0 < beta < float("inf")):
        raise ValueError(f"beta must be a positive finite number, got {beta!r}")
    height, width = heatmaps.shape[-2:]
    flat = heatmaps.flatten(-2)
    probabilities = torch.softmax(beta * flat, dim=-1).unflatten(-1, (height, width))
    xs = torch.arange(width, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = torch.arange(height, dtype=heatmaps.dtype, device=heatmaps.device)
    x = (probabilities.sum(-2) * xs).sum(-1)
    y = (probabilities.sum(-1) * ys).sum(-1)
    return torch.stack([x, y], dim=-1), flat.amax(dim=-1)


def _stride_tensor(stride, like: Tensor) -> Tensor:
    """``stride`` (a number, (sx, sy) or a tensor broadcasting to (..., 2)) as a tensor like ``like``."""
    stride = torch.as_tensor(stride, dtype=like.dtype, device=like.device)
    if stride.dim() == 0:
        stride = stride.expand(2)
    if stride.shape[-1] != 2 or not (torch.isfinite(stride).all() and (stride > 0).all()):
        raise ValueError(f"stride must be a positive number or (sx, sy) pairs, got {stride.tolist()}")
    return stride


def heatmap_to_image(coords_heatmap: Tensor, stride) -> Tensor:
    """(..., 2) heatmap pixels -> image pixels: ``(x + 0.5) * stride - 0.5``; stride a number or (sx, sy)."""
    check_shape(coords_heatmap, (2,), "coords_heatmap")
    return (coords_heatmap + 0.5) * _stride_tensor(stride, coords_heatmap) - 0.5


def image_to_heatmap(coords_image: Tensor, stride) -> Tensor:
    """(..., 2) image pixels -> heatmap pixels: ``(x + 0.5) / stride - 0.5``, inverse of ``heatmap_to_image``."""
    check_shape(coords_image, (2,), "coords_image")
    return (coords_image + 0.5) / _stride_tensor(stride, coords_image) - 0.5
