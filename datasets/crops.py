"""Square person crops as pixel affines, shared by every image dataset.

A crop maps a square of side ``side`` around ``centre`` (original image pixels) to an S x S image,
optionally zoomed and rotated about its centre (SimpleBaseline's augmentation):
``x_crop = S/2 + (S / side) zoom R(rotation) (x - centre)``. Datasets fold the affine into each view's K
(``Cameras.with_affine``), so projections and epipolar geometry in the crop stay exact, and warp real
images with the same matrix (``cv2.warpAffine``).
"""
import torch
from torch import Tensor


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
