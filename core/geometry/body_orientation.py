"""Which way a body stands and faces, for choosing a view of it: the world's rotation to a z-up frame (from the
ankles to the head) and the azimuth of a viewer in front of the person (from the hips).

The azimuth is that of ``core.vis.view_rotation``; both work on world-frame numpy joints of a ``core.skeleton``
layout, NaN where unknown, found by their common names (head, ankles, hips); a layout without them (a hand) gets
the identity and azimuth 0.
"""
import warnings

import numpy as np

from core.skeleton import Skeleton


def _joints(skeleton: Skeleton, *names: str):
    """The indices of the joints of common names ``names``, or None if the layout lacks one."""
    common = skeleton.common_names()
    return tuple(common.index(n) for n in names) if all(n in common for n in names) else None


def _quietly(nan_function, *args, **kwargs):
    """A numpy NaN-ignoring reduction without its all-NaN RuntimeWarning (the result is NaN there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nan_function(*args, **kwargs)


def up_rotation(points_3d: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(3, 3) rotation taking the world to a z-up frame, "up" being the mean direction from the ankles to the
    head over all frames of ``points_3d`` (T, J, 3) (the calibration's own axes may point anywhere)."""
    joints = _joints(skeleton, "head", "l_ankle", "r_ankle")
    if joints is None:
        return np.eye(3)
    head, l_ankle, r_ankle = joints
    ankles = _quietly(np.nanmean, points_3d[:, [l_ankle, r_ankle]], axis=1)
    up = _quietly(np.nanmean, points_3d[:, head] - ankles, axis=0)
    if not np.isfinite(up).all() or np.linalg.norm(up) < 1e-6:
        return np.eye(3)
    up = up / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, up)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(up, x), up])


def front_azimuth_deg(points_z_up: np.ndarray, skeleton: Skeleton) -> float:
    """The azimuth of a viewer facing a z-up pose (J, 3) or poses (..., J, 3), from the (median) left-to-right
    hip direction; 0 without hips."""
    joints = _joints(skeleton, "l_hip", "r_hip")
    if joints is None:
        return 0.0
    hips = np.asarray(points_z_up)[..., joints[0], :2] - np.asarray(points_z_up)[..., joints[1], :2]
    left = _quietly(np.nanmedian, hips.reshape(-1, 2), axis=0)
    if not np.isfinite(left).all() or np.linalg.norm(left) < 1e-6:
        return 0.0
    facing = np.array([left[1], -left[0]])  # left x up, horizontal
    return float(np.rad2deg(np.arctan2(-facing[0], -facing[1])))  # look along -facing
