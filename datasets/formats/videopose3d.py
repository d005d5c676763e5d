"""Readers of Human3.6M in the VideoPose3D format (Pavllo et al., CVPR 2019), converted to EpiPose's units.

- ``data_3d_h36m.npz``: ``positions_3d`` = {subject: {action: (T, 32 or 17, 3)}} in metres, world frame.
  32-joint arrays are reduced to the 17 joints of ``core.skeleton`` (original indices
  ``H36M_32_TO_17``); the result is in millimetres. A joint missing from the capture may be NaN
  (``core.missing_joints``: left out of losses and metrics); infinite values are refused.
- ``data_2d_h36m_<keypoints>.npz``: ``positions_2d`` = {subject: {action: [one (T, 17, 2) pixel array per
  camera]}} (cameras in the order 54138969, 55011271, 58860488, 60457274) and ``metadata`` with
  ``num_joints`` and ``keypoints_symmetry`` (left and right joint lists), and ``layout_name`` in the
  files of detections. Only 17-joint files whose symmetry is Human3.6M's are accepted: other layouts
  (COCO, Stacked Hourglass's 16 joints) are in a different joint order and are refused, naming it. Arrays of
  (T, 17, 3), as many detectors export them, carry each joint's score (x, y, score): it is read as the 2D
  confidence, and must lie in [0, 1] (a joint the detector missed: 0); scores outside it or NaN are refused,
  naming the take, camera, frame and joint. (T, 17, 2) arrays get score 1.

``match_2d_to_3d`` pairs the two: every 3D take must have 2D for every camera; 2D longer than the 3D
(some videos have extra frames) is trimmed to the 3D length, shorter 2D is an error. Files are read
with ``datasets.formats.safe_pickle`` (plain data only).
"""
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from core.skeleton import H36M17
from datasets.formats.safe_pickle import SafePickleError, load_npz

H36M_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")

Positions3D = Dict[str, Dict[str, np.ndarray]]
Positions2D = Dict[str, Dict[str, List[np.ndarray]]]


class VideoPose3DError(ValueError):
    """A VideoPose3D-format file that is missing, malformed or in another joint layout."""


def _load(path, key: str):
    path = Path(path)
    try:
        archive = load_npz(path)
    except SafePickleError as err:
        raise VideoPose3DError(str(err)) from None
    if key not in archive or not isinstance(archive[key], dict):
        raise VideoPose3DError(f"{path}: expected '{key}' = {{subject: {{action: ...}}}} (VideoPose3D format), "
                               f"found keys {sorted(archive)}")
    return path, archive


def read_positions_3d(path) -> Positions3D:
    """{subject: {action: (T, 17, 3) float32 world mm}} from ``data_3d_h36m.npz``."""
    path, archive = _load(path, "positions_3d")
    result: Positions3D = {}
    for subject, actions in archive["positions_3d"].items():
        if not isinstance(actions, dict):
            raise VideoPose3DError(f"{path}: positions_3d['{subject}'] must be a dict of actions")
        for action, positions in actions.items():
            positions = np.asarray(positions)
            if positions.ndim != 3 or positions.shape[1] not in (32, H36M17.num_joints) or positions.shape[2] != 3:
                raise VideoPose3DError(f"{path}: positions_3d['{subject}']['{action}'] must be (T, 32 or 17, 3), "
                                       f"got {positions.shape}")
            if positions.shape[1] == 32:
                positions = positions[:, list(H36M_32_TO_17)]
            if np.isinf(positions).any():
                raise VideoPose3DError(f"{path}: positions_3d['{subject}']['{action}'] has infinite values (a "
                                       "missing joint is NaN)")
            result.setdefault(str(subject), {})[str(action)] = (positions * 1000.0).astype(np.float32)
    return result


