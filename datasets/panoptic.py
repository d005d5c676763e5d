"""CMU Panoptic Studio, multi-view keypoints or images with its 3D body annotations (``DATASETS.NAME panoptic``).

Files under ``DATASETS.PANOPTIC.ROOT``, one folder per sequence as the Panoptic toolbox downloads them:
``<seq>/calibration_<seq>.json`` (read by ``datasets.formats.calibration.read_panoptic_cameras``, cm -> mm),
``<seq>/hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json`` (``datasets.formats.panoptic``) and, in images mode,
the HD frames ``<seq>/hdImgs/<cam>/<cam>_<frame:08d>.jpg`` as the toolbox's ``scripts/hdImgsExtractor.sh`` extracts
them from ``hdVideos/hd_<cam>.mp4`` (ffmpeg numbering from 0, the frame number of ``body3DScene``). ``CAMERAS``
names the HD cameras ("00_12": panel 0, node 12) in the order of the views.

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

Images mode (``PanopticImages``) gives the image form of ``core.sample_schema``, as the Human3.6M image datasets do:
for each view the target frame's HD image cut to a square around the person, resized to ``IMAGE_SIZE`` and folded
into the view's K (``datasets.crops``); training crops are zoomed and rotated with ``DATASETS.AUGMENT``. The square
is centred on the box of the 3D truth's projection in that view, its side ``CROP_SCALE`` x the box's larger side
(the joints stop at the ankles and eyes: the margin takes in the feet and the top of the head); joints without
truth are left out of the box, and a view that sees no joint with truth is cropped whole. ``keypoints_2d_crop`` is
the truth projected into the crops (NaN where a joint has none) and ``visibility`` is 0 outside the crop. The
images that the samples need are looked for when the dataset is made (the first missing one is named); an image
that cannot be decoded, or whose size is not the calibration's, is named when it is read.
"""
import logging
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch

from core.images import to_image_tensor
from core.registry import DATASETS
from core.skeleton import PANOPTIC19, Skeleton, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split, views_of_split
from datasets.crops import cut_crops, inside_crop, joints_box, random_zoom_rotation, read_rgb
from datasets.formats.calibration import CalibrationError, read_panoptic_cameras
from datasets.formats.panoptic import MIN_CONFIDENCE, POSE_FOLDER, PanopticFormatError, body_tracks, \
    read_panoptic_bodies, to_z_up
from datasets.sequences import KeypointSequence, SequenceSamples, check_sequence

logger = logging.getLogger("epipose")

IMAGE_FOLDER = "hdImgs"


def hd_image_path(folder: Path, camera: str, frame: int) -> Path:
    """The HD frame ``frame`` of ``camera`` in a sequence's folder, as the Panoptic toolbox extracts it."""
    return folder / IMAGE_FOLDER / camera / f"{camera}_{frame:08d}.jpg"


def load_panoptic_sequences(root, sequences: Sequence[str], cameras: Sequence[str],
                            min_confidence: float = MIN_CONFIDENCE) -> Tuple[List[KeypointSequence],
                                                                             List[Tuple[Path, int]]]:
    """Every track of ``sequences`` seen by ``cameras`` as a ``KeypointSequence`` (see the module docstring), and
    where each one's frames are: (its sequence's folder, its first HD frame number)."""
    root = Path(root)
    if not str(root) or not root.is_dir():
        raise DatasetError(f"DATASETS.PANOPTIC.ROOT '{root}' is not a folder (it holds one folder per sequence, "
                           f"with calibration_<seq>.json and {POSE_FOLDER}/)")
    if not cameras:
        raise DatasetError("DATASETS.PANOPTIC.CAMERAS is empty: name the HD cameras, e.g. ['00_03', '00_06']")
    tracks, starts = [], []
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
        cut = body_tracks(bodies)
        made = [_sequence(name, track, rig, str(folder / POSE_FOLDER)) for track in cut]
        starts += [(folder, int(track.frames[0])) for track in cut]
        behind = sum(int((~seq.visibility).sum()) for seq in made)
        if behind:
            logger.warning("%s: %d joint views lie behind their camera: input at the image centre with confidence 0 "
                           "and visibility 0", folder / POSE_FOLDER, behind)
        tracks += made
    if not tracks:
        raise DatasetError(f"DATASETS.PANOPTIC: sequences {list(sequences)} under '{root}' hold no body")
    return tracks, starts


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


