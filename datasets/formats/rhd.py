"""Readers of the Rendered Hand Pose dataset's files (RHD, Zimmermann & Brox, ICCV 2017), in millimetres.

``RHD_published_v2/`` holds two sets, ``training/`` (41258 images) and ``evaluation/`` (2728), each with
``anno_<set>.pickle`` and the folders ``color/``, ``mask/`` and ``depth/`` of 320 x 320 PNGs named ``<id:05d>.png``.

- The pickle is a dict {sample id: {'xyz': (42, 3) metres in the camera frame, 'uv_vis': (42, 3) u, v pixels and a
  visibility flag (1 visible, 0 not), 'K': (3, 3) the intrinsics}}, K differing from image to image.
- Keypoints 0-20 are the left hand, 21-41 the right; each hand is its wrist, then the thumb, index, middle, ring and
  little finger, four keypoints each from the tip to the knuckle (the order of ``core.skeleton.HAND21``).
- The mask labels every pixel: 0 background, 1 the person, 2-17 the parts of the left hand (fingers, then the palm),
  18-33 those of the right hand.

``read_rhd_annotations`` returns both hands of every sample in millimetres, ordered by sample id. It refuses, in one
line naming the file, the sample and the key, a file that is not such a dict, a key that is missing or holds the
wrong shape, NaN or infinite values, keypoints on or behind the camera plane, visibility flags other than 0 and 1 and
an intrinsic matrix without positive focal lengths or the last row (0, 0, 1). The pickle is read with
``datasets.formats.safe_pickle`` (plain data only, never code).
"""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.formats.safe_pickle import SafePickleError, load_pickle

NUM_KEYPOINTS = 42                   # both hands
HAND_KEYPOINTS = 21                  # one hand
HANDS = ("left", "right")            # the order of the hand axis (the order of the file's keypoints)
IMAGE_SIZE_PX = 320
SHAPES = {"xyz": (NUM_KEYPOINTS, 3), "uv_vis": (NUM_KEYPOINTS, 3), "K": (3, 3)}
HAND_LABELS = ((2, 18), (18, 34))     # mask labels [first, end) of the left and the right hand


class RHDFormatError(ValueError):
    """An RHD file that is missing or malformed (names the file, the sample and the key)."""


@dataclass
class RHDAnnotations:
    """Both hands of N samples; the hand axis is ``HANDS`` (left, right)."""
    sample_ids: np.ndarray   # (N,) int64, ascending: the image numbers
    xyz_mm: np.ndarray       # (N, 2, 21, 3) float64, camera frame, millimetres
    uv_px: np.ndarray        # (N, 2, 21, 2) float64, pixels of the 320 x 320 image
    visible: np.ndarray      # (N, 2, 21) bool, the file's visibility flags
    K: np.ndarray            # (N, 3, 3) float64

    def select(self, keep) -> "RHDAnnotations":
        return RHDAnnotations(self.sample_ids[keep], self.xyz_mm[keep], self.uv_px[keep], self.visible[keep],
                              self.K[keep])


def _sample_id(key, path: Path) -> int:
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)) or key < 0:
        raise RHDFormatError(f"{path}: sample ids must be non-negative integers (the image numbers), got {key!r}")
    return int(key)


def _field(record, key: str, sample: int, path: Path) -> np.ndarray:
    if key not in record:
        raise RHDFormatError(f"{path}: sample {sample} has no key '{key}' (expected {', '.join(SHAPES)})")
    try:
        value = np.asarray(record[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise RHDFormatError(f"{path}: sample {sample} '{key}' is not numeric") from None
    if value.shape != SHAPES[key]:
        raise RHDFormatError(f"{path}: sample {sample} '{key}' must have shape {SHAPES[key]}, got {value.shape}")
    return value


def _refuse_first(bad: np.ndarray, ids: np.ndarray, path: Path, key: str, what: str) -> None:
    """An error naming the first sample where ``bad`` (N,) holds."""
    if bad.any():
        raise RHDFormatError(f"{path}: sample {ids[np.argmax(bad)]} '{key}' {what} ({int(bad.sum())} samples)")


def read_rhd_annotations(path) -> RHDAnnotations:
    """Every sample of ``anno_training.pickle`` or ``anno_evaluation.pickle`` (see the module docstring)."""
    path = Path(path)
    try:
        records = load_pickle(path)
    except SafePickleError as err:
        raise RHDFormatError(str(err)) from None
    if not isinstance(records, dict) or not records:
        raise RHDFormatError(f"{path}: expected a non-empty dict {{sample id: {{'xyz', 'uv_vis', 'K'}}}} (RHD "
                             f"annotations), got {type(records).__name__}")
    ids, fields = [], {key: [] for key in SHAPES}
    for key, record in records.items():
        sample = _sample_id(key, path)
        if not isinstance(record, dict):
            raise RHDFormatError(f"{path}: sample {sample} must be a dict with {', '.join(SHAPES)}, got "
                                 f"{type(record).__name__}")
        ids.append(sample)
        for name in SHAPES:
            fields[name].append(_field(record, name, sample, path))
    order = np.argsort(ids, kind="stable")
    ids = np.asarray(ids, dtype=np.int64)[order]
    xyz, uv_vis, K = (np.stack(fields[name])[order] for name in SHAPES)
    for name, value in (("xyz", xyz), ("uv_vis", uv_vis), ("K", K)):
        _refuse_first(~np.isfinite(value).all((1, 2)), ids, path, name, "has NaN or infinite values")
    _refuse_first((xyz[..., 2] <= 0).any(1), ids, path, "xyz", "has keypoints on or behind the camera plane (z <= 0)")
    _refuse_first(((uv_vis[..., 2] != 0) & (uv_vis[..., 2] != 1)).any(1), ids, path, "uv_vis",
                  "has visibility flags (third column) other than 0 and 1")
    intrinsic = (K[:, 0, 0] > 0) & (K[:, 1, 1] > 0) & (np.abs(K[:, 2] - [0.0, 0.0, 1.0]).max(1) < 1e-9)
    _refuse_first(~intrinsic, ids, path, "K", "is not an intrinsic matrix (positive focal lengths, last row 0 0 1)")
    hands = (len(ids), len(HANDS), HAND_KEYPOINTS)
    return RHDAnnotations(ids, 1000.0 * xyz.reshape(*hands, 3), uv_vis[..., :2].reshape(*hands, 2),
                          uv_vis[..., 2].reshape(hands) == 1, K)


def read_hand_pixels(path) -> np.ndarray:
    """(2,) int64: the pixels of the left and of the right hand in the segmentation mask ``path`` (8-bit labels)."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise RHDFormatError(f"{path}: the segmentation mask is missing or not a readable image")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise RHDFormatError(f"{path}: a segmentation mask must be one channel of 8-bit labels, got shape "
                             f"{mask.shape} of {mask.dtype}")
    counts = np.bincount(mask.ravel(), minlength=256)
    return np.array([counts[first:end].sum() for first, end in HAND_LABELS], dtype=np.int64)
