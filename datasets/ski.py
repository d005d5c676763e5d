"""Ski-Pose PTZ-Camera keypoints (``DATASETS.NAME ski``): the skier seen by the 6 pan-tilt-zoom cameras of each
frame together, with one calibration per frame and camera, for the multi-view lifters (ESMformer's Ski-Pose setting).

Files (read by ``datasets.formats.ski_pose``): ``<DATASETS.SKI.ROOT>/train/labels.h5`` for the training and
validation splits, ``<ROOT>/test/labels.h5`` for the test split, as TransFusion-Pose splits the download
(``data/preprocess_skipose.py``: train, and test as its validation set); the skier's centres from
``DATASETS.SKI.CENTERS`` ("" = ``<ROOT>/ski_centers.csv``). ``TRAIN_SUBJECTS`` / ``TEST_SUBJECTS`` choose skiers by
the file's ``subj`` numbers ([] = every skier of the file); ``DATASETS.VAL_SUBJECTS`` holds some training skiers
out as the validation split; ``DATASETS.SKI.CAMERAS`` keeps some of the 6 cameras, as the views in that order ([] =
all, in number order).

Each run (``seq``) becomes one ``KeypointSequence`` named ``seq_<seq:03d>`` (subject: the skier's number, action
"ski") of the frames that every camera of the file has (others are left out, and counted in the log; a window
reaching over one takes its neighbours), in frame order, as TransFusion-Pose groups the six views. Its cameras are
(T, V): each frame's calibration of each crop (256 x 256 px). The input 2D is the file's ``2D``; ``keypoints_2d_gt``
the projections of the world 3D; confidence and visibility 1. The world 3D of a frame is the mean over its views of
``R^T 3D + centre``. The views must agree (the median over the run's frames of their largest deviation from the mean
at most ``MAX_VIEW_SPREAD_MM``) and the file's 2D must lie near the projected 3D (median distance at most
``MAX_REPROJECTION_FRACTION`` of the crop side): either failing means that the labels are not in the conventions read
here, and the run is refused, naming it.
"""
import logging
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch

from core.geometry.cameras import Cameras
from core.registry import DATASETS
from core.skeleton import H36M17, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split, views_of_split
from datasets.formats.ski_pose import IMAGE_SIDE_PX, SkiLabels, SkiPoseError, read_ski_centres, read_ski_labels
from datasets.sequences import KeypointSequence, SequenceSamples, check_sequence

logger = logging.getLogger("epipose")

MAX_VIEW_SPREAD_MM = 20.0
MAX_REPROJECTION_FRACTION = 0.2


def ski_sequences(labels: SkiLabels, centre_keys: np.ndarray, centres_mm: np.ndarray, centres_source: str,
                  subjects: Sequence[str], cameras: Sequence[int] = ()) -> List[KeypointSequence]:
    """The runs of ``subjects`` in ``labels`` as ``KeypointSequence`` objects (see the module docstring);
    ``centre_keys`` (M, 2) seq and frame, ``centres_mm`` (M, 3) the skier's world centres; ``cameras`` the file's
    camera numbers to keep, in that order as the views (empty: every camera, in number order)."""
    camera_ids = np.asarray(cameras, dtype=np.int64) if len(cameras) else np.unique(labels.camera)
    chosen = np.isin(labels.subject.astype(str), list(subjects)) & np.isin(labels.camera, camera_ids)
    low = min(labels.frame.min(), centre_keys[:, 1].min())
    stride = max(labels.frame.max(), centre_keys[:, 1].max()) - low + 1
    codes = centre_keys[:, 0] * stride + centre_keys[:, 1] - low
    order = np.argsort(codes)
    sequences, dropped = [], 0
    for seq in np.unique(labels.seq[chosen]):
        rows = np.flatnonzero(chosen & (labels.seq == seq))
        name = f"seq_{seq:03d}"
        frames, frame_index = np.unique(labels.frame[rows], return_inverse=True)
        view_index = np.argmax(labels.camera[rows, None] == camera_ids[None], axis=1)
        table = np.full((len(frames), len(camera_ids)), -1)
        table[frame_index, view_index] = rows
        if (table >= 0).sum() != len(rows):
            raise DatasetError(f"{labels.path}: {name} has several rows for one frame and camera")
        complete = (table >= 0).all(1)
        dropped += int((~complete).sum())
        if not complete.any():
            continue
        table, frames = table[complete], frames[complete]
        skiers = np.unique(labels.subject[table])
        if len(skiers) != 1:
            raise DatasetError(f"{labels.path}: {name} has several skiers ('subj' {skiers.tolist()}), expected one")
        wanted = seq * stride + frames - low
        found = order[np.minimum(np.searchsorted(codes, wanted, sorter=order), len(order) - 1)]
        missing = np.flatnonzero(codes[found] != wanted)
        if len(missing):
            raise DatasetError(f"{centres_source}: no centre for seq {seq} frame {frames[missing[0]]} "
                               f"({len(missing)} frames of {name} lack one)")
        sequences.append(_run(labels, table, centres_mm[found], name, str(skiers[0])))
    if sequences:
        distance = np.median(np.concatenate([np.linalg.norm(s.keypoints_2d - s.keypoints_2d_gt, axis=-1).ravel()
                                             for s in sequences]))
        logger.info("%s: %d runs, %d frames of all %d cameras (%d frames lacking one left out); the file's 2D lies "
                    "%.2f px (median) from the projected 3D", labels.path, len(sequences),
                    sum(len(s.keypoints_3d) for s in sequences), len(camera_ids), dropped, distance)
    return sequences


