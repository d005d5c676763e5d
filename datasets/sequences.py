"""Multi-view keypoint sequences and the windowed samples drawn from them, shared by every keypoint dataset
(the synthetic world, Human3.6M in the VideoPose3D format, Ski-Pose).

A ``KeypointSequence`` is one take: the 3D motion and, for each of its V calibrated views, the 2D input
keypoints, their exact projections, confidences and visibility. Its cameras are one rig for the whole take (V,) or,
for cameras that pan, tilt and zoom (Ski-Pose), one calibration per frame (T, V); a sample carries the cameras of its
target frame. ``SequenceSamples`` makes samples of
every ``stride``-th frame: a window of ``frames`` frames centred on it (edge-padded at the ends of the
take) with all views (``views="all"``: the cameras of one frame together, never grouped by row order)
or one view per sample (``"single"``), in the joint layout ``skeleton`` (``DATASETS.SKELETON``: the takes' own
``layout``, or any layout whose joints it has, reordered by ``core.skeleton.joint_map``). Samples have the keypoint form of ``core.sample_schema``: the 2D input in
the pixels of the full image, its exact projections, confidences and visibility, the world 3D (NaN where a joint
is missing from the data: counted as ``num_missing_joints`` and reported when the samples are made,
``core.missing_joints``); in single-view mode ``meta["sequence"]`` ends in ``/camN``, so that metrics pair the
frames of one 2D track.

With ``flip=True`` (training augmentation), each sample is mirrored with probability 1/2 (torch's RNG,
so the trainer's per-epoch seeding makes it reproducible): the world pose, the 2D of every view and the
cameras are mirrored together and left and right swapped (``core.geometry.mirror``), so the 2D, the 3D
and the calibration stay consistent in every view; each window frame's 2D is mirrored through that frame's cameras.
"""
import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from core.geometry.cameras import Cameras
from core.geometry.mirror import mirror_cameras, mirror_joints_2d, mirror_joints_3d, swap_left_right
from core.skeleton import Skeleton, SkeletonError, joint_map
from datasets import DatasetError

logger = logging.getLogger("epipose")

VIEW_MODES = ("all", "single")
# the joint axis of each per-joint key of a sample (``core.sample_schema``)
JOINT_AXES = {"keypoints_3d": -2, "visibility": -1, "keypoints_2d": -2, "keypoints_2d_gt": -2, "confidence_2d": -1,
              "keypoints_2d_crop": -2}


@dataclass
class KeypointSequence:
    name: str
    subject: str
    action: str
    keypoints_3d: np.ndarray        # (T, J, 3) float32 world mm
    cameras: Cameras                # (V,) one rig, or (T, V) one calibration per frame
    keypoints_2d: np.ndarray        # (T, V, J, 2) float32 input pixels
    keypoints_2d_gt: np.ndarray     # (T, V, J, 2) float32 exact projections
    confidence_2d: np.ndarray       # (T, V, J) float32
    visibility: np.ndarray          # (T, V, J) bool


def check_sequence(seq: KeypointSequence, source: str, skeleton: Skeleton) -> None:
    """Shapes agree with each other and with ``skeleton`` and the 2D is finite; ``source`` names the file or key in
    the error."""
    frames, joints = seq.keypoints_3d.shape[:2]
    if joints != skeleton.num_joints:
        raise DatasetError(f"{source}: {seq.name} has {joints} joints, expected the {skeleton.num_joints} of "
                           f"'{skeleton.name}'")
    views = seq.cameras.batch_shape[-1]
    if tuple(seq.cameras.batch_shape) not in ((views,), (frames, views)):
        raise DatasetError(f"{source}: {seq.name} cameras have batch shape {tuple(seq.cameras.batch_shape)}, expected "
                           f"(V,) or ({frames}, V)")
    expected = {"keypoints_2d": (frames, views, joints, 2), "keypoints_2d_gt": (frames, views, joints, 2),
                "confidence_2d": (frames, views, joints), "visibility": (frames, views, joints)}
    for key, shape in expected.items():
        if getattr(seq, key).shape != shape:
            raise DatasetError(f"{source}: {seq.name} {key} has shape {getattr(seq, key).shape}, expected {shape}")
    bad = np.argwhere(~np.isfinite(seq.keypoints_2d).all(-1))
    if len(bad):
        frame, view, joint = bad[0]
        raise DatasetError(f"{source}: {seq.name} has {len(bad)} NaN or infinite input 2D joints (the first: frame "
                           f"{frame}, view {view}, joint {skeleton.joint_names[joint]}); every input joint needs coordinates")
    if np.isinf(seq.keypoints_3d).any():
        raise DatasetError(f"{source}: {seq.name} has infinite 3D coordinates (a missing joint is NaN)")


