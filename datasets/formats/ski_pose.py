"""Readers of the Ski-Pose PTZ-Camera dataset (Spörri; Rhodin et al., CVPR 2018, "Learning Monocular 3D Human Pose
Estimation from Multi-view Images"; EPFL CVLAB's ``Ski-PosePTZ-CameraDataset-png``), converted to EpiPose's units.

Alpine skiers filmed by 6 pan-tilt-zoom cameras; every frame of every camera is a 256 x 256 crop around the skier
(``seq_<seq:03d>/cam_<cam:02d>/image_<frame:06d>.png``) with its own calibration, the crop folded into K.

``<split>/labels.h5`` (``split`` = ``train`` or ``test``) holds one row per image, N rows, read with h5py:

- ``seq``, ``subj``, ``cam``, ``frame``: (N,) or (N, 1) integers: the run, the skier, the camera (0..5), the frame;
- ``3D``: (N, 51) or (N, 17, 3): the 17 joints in the camera's orientation (the world pose rotated by the camera's
  world-to-camera rotation), relative to the skier's centre, metres;
- ``2D``: (N, 34) or (N, 17, 2): the joints in the crop, as fractions of its side (x, y in 0..1);
- ``cam_intrinsic``: (N, 9) or (N, 3, 3): K of the crop for coordinates in fractions of its side;
- ``cam_position``: (N, 3): the camera centre in the world, metres;
- ``R_cam_2_world``: (N, 9) or (N, 3, 3): the camera-to-world rotation (OpenCV axes: x right, y down, z forward).

The joints are in the ``h36m17`` order of ``core.skeleton``. ``ski_centers.csv`` (a separate file of the download)
gives the skier's centre in the world: one line ``seq frame x y z`` (whitespace-separated, metres) per frame, so the
world pose of a row is ``R_cam_2_world @ 3D + centre``. Read as in the data preparation of TransFusion-Pose
(``data/preprocess_skipose.py``, which makes the camera-frame pose ``3D + R_world_2_cam (centre - cam_position)``);
the keys as Rhodin's NSD loader and configs read them (``datasets/collected_dataset.py``, ``R_cam_2_world``), the
fractions of 256 px as in TransFusion's and other public loaders. The metres are an assumption, checked here: the
skier's median extent in ``3D`` must lie between ``MIN_EXTENT_M`` and ``MAX_EXTENT_M``. A public preparation of
these labels for DAPA swaps the legs of ``3D``, saying they are flipped; that needs the data to settle, and EpiPose
keeps the file's order.

Converted: 2D and K to the pixels of the 256 px crop (``IMAGE_SIDE_PX``), rotations to world-to-camera ``R`` with
``t = -R c`` in mm, 3D to mm. Every float must be finite, rotations proper (orthonormal, determinant +1) and K's
last row (0, 0, 1) with positive focal lengths; each violation is one ``SkiPoseError`` naming the file and key.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np

from core.skeleton import H36M17

IMAGE_SIDE_PX = 256             # the side of every crop; 2D and K are in fractions of it
MIN_EXTENT_M, MAX_EXTENT_M = 0.3, 5.0
INDEX_KEYS = ("seq", "subj", "cam", "frame")
VALUE_KEYS = {"3D": (H36M17.num_joints, 3), "2D": (H36M17.num_joints, 2), "cam_intrinsic": (3, 3),
              "cam_position": (3,), "R_cam_2_world": (3, 3)}
ROTATION_TOLERANCE = 1e-3


class SkiPoseError(ValueError):
    """A Ski-Pose file that is missing or malformed (names the file and the key or line)."""


@dataclass
class SkiLabels:
    """The rows of one ``labels.h5`` in EpiPose's units (see the module docstring)."""
    path: Path
    seq: np.ndarray             # (N,) int64
    subject: np.ndarray         # (N,) int64
    camera: np.ndarray          # (N,) int64
    frame: np.ndarray           # (N,) int64
    pose_3d_cam: np.ndarray     # (N, J, 3) float64 mm, camera orientation, relative to the skier's centre
    keypoints_2d: np.ndarray    # (N, J, 2) float64 pixels of the crop
    K: np.ndarray               # (N, 3, 3) float64, pixels of the crop
    R: np.ndarray               # (N, 3, 3) float64 world -> camera
    t: np.ndarray               # (N, 3) float64 mm


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


# what h5py raises on a damaged file, beyond opening it
H5_ERRORS = (OSError, RuntimeError, ValueError, TypeError, KeyError)


def _dataset(handle, key: str, path: Path) -> np.ndarray:
    import h5py
    try:
        node = handle.get(key)
        values = node[()] if isinstance(node, h5py.Dataset) else None
        found = None if isinstance(node, h5py.Dataset) else sorted(handle)
    except H5_ERRORS as err:
        raise SkiPoseError(f"{path}: '{key}' cannot be read ({_one_line(err)})") from None
    if found is not None:
        raise SkiPoseError(f"{path}: no dataset '{key}' (a Ski-Pose labels.h5 has {', '.join(INDEX_KEYS)}, "
                           f"{', '.join(VALUE_KEYS)}); found {found}")
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "iuf":
        raise SkiPoseError(f"{path}: '{key}' must be a numeric array, got {getattr(values, 'dtype', type(values))}")
    return values


