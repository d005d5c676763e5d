"""CMU Panoptic Studio's 3D body annotations: the ``hdPose3d_stage1_coco19`` folder of a sequence.

One JSON file per HD frame, ``body3DScene_<frame:08d>.json`` (the Panoptic toolbox's README, "Skeleton Output
Format"): ``{"version", "univTime", "fpsType", "bodies": [{"id": int, "joints19": [x1, y1, z1, c1, ..., x19, y19,
z19, c19]}]}``, centimetres in the studio's world frame (y down), the joints in the order of
``core.skeleton.PANOPTIC19`` and ``c`` each joint's reconstruction confidence. A body's ``id`` follows one person
through time within a sequence (the same person may change id). A frame without a file, or without a body, has no
person; a frame may hold several bodies.

``read_panoptic_bodies`` reads every file of a folder into one record per (frame, body): the coordinates in
millimetres as the file has them, the confidences, and ``keypoints_3d`` where the joints whose confidence is below
``min_confidence`` are NaN (missing from the truth). The default threshold, 0.1, is the one with which the Panoptic
toolbox draws a joint (``python/demo_3Dkeypoints_reprojection_hd.py``: ``valid = skel[3, :] > 0.1``) and VoxelPose
keeps one (``lib/dataset/panoptic.py``: ``joints_vis = pose3d[:, -1] > 0.1``). ``body_tracks`` cuts the records into
tracks: one body id over consecutive frames.

Files are checked as they are read: a file that is not JSON, lacks ``bodies``, ``id`` or ``joints19``, holds
``joints19`` of another length or with NaN or infinite numbers, or repeats a body id raises
``PanopticFormatError`` naming the file and the key. The older ``joints15`` (mpi15) annotations are refused by name.

``Y_DOWN_TO_Z_UP`` turns the studio's world (y down) into EpiPose's (z up): ``(x, y, z) -> (x, z, -y)``, a rotation,
so left stays left; ``to_z_up`` applies it to points and to the cameras that see them.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch

from core.geometry.cameras import Cameras
from core.skeleton import PANOPTIC19

POSE_FOLDER = "hdPose3d_stage1_coco19"
FILE_PATTERN = re.compile(r"body3DScene_(\d+)\.json")
CM_TO_MM = 10.0
MIN_CONFIDENCE = 0.1
Y_DOWN_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
NUMBERS = 4 * PANOPTIC19.num_joints


class PanopticFormatError(ValueError):
    """A Panoptic annotation file or folder that cannot be read (names the file and the key)."""


@dataclass
class PanopticBodies:
    """N body records of one sequence, sorted by frame and body id."""
    frames: np.ndarray          # (N,) int64 HD frame index (from the file name)
    body_ids: np.ndarray        # (N,) int64 the file's ``id``
    points_mm: np.ndarray       # (N, 19, 3) float32 the file's coordinates, millimetres, studio frame (y down)
    confidence: np.ndarray      # (N, 19) float32 the file's per-joint confidence
    keypoints_3d: np.ndarray    # (N, 19, 3) float32 ``points_mm`` with NaN where confidence < min_confidence

    def select(self, rows: np.ndarray) -> "PanopticBodies":
        return PanopticBodies(self.frames[rows], self.body_ids[rows], self.points_mm[rows], self.confidence[rows],
                              self.keypoints_3d[rows])


def read_body_scene(path) -> Tuple[np.ndarray, np.ndarray]:
    """(ids (B,) int64, joints (B, 19, 4) float64: x, y, z in cm and the confidence) of one ``body3DScene`` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as err:
        raise PanopticFormatError(f"{path}: cannot be read ({err.strerror})") from None
    except (ValueError, RecursionError) as err:   # JSONDecodeError, UnicodeDecodeError, too long integers
        raise PanopticFormatError(f"{path}: not valid JSON ({str(err)[:80]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("bodies"), list):
        raise PanopticFormatError(f"{path}: expected an object with a list 'bodies' (hdPose3d_stage1_coco19 "
                                  "format)")
    ids, joints = [], []
    for i, body in enumerate(data["bodies"]):
        where = f"{path}: bodies[{i}]"
        if not isinstance(body, dict):
            raise PanopticFormatError(f"{where}: expected an object with 'id' and 'joints19'")
        if "joints19" not in body:
            older = " (mpi15 annotations are not supported: use hdPose3d_stage1_coco19)" if "joints15" in body else ""
            raise PanopticFormatError(f"{where}: no key 'joints19'{older}")
        body_id = body.get("id")
        if isinstance(body_id, bool) or not isinstance(body_id, int) or not 0 <= body_id < 2 ** 31:
            raise PanopticFormatError(f"{where}.id: expected a non-negative integer, got {body_id!r:.40}")
        try:
            joints19 = np.asarray(body["joints19"], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            joints19 = None
        if joints19 is None or joints19.shape != (NUMBERS,):
            got = "values that are not numbers" if joints19 is None else f"shape {joints19.shape}"
            raise PanopticFormatError(f"{where}.joints19: expected {NUMBERS} numbers (19 joints x (x, y, z, "
                                      f"confidence)), got {got}")
        ids.append(body_id)
        joints.append(joints19)
    joints = np.stack(joints).reshape(-1, PANOPTIC19.num_joints, 4) if joints else \
        np.zeros((0, PANOPTIC19.num_joints, 4))
    bad = np.flatnonzero(~np.isfinite(joints).all((1, 2)))
    if len(bad):
        raise PanopticFormatError(f"{path}: bodies[{bad[0]}].joints19 has NaN or infinite values")
    ids = np.asarray(ids, dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise PanopticFormatError(f"{path}: bodies[].id repeats a body id ({sorted(ids.tolist())})")
    return ids, joints


def scene_files(folder) -> List[Tuple[int, Path]]:
    """(frame, path) of every ``body3DScene_<frame>.json`` in ``folder``, by frame."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PanopticFormatError(f"{folder}: not a folder (the {POSE_FOLDER} annotations of a sequence expected)")
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := FILE_PATTERN.fullmatch(p.name)))
    if not files:
        raise PanopticFormatError(f"{folder}: no body3DScene_<frame>.json files")
    return files


def read_panoptic_bodies(folder, min_confidence: float = MIN_CONFIDENCE) -> PanopticBodies:
    """Every body of every frame of a ``hdPose3d_stage1_coco19`` folder (see the module docstring)."""
    files = scene_files(folder)
    scenes = [read_body_scene(path) for _, path in files]
    counts = np.array([len(ids) for ids, _ in scenes], dtype=np.int64)
    frames = np.repeat(np.array([frame for frame, _ in files], dtype=np.int64), counts)
    body_ids = np.concatenate([ids for ids, _ in scenes])
    joints = np.concatenate([j for _, j in scenes])
    points = (joints[..., :3] * CM_TO_MM).astype(np.float32)
    confidence = joints[..., 3].astype(np.float32)
    truth = np.where((confidence >= min_confidence)[..., None], points, np.float32(np.nan))
    order = np.lexsort((body_ids, frames))
    return PanopticBodies(frames, body_ids, points, confidence, truth).select(order)


def body_tracks(bodies: PanopticBodies) -> List[PanopticBodies]:
    """The records cut into tracks, each one body id over consecutive frames, ordered by id then first frame."""
    order = np.lexsort((bodies.frames, bodies.body_ids))
    ids, frames = bodies.body_ids[order], bodies.frames[order]
    starts = np.flatnonzero((np.diff(ids) != 0) | (np.diff(frames) != 1)) + 1
    return [bodies.select(rows) for rows in np.split(order, starts) if len(rows)]


def to_z_up(points_mm: np.ndarray, cameras: Cameras) -> Tuple[np.ndarray, Cameras]:
    """Points (..., 3) and the cameras that see them, from the studio's y-down world to EpiPose's z-up one
    (``Y_DOWN_TO_Z_UP``); projections do not change."""
    rotation = torch.from_numpy(Y_DOWN_TO_Z_UP).to(cameras.R)
    turned = Cameras(cameras.K, cameras.R @ rotation.T, cameras.t, cameras.dist, cameras.image_size)
    return (points_mm @ Y_DOWN_TO_Z_UP.T.astype(points_mm.dtype)), turned
