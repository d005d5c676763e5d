"""Calibration file readers, converting to ``Cameras`` (world mm, ``X_cam = R X + t``, OpenCV model).

- Human3.6M JSON (the format of ``human36m-camera-parameters``): ``intrinsics[camera_id] =
  {calibration_matrix 3x3 px, distortion [k1, k2, p1, p2, k3]}`` and ``extrinsics[subject][camera_id]
  = {R 3x3 world->camera, t 3x1 mm}``. Image sizes are Human3.6M's own: 1000x1002 for cameras
  54138969 and 60457274, 1000x1000 for the others.

Every reader checks the file and raises ``CalibrationError`` naming the file, the key and what was
expected; rotations must be orthonormal with determinant +1 and intrinsics invertible.
"""
import json
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch

from core.geometry.cameras import Cameras

H36M_IMAGE_SIZES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
                    "60457274": (1000, 1002)}


class CalibrationError(ValueError):
    """A calibration file is missing, malformed, or describes impossible cameras."""


def _matrix(value, shape: Tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: expected numbers of shape {shape}, got {value!r:.80}") from None
    if array.size != int(np.prod(shape)):
        raise CalibrationError(f"{where}: expected {int(np.prod(shape))} numbers (shape {shape}), got shape {array.shape}")
    array = array.reshape(shape)
    if not np.isfinite(array).all():
        raise CalibrationError(f"{where}: contains NaN or infinite values")
    return array


def check_camera(K: np.ndarray, R: np.ndarray, where: str) -> None:
    """Reject non-orthonormal rotations and singular intrinsics."""
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise CalibrationError(f"{where}: R is not a rotation (R R^T = I and det R = +1 expected)")
    if abs(np.linalg.det(K[:2, :2])) < 1e-9 or np.abs(K[2] - [0, 0, 1]).max() > 1e-9:
        raise CalibrationError(f"{where}: K must be invertible with last row (0, 0, 1)")


def read_h36m_cameras(path, subject: str, camera_ids: Sequence[str] = ()) -> Tuple[Cameras, List[str]]:
    """The cameras of ``subject`` (float64, batch (V,)) and their ids, in ``camera_ids`` order (default: sorted)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file '{path}' does not exist (Human3.6M camera JSON expected)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CalibrationError(f"calibration file '{path}' is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not {"intrinsics", "extrinsics"} <= set(data):
        raise CalibrationError(f"'{path}': expected the keys 'intrinsics' and 'extrinsics'")
    extrinsics = data["extrinsics"].get(subject) if isinstance(data["extrinsics"], dict) else None
    if not extrinsics:
        known = ", ".join(k for k, v in data["extrinsics"].items() if v) if isinstance(data["extrinsics"], dict) else ""
        raise CalibrationError(f"'{path}': no extrinsics for subject '{subject}'; subjects with cameras: {known}")
    ids = list(camera_ids) or sorted(data["intrinsics"])
    K, R, t, dist, sizes = [], [], [], [], []
    for cam in ids:
        where = f"'{path}' camera {cam}"
        if cam not in data["intrinsics"] or cam not in extrinsics:
            raise CalibrationError(f"{where}: missing from intrinsics or from extrinsics of {subject}")
        intr, extr = data["intrinsics"][cam], extrinsics[cam]
        K.append(_matrix(intr.get("calibration_matrix"), (3, 3), f"{where} calibration_matrix"))
        R.append(_matrix(extr.get("R"), (3, 3), f"{where} R"))
        t.append(_matrix(extr.get("t"), (3,), f"{where} t"))
        dist.append(_matrix(intr.get("distortion"), (5,), f"{where} distortion"))
        check_camera(K[-1], R[-1], where)
        sizes.append(H36M_IMAGE_SIZES.get(cam, tuple(2 * K[-1][:2, 2])))
    cameras = Cameras.create(np.stack(K), np.stack(R), np.stack(t), np.stack(dist), torch.tensor(sizes))
    return cameras, ids