def _rows(values: np.ndarray, key: str, path: Path, rows: int, shape: Tuple[int, ...]) -> np.ndarray:
    """``values`` as (rows, *shape) float64, finite."""
    if values.ndim == 0 or len(values) != rows or values[0].size != int(np.prod(shape)):
        raise SkiPoseError(f"{path}: '{key}' has shape {values.shape}, expected ({rows}, {', '.join(map(str, shape))}) "
                           f"or ({rows}, {int(np.prod(shape))})")
    values = values.reshape(rows, *shape).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values.reshape(rows, -1)).all(-1))
    if len(bad):
        raise SkiPoseError(f"{path}: '{key}' has NaN or infinite values in {len(bad)} rows (the first: row {bad[0]})")
    return values


def read_ski_labels(path) -> SkiLabels:
    """The rows of a Ski-Pose ``labels.h5`` (see the module docstring)."""
    import h5py
    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise SkiPoseError(f"{path}: not a readable HDF5 file ({_one_line(err)})") from None
    with handle:
        first = _dataset(handle, "seq", path)
        rows = len(first) if first.ndim else 0
        if rows == 0:
            raise SkiPoseError(f"{path}: 'seq' is empty or a scalar, expected one entry per image")
        index = {}
        for key in INDEX_KEYS:
            values = _rows(first if key == "seq" else _dataset(handle, key, path), key, path, rows, ())
            if (values != np.round(values)).any():
                raise SkiPoseError(f"{path}: '{key}' must hold integers, got {values[values != np.round(values)][0]}")
            index[key] = values.astype(np.int64)
        value = {key: _rows(_dataset(handle, key, path), key, path, rows, shape) for key, shape in VALUE_KEYS.items()}
    rotation, intrinsic = value["R_cam_2_world"], value["cam_intrinsic"]
    with np.errstate(over="ignore", invalid="ignore"):                # huge values fail as inf or NaN
        residual = np.abs(rotation @ rotation.transpose(0, 2, 1) - np.eye(3)).max((1, 2))
        bad = np.flatnonzero(~(residual <= ROTATION_TOLERANCE) | ~(np.linalg.det(rotation) > 0))
    if len(bad):
        raise SkiPoseError(f"{path}: 'R_cam_2_world' of row {bad[0]} is not a rotation ({len(bad)} rows)")
    bad = np.flatnonzero((np.abs(intrinsic[:, 2] - [0.0, 0.0, 1.0]).max(-1) > 1e-6) | (intrinsic[:, 0, 0] <= 0)
                         | (intrinsic[:, 1, 1] <= 0))
    if len(bad):
        raise SkiPoseError(f"{path}: 'cam_intrinsic' of row {bad[0]} is not a camera matrix (last row (0, 0, 1), "
                           f"positive focal lengths; {len(bad)} rows)")
    with np.errstate(over="ignore", invalid="ignore"):
        extent = np.median(np.ptp(value["3D"], axis=1).max(-1))
    if not MIN_EXTENT_M <= extent <= MAX_EXTENT_M:
        raise SkiPoseError(f"{path}: '3D': the skier's median extent is {extent:.4g}, expected metres (between "
                           f"{MIN_EXTENT_M} and {MAX_EXTENT_M})")
    R = rotation.transpose(0, 2, 1)
    pixels = np.diag([IMAGE_SIDE_PX, IMAGE_SIDE_PX, 1.0])
    return SkiLabels(path=path, seq=index["seq"], subject=index["subj"], camera=index["cam"], frame=index["frame"],
                     pose_3d_cam=value["3D"] * 1000.0, keypoints_2d=value["2D"] * IMAGE_SIDE_PX, K=pixels @ intrinsic,
                     R=R, t=-np.einsum("nij,nj->ni", R, value["cam_position"]) * 1000.0)


def read_ski_centres(path) -> Tuple[np.ndarray, np.ndarray]:
    """((M, 2) int64 seq and frame, (M, 3) float64 world mm) from ``ski_centers.csv`` (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SkiPoseError(f"{path}: cannot be read as text ({_one_line(err)})") from None
    numbered = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise SkiPoseError(f"{path}: no lines; expected 'seq frame x y z' per frame")
    numbers = np.array([number for number, _ in numbered])
    fields = [f for _, f in numbered]
    wrong = [i for i, f in enumerate(fields) if len(f) != 5 or not all(map(_is_number, f))]
    if not wrong:
        table = np.array(fields, dtype=np.float64)
        wrong = np.flatnonzero(~np.isfinite(table).all(-1) | (table[:, :2] != np.round(table[:, :2])).any(-1))
    if len(wrong):
        raise SkiPoseError(f"{path}: line {numbers[wrong[0]]} is not 'seq frame x y z' (integers, then finite metres): "
                           f"{' '.join(fields[wrong[0]])[:80]!r}")
    keys = table[:, :2].astype(np.int64)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    if (counts > 1).any():
        seq, frame = unique[np.argmax(counts > 1)]
        raise SkiPoseError(f"{path}: seq {seq} frame {frame} has {counts.max()} lines, expected one")
    return keys, table[:, 2:] * 1000.0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
