"""The one sample form that every dataset yields and every pipeline reads (batched by ``core.batch``: a leading
batch axis B on every tensor and ``Cameras``, ``meta`` values gathered into lists).

T frames of a window (the target frame is the centre one, ``T // 2``), V views, J joints in the layout of
``DATASETS.SKELETON`` (``core.skeleton``; the dataset's ``skeleton``). Every 2D key is in the pixels that the sample's ``cameras`` map into: the full image for
keypoint samples, the square crop for image samples (whose ``cameras`` have the crop folded into K). Keys
marked truth are ground truth: a pipeline's ``forward`` never reads them (its ``targets`` does), so it runs on
the inputs alone.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from core.geometry.cameras import Cameras

MODES = ("keypoints", "images")


@dataclass(frozen=True)
class Field:
    shape: Tuple[str, ...]  # axis names; "T", "V", "J", "C" (3), "S" (crop side) or a number
    dtype: object           # a torch dtype, Cameras, bool or dict
    truth: bool
    meaning: str


SCHEMA: Dict[str, Field] = {
    "keypoints_3d": Field(("T", "J", 3), torch.float32, True, "world frame, mm; NaN where the data lacks a joint"),
    "visibility": Field(("T", "V", "J"), torch.float32, True, "1 where the joint is seen in the view, else 0"),
    "cameras": Field(("V",), Cameras, False, "float64, world mm -> the pixels of the sample's 2D"),
    "camera_ids": Field(("V",), torch.int64, False, "each view's index in its rig"),
    "frame_ids": Field(("T",), torch.int64, False, "each window frame's index among the split's frames (for "
                                                          "per-frame state: ESMformer's error-aware weights)"),
    "flipped": Field((), torch.bool, False, "the sample was mirrored left-right (augmentation)"),
    "meta": Field((), dict, False, "subject, action, sequence, frame (the target frame's index in its take)"),
}
MODE_SCHEMA: Dict[str, Dict[str, Field]] = {
    "keypoints": {
        "keypoints_2d": Field(("T", "V", "J", 2), torch.float32, False, "the 2D input (detections), pixels"),
        "confidence_2d": Field(("T", "V", "J"), torch.float32, False, "the input's confidence in [0, 1]"),
        "keypoints_2d_gt": Field(("T", "V", "J", 2), torch.float32, True, "exact projections of keypoints_3d"),
    },
    "images": {
        "images": Field(("V", "C", "S", "S"), torch.float32, False, "RGB crops, ImageNet-normalised"),
        "image_cameras": Field(("V",), Cameras, False, "the cameras of the full images the crops were cut from"),
        "keypoints_2d_crop": Field(("T", "V", "J", 2), torch.float32, True,
                                   "exact projections of keypoints_3d in the crop (the heatmap targets)"),
    },
}
META_KEYS = ("subject", "action", "sequence", "frame")
TRUTH_KEYS = tuple(sorted({k for k, f in SCHEMA.items() if f.truth} |
                          {k for fields in MODE_SCHEMA.values() for k, f in fields.items() if f.truth}))


def centre_frame(window: torch.Tensor) -> torch.Tensor:
    """The target frame of a batched window: (B, T, ...) -> (B, ...)."""
    return window[:, window.shape[1] // 2]


def unbatched_centre(window: torch.Tensor) -> torch.Tensor:
    """The target frame of one sample's window: (T, ...) -> (...)."""
    return window[window.shape[0] // 2]


def sample_mode(sample) -> str:
    """"images" for a sample (or batch) with images, else "keypoints"."""
    return "images" if "images" in sample else "keypoints"


def exact_2d(sample) -> torch.Tensor:
    """The exact 2D (truth) in the pixels of the sample's ``cameras``, whichever the mode."""
    return sample["keypoints_2d_crop" if "keypoints_2d_crop" in sample else "keypoints_2d_gt"]


def check_sample(sample, where: str, batched: bool = False) -> None:
    """Raise ValueError naming ``where`` and the key if ``sample`` (a batch with ``batched``) is not of the form
    above: a key missing or extra, a wrong type, dtype or shape, or axes that disagree between keys."""
    fields = {**SCHEMA, **MODE_SCHEMA[sample_mode(sample)]}
    missing, extra = sorted(set(fields) - set(sample)), sorted(set(sample) - set(fields))
    if missing or extra:
        raise ValueError(f"{where}: a {sample_mode(sample)} sample must have the keys {sorted(fields)}; "
                         f"missing {missing}, unexpected {extra}")
    sizes = {"J": None, "C": 3}
    lead = 1 if batched else 0
    for key, field in fields.items():
        value = sample[key]
        if field.dtype is dict:
            lacking = [k for k in META_KEYS if k not in value] if isinstance(value, dict) else META_KEYS
            if lacking:
                raise ValueError(f"{where}: '{key}' must be a dict with {list(META_KEYS)}, lacking {list(lacking)}")
            continue
        if field.dtype is Cameras:
            if not isinstance(value, Cameras):
                raise ValueError(f"{where}: '{key}' must be Cameras, got {type(value).__name__}")
            shape = tuple(value.batch_shape)
        else:
            if not isinstance(value, torch.Tensor) or value.dtype != field.dtype:
                got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{where}: '{key}' must be a {field.dtype} tensor, got {got}")
            shape = tuple(value.shape)
        if len(shape) != lead + len(field.shape):
            raise ValueError(f"{where}: '{key}' must have shape {('B',) * lead + field.shape}, got {shape}")
        for axis, size in zip(("B",) * lead + field.shape, shape):
            if isinstance(axis, int):
                if size != axis:
                    raise ValueError(f"{where}: '{key}' must have shape {('B',) * lead + field.shape}, got {shape}")
                continue
            if sizes.get(axis) is None:
                sizes[axis] = size
            elif sizes[axis] != size:
                raise ValueError(f"{where}: '{key}' has {axis} = {size} where the other keys have {sizes[axis]} "
                                 f"(shape {shape})")