def read_positions_2d(path) -> Tuple[Positions2D, dict]:
    """({subject: {action: [V x (T, 17, 3) float32: x, y pixels and score]}}, metadata) from
    ``data_2d_h36m_<keypoints>.npz`` (scores 1 where the file has none)."""
    path, archive = _load(path, "positions_2d")
    metadata = archive.get("metadata")
    if not isinstance(metadata, dict):
        raise VideoPose3DError(f"{path}: expected a 'metadata' dict (num_joints, keypoints_symmetry)")
    layout = metadata.get("layout_name", "h36m")
    symmetry = metadata.get("keypoints_symmetry")
    try:
        left, right = (sorted(int(j) for j in side) for side in symmetry)
    except (TypeError, ValueError):
        raise VideoPose3DError(f"{path}: metadata keypoints_symmetry must be [left joints, right joints]") from None
    if metadata.get("num_joints") != H36M17.num_joints or (left, right) != (sorted(H36M17.left_joints), sorted(H36M17.right_joints)):
        raise VideoPose3DError(f"{path}: 2D layout '{layout}' with {metadata.get('num_joints')} joints is not the "
                               f"Human3.6M 17-joint layout EpiPose reads (left {sorted(H36M17.left_joints)}, right "
                               f"{sorted(H36M17.right_joints)}); convert the detections to it first")
    result: Positions2D = {}
    for subject, actions in archive["positions_2d"].items():
        for action, views in actions.items():
            where = f"{path}: positions_2d['{subject}']['{action}']"
            result.setdefault(str(subject), {})[str(action)] = [
                _with_scores(np.asarray(v, dtype=np.float32), f"{where}[{camera}]") for camera, v in enumerate(views)]
    return result, metadata


def _with_scores(array: np.ndarray, where: str) -> np.ndarray:
    """A (T, 17, 2) or (T, 17, 3) array of the 2D file as (T, 17, 3) x, y and score (see the module docstring)."""
    if array.ndim != 3 or array.shape[1] != H36M17.num_joints or array.shape[2] not in (2, 3):
        raise VideoPose3DError(f"{where} must be (T, {H36M17.num_joints}, 2) (x, y) or (T, {H36M17.num_joints}, 3) (x, y, score), "
                               f"got {array.shape}")
    if array.shape[2] == 2:
        return np.concatenate([array, np.ones_like(array[..., :1])], axis=-1)
    bad = np.argwhere(~((array[..., 2] >= 0) & (array[..., 2] <= 1)))          # NaN fails both
    if len(bad):
        frame, joint = bad[0]
        raise VideoPose3DError(f"{where}: {len(bad)} scores outside [0, 1] or NaN (the first: frame {frame}, joint "
                               f"{H36M17.joint_names[joint]}, {array[frame, joint, 2]:g}); the third channel is read as the "
                               "2D confidence: rescale the detector's scores to [0, 1] (0 for a missed joint)")
    return array


def match_2d_to_3d(positions_2d: Positions2D, positions_3d: Positions3D, source_2d: str = "2D file",
                   num_cameras: int = len(CAMERA_IDS)) -> Positions2D:
    """The 2D of every 3D take, trimmed to the 3D length (see the module docstring)."""
    matched: Positions2D = {}
    for subject, actions in positions_3d.items():
        for action, positions in actions.items():
            views = positions_2d.get(subject, {}).get(action)
            if views is None:
                raise VideoPose3DError(f"{source_2d}: no 2D keypoints for {subject} '{action}'")
            if len(views) != num_cameras:
                raise VideoPose3DError(f"{source_2d}: {subject} '{action}' has 2D for {len(views)} cameras, "
                                       f"expected {num_cameras}")
            for camera, view in enumerate(views):
                if len(view) < len(positions):
                    raise VideoPose3DError(f"{source_2d}: {subject} '{action}' camera {camera} has {len(view)} "
                                           f"frames of 2D for {len(positions)} frames of 3D")
            matched.setdefault(subject, {})[action] = [view[:len(positions)] for view in views]
    return matched
