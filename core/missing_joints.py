"""Target joints missing from the data (NaN in the 3D), the toolbox's policy for them.

Keypoint datasets may hold NaN target joints (a marker lost by the motion capture); they count them when they
load (``datasets.sequences``). A missing joint adds nothing to a loss and no gradient: the target is filled
before the difference, so no NaN reaches the backward pass, and each mean runs over the joints present. The
metrics leave them out the same way (``core.metrics``: ``num_masked_joints`` in metrics.json). A missing pelvis
leaves its frame no root-relative target at all.
"""
import torch
from torch import Tensor


def present_joints(target: Tensor) -> Tensor:
    """(..., J, D) -> (..., J) bool: the joints whose target is finite."""
    return torch.isfinite(target).all(-1)


def filled(target: Tensor, present: Tensor, fill: Tensor) -> Tensor:
    """``target`` with its missing joints replaced by ``fill`` (detached), so that they contribute no error."""
    return torch.where(present[..., None], target, fill.detach().to(target.dtype))


def masked_mean(values: Tensor, present: Tensor, dim=None) -> Tensor:
    """The mean of ``values`` over the entries where ``present`` holds (over ``dim``, default all); 0 where none."""
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    if dim is None:
        return torch.where(present, values, zero).sum() / present.sum().clamp(min=1)
    return torch.where(present, values, zero).sum(dim) / present.sum(dim).clamp(min=1)


def joint_errors(pred: Tensor, target: Tensor):
    """(..., J, 3) -> the (..., J) Euclidean errors, 0 at missing joints, and the (..., J) mask of present joints."""
    present = present_joints(target)
    return (pred - filled(target, present, pred)).norm(dim=-1), present
