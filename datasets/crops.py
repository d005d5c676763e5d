"""Square person crops as pixel affines, and the crop step shared by every image dataset.

A crop maps a square of side ``side`` around ``centre`` (original image pixels) to an S x S image,
optionally zoomed and rotated about its centre (SimpleBaseline's augmentation):
``x_crop = S/2 + (S / side) zoom R(rotation) (x - centre)``. Datasets fold the affine into each view's K
(``Cameras.with_affine``), so projections and epipolar geometry in the crop stay exact, and warp real
images with the same matrix (``cv2.warpAffine``): ``cut_crops`` does both. ``joints_box`` is the square around
a person's 2D joints (those with coordinates: a joint without truth is NaN), ``inside_crop`` which points a crop
holds, and ``read_rgb`` reads an image or names the file that it cannot read.
"""
from pathlib import Path
from typing import Iterable, Tuple

import cv2
import numpy as np
import torch
from torch import Tensor

from core.geometry.cameras import Cameras
from datasets import DatasetError


def square_crop_affines(centre: Tensor, side: Tensor, size: int, zoom=None, rotation_deg=None) -> Tensor:
    """(V, 2, 3) float64 affines from image pixels to crop pixels.

    centre (V, 2) and side (V,) in image pixels; ``zoom`` (V,) multiplies the scale (> 1 zooms in);
    ``rotation_deg`` (V,) rotates the content counter-clockwise in the image's y-down pixels.
    """
    centre = torch.as_tensor(centre, dtype=torch.float64)
    side = torch.as_tensor(side, dtype=torch.float64)
    if centre.dim() != 2 or centre.shape[-1] != 2 or side.shape != centre.shape[:1]:
        raise ValueError(f"square_crop_affines: centre must be (V, 2) and side (V,), got {tuple(centre.shape)} "
                         f"and {tuple(side.shape)}")
    if not bool(torch.isfinite(centre).all() & torch.isfinite(side).all() & (side > 0).all()):
        raise ValueError("square_crop_affines: crop centres must be finite and sides positive")
    scale = size / side
    if zoom is not None:
        scale = scale * torch.as_tensor(zoom, dtype=torch.float64)
    angle = torch.deg2rad(torch.as_tensor(0.0 if rotation_deg is None else rotation_deg, dtype=torch.float64))
    angle = angle.expand_as(scale)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)       # (V, 2, 2)
    shift = size / 2 - (linear @ centre.unsqueeze(-1)).squeeze(-1)
    return torch.cat([linear, shift.unsqueeze(-1)], -1)


def random_zoom_rotation(num_views: int, scale_factor: float, rotation_factor: float):
    """Per-view zoom and rotation as SimpleBaseline draws them: zoom within 1 +- ``scale_factor``,
    rotation N(0, ``rotation_factor``) degrees clipped at twice that, applied to 60 % of the crops.
    Drawn from torch's RNG, so the trainer's per-epoch seeding makes them reproducible."""
    sf, rf = scale_factor, rotation_factor
    zoom = (1.0 + torch.randn(num_views, dtype=torch.float64) * sf).clamp(1.0 - sf, 1.0 + sf)
    rotation = (torch.randn(num_views, dtype=torch.float64) * rf).clamp(-2 * rf, 2 * rf)
    rotation = torch.where(torch.rand(num_views, dtype=torch.float64) <= 0.6, rotation, torch.zeros_like(rotation))
    return zoom, rotation


def joints_box(pixels: Tensor, image_size: Tensor, scale: float) -> Tuple[Tensor, Tensor]:
    """(centre (..., 2), side (...)) of the square crop around joints ``pixels`` (..., J, 2): the centre of the box
    of the finite joints and ``scale`` x its larger side. Where the finite joints span no box (none, or all at one
    point) it is the whole image of ``image_size`` (..., 2) (w, h): its centre and its larger side."""
    finite = torch.isfinite(pixels).all(-1, keepdim=True)
    low = torch.where(finite, pixels, torch.inf).amin(-2)
    high = torch.where(finite, pixels, -torch.inf).amax(-2)
    side = (high - low).amax(-1) * scale                      # -inf without a finite joint
    size = torch.as_tensor(image_size).to(pixels.dtype).expand_as(low)
    boxed = side > 0
    return torch.where(boxed[..., None], (low + high) / 2, size / 2), torch.where(boxed, side, size.amax(-1))


def cut_crops(cameras: Cameras, images: Iterable[np.ndarray], centre: Tensor, side: Tensor, size: int, zoom=None,
              rotation_deg=None) -> Tuple[Cameras, np.ndarray]:
    """(crop cameras (V,), crops (V, S, S, C)) of V full images (``images``: one H x W x C array per view, read as
    they are needed) of ``cameras``: the squares of ``side`` (V,) around ``centre`` (V, 2), zoomed and rotated as
    ``square_crop_affines`` says, warped to S x S (bilinear) and folded into each camera's K."""
    affines = square_crop_affines(centre, side, size, zoom, rotation_deg)
    shape = (size, size)
    crops = np.stack([cv2.warpAffine(image, affine, shape, flags=cv2.INTER_LINEAR)
                      for image, affine in zip(images, affines.numpy())])
    return cameras.with_affine(affines, shape), crops


def inside_crop(pixels: Tensor, size: int) -> Tensor:
    """(...,) float32: 1 where a point (..., 2) lies on an S x S crop (pixel centres 0 .. S - 1), else 0 (NaN too)."""
    return ((pixels >= 0) & (pixels <= size - 1)).all(-1).float()


def read_rgb(path, where: str) -> np.ndarray:
    """The H x W x 3 uint8 RGB image at ``path``; a DatasetError naming the file (and ``where``, the config key of its
    folder) if it is missing or cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if Path(path).is_file() else None
    if image is None:
        raise DatasetError(f"image '{path}' is missing or unreadable ({where})")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