class PanopticImages(SequenceSamples):
    """Image samples of Panoptic tracks (see the module docstring): ``starts`` says where each track's frames are
    (``load_panoptic_sequences``), ``cameras`` names the views."""

    def __init__(self, sequences: Sequence[KeypointSequence], starts: Sequence[Tuple[Path, int]],
                 cameras: Sequence[str], skeleton: Skeleton, views: str = "all", frames: int = 1, stride: int = 1,
                 image_size: int = 384, crop_scale: float = 1.2, augment: bool = False, scale_factor: float = 0.25,
                 rotation_factor: float = 30.0):
        super().__init__(sequences, skeleton, views=views, frames=frames, stride=stride, layout=PANOPTIC19)
        if image_size < 8 or not crop_scale > 0:
            raise DatasetError(f"DATASETS.PANOPTIC.IMAGE_SIZE must be >= 8 and CROP_SCALE > 0, got {image_size} and "
                               f"{crop_scale}")
        self.starts, self.camera_names = list(starts), np.asarray(cameras)
        self.image_size, self.crop_scale = int(image_size), float(crop_scale)
        self.augment, self.scale_factor, self.rotation_factor = augment, scale_factor, rotation_factor
        every_view = np.arange(self.num_views)
        needed = [path for number, frame in zip(self.seq_index, self.frame_index)
                  for path in self.image_paths(int(number), int(frame), every_view)]
        missing = [path for path in needed if not path.is_file()]
        if missing:
            raise DatasetError(f"DATASETS.PANOPTIC.ROOT: {len(missing)} of the {len(needed)} HD images of the samples "
                               f"are missing, the first '{missing[0]}' (images mode reads <seq>/{IMAGE_FOLDER}/<cam>/"
                               "<cam>_<frame:08d>.jpg, as the Panoptic toolbox's scripts/hdImgsExtractor.sh writes "
                               "them)")

    def image_paths(self, number: int, frame: int, views: np.ndarray) -> List[Path]:
        """The HD images of ``views`` at frame ``frame`` of track ``number``."""
        folder, first = self.starts[number]
        return [hd_image_path(folder, camera, first + frame) for camera in self.camera_names[views]]

    def _read(self, path: Path, size) -> np.ndarray:
        image = read_rgb(path, "DATASETS.PANOPTIC.ROOT")
        width, height = (int(v) for v in size)
        if image.shape[:2] != (height, width):
            raise DatasetError(f"image '{path}' is {image.shape[1]} x {image.shape[0]} pixels, its camera's "
                               f"calibration {width} x {height}")
        return image

    def __getitem__(self, index: int):
        _, views, number, frame, window = self.locate(index)
        sample = self.base_sample(number, frame, window, views)
        seq = self.sequences[number]
        cameras = seq.cameras[torch.from_numpy(views)]                                        # (V,) full images
        truth_2d = torch.from_numpy(seq.keypoints_2d_gt[frame][views]).to(cameras.dtype)      # (V, J, 2), NaN: none
        centre, side = joints_box(truth_2d, cameras.image_size, self.crop_scale)
        zoom, rotation = random_zoom_rotation(len(views), self.scale_factor, self.rotation_factor) \
            if self.augment else (None, None)
        images = (self._read(path, size) for path, size in zip(self.image_paths(number, frame, views),
                                                                cameras.image_size.tolist()))
        crop_cameras, crops = cut_crops(cameras, images, centre, side, self.image_size, zoom, rotation)
        world = torch.from_numpy(seq.keypoints_3d[window]).to(cameras.dtype).reshape(1, -1, 3)
        crop_2d = crop_cameras.project(world.expand(len(views), -1, -1))
        crop_2d = crop_2d.reshape(len(views), len(window), -1, 2).transpose(0, 1).float()       # (T, V, J, 2)
        sample.update(keypoints_2d_crop=crop_2d, cameras=crop_cameras, image_cameras=cameras,
                      visibility=sample["visibility"] * inside_crop(crop_2d, self.image_size),
                      images=to_image_tensor(crops))
        return self.in_skeleton(sample)


@DATASETS.register("panoptic")
def build_panoptic(cfg, split: str) -> SequenceSamples:
    d, p = cfg.DATASETS, cfg.DATASETS.PANOPTIC
    if d.MODE == "images" and d.FLIP:
        raise DatasetError("DATASETS.FLIP mirrors keypoint samples; the Panoptic images mode does not mirror crops "
                           "(DATASETS.AUGMENT zooms and rotates them): set DATASETS.FLIP False")
    sequences = subjects_of_split(cfg, split, p.TRAIN_SEQUENCES, p.TEST_SEQUENCES, "DATASETS.PANOPTIC",
                                  train_key="TRAIN_SEQUENCES")
    tracks, starts = load_panoptic_sequences(p.ROOT, sequences, list(p.CAMERAS), p.MIN_CONFIDENCE)
    samples = dict(views=views_of_split(cfg, split), frames=d.FRAMES, stride=stride_of_split(cfg, split))
    if d.MODE == "keypoints":
        return SequenceSamples(tracks, skeleton_of(cfg), layout=PANOPTIC19, flip=d.FLIP and split == "train",
                               **samples)
    return PanopticImages(tracks, starts, list(p.CAMERAS), skeleton_of(cfg), image_size=p.IMAGE_SIZE,
                          crop_scale=p.CROP_SCALE, augment=d.AUGMENT and split == "train",
                          scale_factor=d.SCALE_FACTOR, rotation_factor=d.ROTATION_FACTOR, **samples)
