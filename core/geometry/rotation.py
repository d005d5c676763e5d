"""Rotations of 3D poses: the axis-angle matrix of a viewpoint and the canonical frame of a pose.

Poses are row vectors (..., J, 3), as in the lifting networks of Zimmermann & Brox (ICCV 2017, lmb-freiburg/hand3d),
so a rotation ``R`` acts as ``points @ R``.

- ``axis_angle_to_matrix``: Rodrigues' formula ``cos t I + sin t [k]x + (1 - cos t) k k^T`` of the vector
  ``u = t k`` (angle ``t = |u|``, axis ``k``), with ``t = sqrt(|u|^2 + 1e-8)`` as the reference does, so that the
  zero vector has a finite gradient.
- ``canonical_frame``: the rotation ``M`` that puts a root-relative pose into its canonical frame, ``C = P @ M``,
  where the ``align`` joint lies on the negative y axis and the ``rotate`` joint in the xy plane at positive x
  (hand3d's ``canonical_trafo``: root 0, align 12, rotate 20 of RHD's hand). The reference composes three
  rotations about z, x and y from arctangents; here the frame's axes are built directly (Gram-Schmidt), which
  gives the same proper rotation wherever the frame is defined (the two joints not collinear with the root).
"""
import torch
from torch import Tensor


def axis_angle_to_matrix(vector: Tensor, eps: float = 1e-8) -> Tensor:
    """(..., 3) axis-angle vectors -> (..., 3, 3) rotation matrices (Rodrigues, for column vectors)."""
    angle = (vector.pow(2).sum(-1, keepdim=True) + eps).sqrt()                   # (..., 1)
    axis = vector / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).unflatten(-1, (3, 3))
    cos, sin = angle.cos()[..., None], angle.sin()[..., None]
    eye = torch.eye(3, dtype=vector.dtype, device=vector.device)
    return cos * eye + sin * cross + (1 - cos) * axis[..., :, None] * axis[..., None, :]


def canonical_frame(points: Tensor, align: int, rotate: int) -> Tensor:
    """(..., J, 3) root-relative poses -> (..., 3, 3) proper rotations ``M`` with ``canonical = points @ M``:
    joint ``align`` on the negative y axis, joint ``rotate`` in the xy plane at x > 0. The pose is back at
    ``canonical @ M^T``. NaN where the frame is undefined (a joint missing, or both on one line through the root)."""
    down = -points[..., align, :]
    y_axis = down / down.norm(dim=-1, keepdim=True)
    side = points[..., rotate, :]
    side = side - (side * y_axis).sum(-1, keepdim=True) * y_axis
    x_axis = side / side.norm(dim=-1, keepdim=True)
    z_axis = torch.linalg.cross(x_axis, y_axis)
    frame = torch.stack([x_axis, y_axis, z_axis], -1)                             # the axes as columns
    return torch.where(torch.isfinite(frame).all(-1).all(-1)[..., None, None], frame, torch.nan)