class SequenceSamples(Dataset):
    """Windowed samples of ``sequences`` (see the module docstring); every take must have the same V."""

    def __init__(self, sequences: Sequence[KeypointSequence], skeleton: Skeleton, views: str = "all", frames: int = 1,
                 stride: int = 1, flip: bool = False, layout: Skeleton = None):
        if views not in VIEW_MODES:
            raise DatasetError(f"DATASETS.VIEWS: unknown value '{views}'; expected one of {', '.join(VIEW_MODES)}")
        if frames < 1 or stride < 1:
            raise DatasetError(f"DATASETS.FRAMES and the strides must be >= 1, got {frames} frames, stride {stride}")
        if not sequences:
            raise DatasetError("no sequences to draw samples from (check the subjects and actions of the split)")
        view_counts = sorted({s.cameras.batch_shape[-1] for s in sequences})
        if len(view_counts) > 1:
            raise DatasetError(f"every take of a split must have the same number of views, found {view_counts}")
        layout = layout or skeleton
        joint_counts = sorted({s.keypoints_3d.shape[1] for s in sequences})
        if joint_counts != [layout.num_joints]:
            raise DatasetError(f"the takes have {joint_counts} joints, expected the {layout.num_joints} of skeleton "
                               f"'{layout.name}'")
        try:
            self.joint_index = None if layout == skeleton else torch.from_numpy(joint_map(layout, skeleton))
        except SkeletonError as err:
            raise DatasetError(f"DATASETS.SKELETON '{skeleton.name}': the data cannot give it ({err})") from None
        self.sequences: List[KeypointSequence] = list(sequences)
        self.skeleton = skeleton
        self.views, self.frames, self.flip = views, frames, flip
        self.num_views = view_counts[0]
        starts = [np.arange(0, len(seq.keypoints_3d), stride) for seq in self.sequences]
        self.seq_index = np.concatenate([np.full(len(f), s) for s, f in enumerate(starts)])
        self.frame_index = np.concatenate(starts)
        lengths = [len(seq.keypoints_3d) for seq in self.sequences]
        joints = self.sequences[0].keypoints_3d.shape[1]
        self.num_missing_joints = int(sum(np.isnan(seq.keypoints_3d).any(-1).sum() for seq in self.sequences))
        if self.num_missing_joints:
            no_root = sum(int(np.isnan(seq.keypoints_3d[:, layout.root]).any(-1).sum()) for seq in self.sequences)
            logger.warning("%d of %d target joints are missing (NaN in the 3D), %d of them the root (%s): they are "
                           "left out of the losses and the metrics, and a frame without its root has no root-relative "
                           "target", self.num_missing_joints, sum(lengths) * joints, no_root,
                           layout.joint_names[layout.root])
        self.first_frame_id = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.num_frames = int(sum(lengths))

    def __len__(self) -> int:
        n = len(self.seq_index)
        return n * self.num_views if self.views == "single" else n

    def locate(self, index: int):
        """(frame sample index, view indices, sequence number, target frame, window frame indices)."""
        if index < 0 or index >= len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        views = np.arange(self.num_views)
        if self.views == "single":
            index, view = divmod(index, self.num_views)
            views = np.array([view])
        number = int(self.seq_index[index])
        frame = int(self.frame_index[index])
        last = len(self.sequences[number].keypoints_3d) - 1
        window = np.clip(frame + np.arange(self.frames) - self.frames // 2, 0, last)
        return index, views, number, frame, window

    def sample_sequences(self) -> np.ndarray:
        """(len(self),) the ``meta["sequence"]`` of every sample, without loading the samples."""
        names = np.array([seq.name for seq in self.sequences], dtype=object)[self.seq_index]
        if self.views != "single":
            return names
        views = np.tile([f"/cam{v}" for v in range(self.num_views)], len(names))
        return np.repeat(names, self.num_views) + views

    def base_sample(self, number: int, frame: int, window: np.ndarray, views: np.ndarray) -> Dict:
        """The keys every sample has: 3D, visibility, camera ids, frame ids and meta."""
        seq = self.sequences[number]
        return {
            "keypoints_3d": torch.from_numpy(seq.keypoints_3d[window]),
            "visibility": torch.from_numpy(seq.visibility[window][:, views].astype(np.float32)),
            "camera_ids": torch.from_numpy(views),
            "frame_ids": torch.from_numpy(self.first_frame_id[number] + window),
            "flipped": torch.tensor(False),
            "meta": {"subject": seq.subject, "action": seq.action, "frame": frame,
                     "sequence": f"{seq.name}/cam{views[0]}" if self.views == "single" else seq.name},
        }

    def in_skeleton(self, sample: Dict) -> Dict:
        """``sample`` with its joints in ``self.skeleton`` (the takes' ``layout`` reordered and subset)."""
        if self.joint_index is None:
            return sample
        return {key: value.index_select(JOINT_AXES[key], self.joint_index) if key in JOINT_AXES else value
                for key, value in sample.items()}

    def __getitem__(self, index: int) -> Dict:
        _, views, number, frame, window = self.locate(index)
        sample = self.base_sample(number, frame, window, views)
        seq = self.sequences[number]
        window_cameras = frame_cameras(seq.cameras, window, views)
        sample.update(keypoints_2d=torch.from_numpy(seq.keypoints_2d[window][:, views]),
                      keypoints_2d_gt=torch.from_numpy(seq.keypoints_2d_gt[window][:, views]),
                      confidence_2d=torch.from_numpy(seq.confidence_2d[window][:, views]),
                      cameras=window_cameras[self.frames // 2])
        sample = self.in_skeleton(sample)
        if self.flip and bool(torch.rand(()) < 0.5):
            sample = mirror_sample(sample, self.skeleton, window_cameras)
        return sample


def frame_cameras(cameras: Cameras, frames: np.ndarray, views: np.ndarray) -> Cameras:
    """(len(frames), len(views)) the cameras of ``views`` at ``frames`` of a take whose ``cameras`` are one rig (V,)
    or one calibration per frame (T, V)."""
    chosen = cameras[..., torch.from_numpy(views)]
    if len(chosen.batch_shape) == 1:
        return chosen.unsqueeze(0).expand(len(frames), len(views))
    return chosen[torch.from_numpy(frames)]


def mirror_sample(sample: Dict, skeleton: Skeleton, window_cameras: Cameras = None) -> Dict:
    """The left-right mirror image of a keypoint sample (or batch): world 3D, every view's 2D, the cameras and
    the per-joint values, with left and right swapped (``core.geometry.mirror``); the keys it lacks (a batch of
    inputs alone, without the truth) stay absent. The 2D of window frame t is mirrored through
    ``window_cameras[..., t, :]`` (the cameras of every window frame, for calibrations that change per frame), by
    default through the sample's cameras (those of its target frame) in every frame."""
    cameras = sample["cameras"]
    per_frame = cameras.unsqueeze(len(cameras.batch_shape) - 1) if window_cameras is None else window_cameras
    mirrors = {"keypoints_3d": lambda x: mirror_joints_3d(x, skeleton),
               "keypoints_2d": lambda x: mirror_joints_2d(x.to(cameras.dtype), per_frame, skeleton).to(x.dtype),
               "confidence_2d": lambda x: swap_left_right(x, skeleton, -1),
               "visibility": lambda x: swap_left_right(x, skeleton, -1)}
    mirrors["keypoints_2d_gt"] = mirrors["keypoints_2d"]
    mirrored = dict(sample)
    mirrored.update({key: mirror(sample[key]) for key, mirror in mirrors.items() if key in sample})
    mirrored["cameras"] = mirror_cameras(cameras)
    if "flipped" in sample:
        mirrored["flipped"] = ~sample["flipped"]
    return mirrored