def _run(labels: SkiLabels, table: np.ndarray, centres_mm: np.ndarray, name: str, subject: str) -> KeypointSequence:
    """One run from the (T, V) rows ``table`` of ``labels`` and its (T, 3) world centres."""
    R = labels.R[table]                                                          # T, V, 3, 3 world -> camera
    world_views = labels.pose_3d_cam[table] @ R + centres_mm[:, None, None]      # T, V, J, 3: R^T x + centre
    world = world_views.mean(1)
    spread = np.linalg.norm(world_views - world[:, None], axis=-1).max((1, 2))
    if np.median(spread) > MAX_VIEW_SPREAD_MM:
        raise DatasetError(f"{labels.path}: {name}: the views' world poses ('R_cam_2_world' applied to '3D') "
                           f"disagree by {np.median(spread):.1f} mm (median over frames), expected at most "
                           f"{MAX_VIEW_SPREAD_MM} mm: '3D' is not in the cameras' orientation")
    cameras = Cameras.create(labels.K[table], R, labels.t[table], image_size=(IMAGE_SIDE_PX, IMAGE_SIDE_PX))
    views = table.shape[1]
    projected = cameras.project(torch.from_numpy(world)[:, None].expand(-1, views, -1, -1)).numpy()  # T, V, J, 2
    keypoints_2d = labels.keypoints_2d[table]
    distance = np.median(np.linalg.norm(keypoints_2d - projected, axis=-1))
    if not distance <= MAX_REPROJECTION_FRACTION * IMAGE_SIDE_PX:
        raise DatasetError(f"{labels.path}: {name}: '2D' lies {distance:.1f} px (median) from the projection of the "
                           f"world 3D through 'cam_intrinsic', 'cam_position' and 'R_cam_2_world', expected at most "
                           f"{MAX_REPROJECTION_FRACTION * IMAGE_SIDE_PX:.0f} px")
    shape = table.shape + (H36M17.num_joints,)
    sequence = KeypointSequence(name=name, subject=subject, action="ski", keypoints_3d=world.astype(np.float32),
                                cameras=cameras, keypoints_2d=keypoints_2d.astype(np.float32),
                                keypoints_2d_gt=projected.astype(np.float32),
                                confidence_2d=np.ones(shape, np.float32), visibility=np.ones(shape, bool))
    check_sequence(sequence, str(labels.path), H36M17)
    return sequence


@DATASETS.register("ski")
def build_ski(cfg, split: str) -> SequenceSamples:
    d, s = cfg.DATASETS, cfg.DATASETS.SKI
    if d.MODE != "keypoints":
        raise DatasetError("DATASETS.NAME 'ski' holds 2D keypoints only: set DATASETS.MODE keypoints")
    root = Path(s.ROOT)
    if not s.ROOT or not root.is_dir():
        raise DatasetError(f"DATASETS.SKI.ROOT '{root}' is not a folder (the unzipped Ski-PosePTZ-CameraDataset-png, "
                           "with train/labels.h5 and test/labels.h5)")
    centres = Path(s.CENTERS) if s.CENTERS else root / "ski_centers.csv"
    path = root / ("test" if split == "test" else "train") / "labels.h5"
    try:
        labels = read_ski_labels(path)
        centre_keys, centres_mm = read_ski_centres(centres)
    except SkiPoseError as err:
        raise DatasetError(str(err)) from None
    skiers = [str(n) for n in np.unique(labels.subject)]
    key = "TEST_SUBJECTS" if split == "test" else "TRAIN_SUBJECTS"
    listed = [str(n) for n in s.get(key)] or skiers
    unknown = [n for n in listed if n not in skiers]
    if unknown:
        raise DatasetError(f"DATASETS.SKI.{key}: no skier(s) {', '.join(unknown)} in {path}; it has "
                           f"{', '.join(skiers)}")
    subjects = listed if split == "test" else subjects_of_split(cfg, split, listed, [], "DATASETS.SKI")
    cameras = [int(c) for c in s.CAMERAS]
    present = np.unique(labels.camera).tolist()
    if [c for c in cameras if c not in present] or len(set(cameras)) != len(cameras):
        raise DatasetError(f"DATASETS.SKI.CAMERAS {cameras}: expected distinct camera numbers of {path}, which has "
                           f"{present}")
    sequences = ski_sequences(labels, centre_keys, centres_mm, str(centres), subjects, cameras)
    if not sequences:
        raise DatasetError(f"{path}: no frame of skiers {subjects} has every camera")
    return SequenceSamples(sequences, skeleton_of(cfg), layout=H36M17, views=views_of_split(cfg, split),
                           frames=d.FRAMES, stride=stride_of_split(cfg, split), flip=d.FLIP and split == "train")
