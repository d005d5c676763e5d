"""CMU Panoptic Studio, multi-view keypoints from its 3D body annotations (``DATASETS.NAME panoptic``).

Files under ``DATASETS.PANOPTIC.ROOT``, one folder per sequence as the Panoptic toolbox downloads them:
``<seq>/calibration_<seq>.json`` (read by ``datasets.formats.calibration.read_panoptic_cameras``, cm -> mm) and
``<seq>/hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json`` (``datasets.formats.panoptic``). ``CAMERAS`` names the
HD cameras ("00_12": panel 0, node 12) in the order of the views.

Each person is one track per run of consecutive frames with the same body id (``body_tracks``), a
``KeypointSequence`` named ``<seq>/body<id>/<first frame:08d>`` whose subject and action are the sequence: several
people in a frame make several samples, one person each, as learnable triangulation's models take them (one
skeleton per sample; multi-person methods such as VoxelPose put every body of a frame in one sample).
The world is turned from the studio's y-down frame to EpiPose's z-up one (``to_z_up``: the cameras with it). The 2D
input is the projection of the annotation's coordinates through the chosen cameras, with the annotation's joint
confidence (clipped to [0, 1]) in every view, so that a joint the studio did not reconstruct still has a position
but a low weight; the 3D truth leaves out (NaN) the joints whose confidence is below ``MIN_CONFIDENCE``, and
``keypoints_2d_gt`` is its projection. Visibility is 1 (the annotations do not say what each camera sees), except
for a joint behind a camera, which has no pixel there: its input is the image centre with confidence 0 and
visibility 0 (counted in a warning).

``TRAIN_SEQUENCES`` / ``TEST_SEQUENCES`` default to the range-of-motion split of the only public port of learnable
triangulation to Panoptic (Samleo8/learnable-triangulation-pytorch, ``mvn/datasets/cmupanoptic.py``: 171026_pose1-3
and 171204_pose1-4 for training, 171204_pose5 and 171204_pose6 for validation), and ``CAMERAS`` to the first four HD
cameras of VoxelPose's Panoptic protocol (microsoft/voxelpose-pytorch, ``lib/dataset/panoptic.py``): the four
cameras of learnable triangulation's published figures are not public. ``DATASETS.VAL_SUBJECTS`` holds training
sequences out as the validation split. Samples come from ``datasets.sequences.SequenceSamples`` (skeleton
``panoptic19``: ``DATASETS.SKELETON`` must be it or a layout whose joints it has).
"""
import logging
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch

from core.registry import DATASETS
from core.skeleton import PANOPTIC19, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split, views_of_split
from datasets.formats.calibration import CalibrationError, read_panoptic_cameras
from datasets.formats.panoptic import MIN_CONFIDENCE, POSE_FOLDER, PanopticFormatError, body_tracks, \
    read_panoptic_bodies, to_z_up
from datasets.sequences import KeypointSequence, SequenceSamples, check_sequence

logger = logging.getLogger("epipose")


def load_panoptic_sequences(root, sequences: Sequence[str], cameras: Sequence[str],
                            min_confidence: float = MIN_CONFIDENCE) -> List[KeypointSequence]:
    """Every track of ``sequences`` seen by ``cameras`` as a ``KeypointSequence`` (see the module docstring)."""
    root = Path(root)
    if not str(root) or not root.is_dir():
        raise DatasetError(f"DATASETS.PANOPTIC.ROOT '{root}' is not a folder (it holds one folder per sequence, "
                           f"with calibration_<seq>.json and {POSE_FOLDER}/)")
    if not cameras:
        raise DatasetError("DATASETS.PANOPTIC.CAMERAS is empty: name the HD cameras, e.g. ['00_03', '00_06']")
    tracks = []
    for name in sequences:
        folder = root / name
        if not folder.is_dir():
            known = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise DatasetError(f"DATASETS.PANOPTIC.ROOT '{root}' has no sequence '{name}'; its folders: "
                               f"{', '.join(known[:20]) or 'none'}")
        try:
            rig, _ = read_panoptic_cameras(folder / f"calibration_{name}.json", list(cameras))
            bodies = read_panoptic_bodies(folder / POSE_FOLDER, min_confidence)
        except CalibrationError as err:
            raise DatasetError(f"DATASETS.PANOPTIC.CAMERAS: {err}") from None
        except PanopticFormatError as err:
            raise DatasetError(str(err)) from None
        made = [_sequence(name, track, rig, str(folder / POSE_FOLDER)) for track in body_tracks(bodies)]
        behind = sum(int((~seq.visibility).sum()) for seq in made)
        if behind:
            logger.warning("%s: %d joint views lie behind their camera: input at the image centre with confidence 0 "
                           "and visibility 0", folder / POSE_FOLDER, behind)
        tracks += made
    if not tracks:
        raise DatasetError(f"DATASETS.PANOPTIC: sequences {list(sequences)} under '{root}' hold no body")
    return tracks


def _sequence(name: str, track, rig, source: str) -> KeypointSequence:
    points, cameras = to_z_up(track.points_mm, rig)
    truth, _ = to_z_up(track.keypoints_3d, rig)
    views, (frames, joints) = len(cameras), truth.shape[:2]

    def project(world: np.ndarray) -> np.ndarray:               # (T, J, 3) -> (T, V, J, 2)
        flat = torch.from_numpy(world).to(cameras.dtype).reshape(1, -1, 3).expand(views, -1, -1)
        return cameras.project(flat).reshape(views, frames, joints, 2).transpose(0, 1).float().numpy()

    inputs = project(points)
    behind = ~np.isfinite(inputs).all(-1)                        # (T, V, J) joints behind a camera: no pixel
    centres = (cameras.image_size.float().numpy() / 2)[None, :, None]
    confidence = np.clip(track.confidence, 0.0, 1.0)[:, None].repeat(views, axis=1)
    seq = KeypointSequence(name=f"{name}/body{track.body_ids[0]}/{track.frames[0]:08d}", subject=name, action=name,
                           keypoints_3d=np.ascontiguousarray(truth, dtype=np.float32), cameras=cameras,
                           keypoints_2d=np.where(behind[..., None], centres, inputs), keypoints_2d_gt=project(truth),
                           confidence_2d=np.where(behind, 0.0, confidence).astype(np.float32), visibility=~behind)
    check_sequence(seq, source, PANOPTIC19)
    return seq


@DATASETS.register("panoptic")
def build_panoptic(cfg, split: str) -> SequenceSamples:
    d, p = cfg.DATASETS, cfg.DATASETS.PANOPTIC
    if d.MODE != "keypoints":
        raise DatasetError("DATASETS.NAME 'panoptic' reads keypoints only (the HD images are not read yet): set "
                           "DATASETS.MODE keypoints")
    sequences = subjects_of_split(cfg, split, p.TRAIN_SEQUENCES, p.TEST_SEQUENCES, "DATASETS.PANOPTIC",
                                  train_key="TRAIN_SEQUENCES")
    tracks = load_panoptic_sequences(p.ROOT, sequences, list(p.CAMERAS), p.MIN_CONFIDENCE)
    return SequenceSamples(tracks, skeleton_of(cfg), layout=PANOPTIC19, views=views_of_split(cfg, split),
                           frames=d.FRAMES, stride=stride_of_split(cfg, split), flip=d.FLIP and split == "train")
