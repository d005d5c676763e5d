"""Calibrated multi-camera footage, read and checked: the input of ``scripts/demo_multiview.py``.

A calibration file (aniposelib / Pose2Sim TOML, Human3.6M JSON, CMU Panoptic JSON; ``datasets.formats.calibration``),
one 2D keypoint source per camera (an OpenPose JSON folder or a COCO-style keypoint JSON;
``datasets.formats.keypoints2d``) mapped to the Human3.6M joints, and optionally one video or image folder per
camera. Cameras without keypoints or videos, disagreeing frame counts (naming the frames an OpenPose folder has no
file for) and rigs that cannot triangulate are refused.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from core.geometry.cameras import Cameras
from core.skeleton import H36M17
from core.video import FrameSource
from datasets.formats.calibration import read_calibration
from datasets.formats.keypoints2d import (approximated_joints, frame_number, openpose_files, read_coco_keypoints,
                                          read_openpose_folder, to_h36m)


class FootageError(ValueError):
    """The footage's calibration, keypoints and videos do not fit together."""


@dataclass
class Footage:
    cameras: Cameras                   # (V,) float64, world mm
    camera_names: List[str]
    keypoints_2d: np.ndarray           # (T, V, P, 17, 2) distorted pixels, NaN where missing
    confidence: np.ndarray             # (T, V, P, 17), 0 where missing
    layout: str
    approximated: List[str]            # Human3.6M joints made from other keypoints
    videos: Optional[List[FrameSource]] = None

    @property
    def num_frames(self) -> int:
        return len(self.keypoints_2d)


def read_footage_cameras(calibration, keypoints: Sequence = (), videos: Sequence = (),
                         camera_names: Sequence[str] = (), subject: str = "", toml_units: str = "m"):
    """The calibration's cameras (``Cameras``, names) in the order of ``camera_names`` (default: every camera of
    the file, in its order), checked against ``keypoints`` and ``videos`` (one path per camera, or none)."""
    cameras, names = read_calibration(calibration, camera_names, subject, toml_units)
    if len(names) < 2:
        raise FootageError(f"calibration '{calibration}': triangulation needs at least 2 cameras, got {len(names)}")
    for kind, paths in (("keypoint source", keypoints), ("video", videos)):
        if paths and len(paths) != len(names):
            lacking = names[len(paths):]
            detail = f"; without one: {', '.join(lacking)}" if lacking else ""
            raise FootageError(f"{len(names)} cameras ({', '.join(names)}) but {len(paths)} {kind}s were given, one "
                               f"per camera in that order expected{detail}")
    return cameras, names


def read_footage(calibration, keypoints: Sequence, layout: str = "auto", videos: Sequence = (),
                 camera_names: Sequence[str] = (), subject: str = "", toml_units: str = "m") -> Footage:
    """Read and check the inputs: ``keypoints`` and ``videos`` hold one path per camera, in the order of
    ``camera_names`` (default: every camera of the calibration, in the file's order)."""
    cameras, names = read_footage_cameras(calibration, keypoints, videos, camera_names, subject, toml_units)
    if not keypoints:
        raise FootageError(f"no 2D keypoints given: one source per camera ({', '.join(names)}) expected")
    per_view, layouts = [], set()
    for name, path in zip(names, keypoints):
        array, found = _read_keypoints(Path(path), layout)
        per_view.append(array)
        layouts.add(found)
    if len({len(a) for a in per_view}) != 1:
        raise FootageError(_frame_mismatch(names, keypoints, per_view))
    if len(layouts) != 1:
        raise FootageError(f"the cameras' keypoint sources have different layouts: {sorted(layouts)}")
    layout = layouts.pop()
    num_frames, most = per_view[0].shape[0], max(a.shape[1] for a in per_view)
    points = np.full((num_frames, len(names), most, len(H36M17.joint_names), 2), np.nan)
    confidence = np.zeros(points.shape[:-1])
    for v, array in enumerate(per_view):
        points[:, v, :array.shape[1]], confidence[:, v, :array.shape[1]] = to_h36m(array, layout)
    sources = None
    if videos:
        sources = [FrameSource(path) for path in videos]
        counts = {name: len(s) for name, s in zip(names, sources)}
        if any(c != num_frames for c in counts.values()):
            raise FootageError(f"the videos' frame counts {counts} disagree with the keypoints' {num_frames} frames")
    return Footage(cameras, list(names), points, confidence, layout, approximated_joints(layout), sources)


def _read_keypoints(path: Path, layout: str):
    return read_openpose_folder(path, layout) if path.is_dir() else read_coco_keypoints(path, layout)


def _frame_mismatch(names: Sequence[str], paths: Sequence, per_view: Sequence[np.ndarray]) -> str:
    """The error of keypoint sources of different lengths: the frame counts, and for OpenPose folders the frames
    (by the numbers in the file names) that each camera lacks and another has."""
    counts = {name: len(a) for name, a in zip(names, per_view)}
    message = f"the cameras' keypoint sources disagree on the number of frames: {counts}"
    if not all(Path(p).is_dir() for p in paths):
        return message
    numbers = [{frame_number(f) for f in openpose_files(p)} for p in paths]
    every = set().union(*numbers)
    lacking = [f"{name} ('{path}') has no file for frame(s) {_some(sorted(every - have))}"
               for name, path, have in zip(names, paths, numbers) if every - have]
    return "; ".join([message, *lacking])


def _some(values: Sequence[int], shown: int = 5) -> str:
    more = f", ... ({len(values)} in all)" if len(values) > shown else ""
    return ", ".join(map(str, values[:shown])) + more
