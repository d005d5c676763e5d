"""Rotation matrices from Euler angles and forward kinematics of a kinematic tree (numpy, float64).

Shared by the BVH reader (``datasets/formats/bvh.py``) and the synthetic world's bodies
(``datasets/synthetic/bodies.py``). Vectorised over any leading (frame) axes; the only loop is
over the joints of the tree, in parent-before-child order.
"""
from typing import Sequence

import numpy as np


def _axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """(...) angles -> (..., 3, 3) rotation about the x, y or z axis (right-handed)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    one, zero = np.ones_like(c), np.zeros_like(c)
    rows = {
        "X": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "Y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "Z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def euler_to_matrix(angles_rad: np.ndarray, axes: str) -> np.ndarray:
    """(..., k) angles in radians about ``axes`` (e.g. ``"ZYX"``) -> (..., 3, 3) ``R_a1 @ R_a2 @ ...``.

    The rotations compose in the listed order (intrinsic rotations), as BVH channel lists do.
    """
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    axes = axes.upper()
    if not axes or any(a not in "XYZ" for a in axes) or angles_rad.shape[-1:] != (len(axes),):
        raise ValueError(f"euler_to_matrix: axes must be letters of 'XYZ' matching angles (..., k), "
                         f"got axes={axes!r} and angles of shape {angles_rad.shape}")
    rotation = _axis_rotation(axes[0], angles_rad[..., 0])
    for i, axis in enumerate(axes[1:], start=1):
        rotation = rotation @ _axis_rotation(axis, angles_rad[..., i])
    return rotation


def tree_forward_kinematics(parents: Sequence[int], offsets: np.ndarray, local_rotations: np.ndarray,
                            root_positions: np.ndarray) -> np.ndarray:
    """Joint positions of a kinematic tree, vectorised over the leading (frame) axes.

    ``parents`` (J,) with ``parents[j] < j`` (root: -1, first); ``offsets`` (..., J, 3) joint j's
    translation in its parent's frame (the root's is ignored); ``local_rotations`` (..., J, 3, 3);
    ``root_positions`` (..., 3). Returns (..., J, 3): ``p_j = p_parent + G_parent @ offset_j`` with
    ``G_j = G_parent @ R_j``. One step per joint (a documented loop over the tree, not over frames).
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    local_rotations = np.asarray(local_rotations, dtype=np.float64)
    root_positions = np.asarray(root_positions, dtype=np.float64)
    num_joints = len(parents)
    if offsets.shape[-2:] != (num_joints, 3) or local_rotations.shape[-3:] != (num_joints, 3, 3) \
            or root_positions.shape[-1:] != (3,):
        raise ValueError(f"tree_forward_kinematics: expected offsets (..., {num_joints}, 3), local_rotations "
                         f"(..., {num_joints}, 3, 3), root_positions (..., 3); got {offsets.shape}, "
                         f"{local_rotations.shape}, {root_positions.shape}")
    if parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j > 0):
        raise ValueError(f"tree_forward_kinematics: parents must start with -1 and satisfy parents[j] < j, "
                         f"got {tuple(parents)}")
    batch = np.broadcast_shapes(offsets.shape[:-2], local_rotations.shape[:-3], root_positions.shape[:-1])
    global_rotations = [np.broadcast_to(local_rotations[..., 0, :, :], batch + (3, 3))]
    positions = [np.broadcast_to(root_positions, batch + (3,))]
    for j in range(1, num_joints):
        p = parents[j]
        positions.append(positions[p] + np.einsum("...ij,...j->...i", global_rotations[p], offsets[..., j, :]))
        global_rotations.append(global_rotations[p] @ local_rotations[..., j, :, :])
    return np.stack(positions, axis=-2)
