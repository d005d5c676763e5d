"""3D keypoint losses of the triangulation heads.

- ``mean_joint_error_m``: the mean Euclidean joint error in metres.
- ``smooth_mse_cm``: learnable triangulation's ``KeypointsMSESmoothLoss`` (Iskakov et al., ICCV 2019,
  ``mvn/models/loss.py``) as its Human3.6M configs use it: on the world 3D scaled to centimetres
  (``scale_keypoints_3d: 0.1``), each squared coordinate error ``d`` above ``threshold`` (400 cm^2)
  replaced by ``d^0.1 threshold^0.9``, summed and divided by 3 x the number of valid joints. Its
  multi-view training takes the absolute world 3D (only its single-view case subtracts the pelvis).

Both leave out target joints missing from the data (``core.missing_joints``) and joints outside
``mask`` (the heads' ``valid``: the joints triangulated from two views in front of their cameras; the
reference's SVD returns and penalises a point for every joint, so a joint that fails here gives no
gradient, and the metrics count it as invalid). The smooth branch is evaluated only where it applies, so
no infinite gradient of the 0.1th power at zero reaches the backward pass.
"""
import torch
from torch import Tensor

from core.missing_joints import joint_errors, masked_mean, present_joints


def mean_joint_error_m(pred_mm: Tensor, target_mm: Tensor, mask: Tensor) -> Tensor:
    """(B, J, 3) mm, (B, J) bool -> the mean error of the masked, present joints in metres."""
    errors, present = joint_errors(pred_mm, target_mm.to(pred_mm.dtype))
    return masked_mean(errors, present & mask) / 1000.0


def smooth_mse_cm(pred_mm: Tensor, target_mm: Tensor, mask: Tensor, threshold_cm2: float = 400.0) -> Tensor:
    """(B, J, 3) mm, (B, J) bool -> learnable triangulation's smooth MSE of the coordinates in cm^2."""
    if not threshold_cm2 > 0:
        raise ValueError(f"threshold_cm2 must be > 0, got {threshold_cm2!r}")
    target_mm = target_mm.to(pred_mm.dtype)
    used = present_joints(target_mm) & mask & torch.isfinite(pred_mm).all(-1)
    error_cm = torch.where(used[..., None], pred_mm - target_mm, torch.zeros_like(pred_mm)) * 0.1
    squared = error_cm.pow(2)                                                       # (B, J, 3) cm^2, 0 where unused
    large = squared > threshold_cm2
    damped = torch.where(large, squared, torch.full_like(squared, threshold_cm2)).pow(0.1) * threshold_cm2 ** 0.9
    return torch.where(large, damped, squared).sum() / (3 * used.sum().clamp(min=1))
