"""The Rendered Hand Pose dataset (RHD, Zimmermann & Brox, ICCV 2017) as single-view hand samples
(``DATASETS.NAME rhd``, ``DATASETS.SKELETON hand21``).

Files: ``DATASETS.RHD.ROOT`` is the ``RHD_published_v2/`` folder (read by ``datasets.formats.rhd``); the training
split is its ``training/`` set, the test split its ``evaluation/`` set. RHD names no subjects, so there is no
validation split (``DATASETS.VAL_SUBJECTS`` must stay empty); ``TRAIN_STRIDE`` / ``TEST_STRIDE`` keep every n-th
image.

Each sample is one hand of one image (T = 1 frame, V = 1 view), in the ``hand21`` layout. The images are
independent, and each has its own K, so the samples come from arrays over the split (one batched ``Cameras``), not
from ``datasets.sequences.KeypointSequence`` takes, which carry one calibration each; the flip is that module's
``mirror_sample``.


- which hand, ``DATASETS.RHD.HAND``: ``mask``, the hand with more pixels in the image's segmentation mask, the right
  one on a tie (the rule of lmb-freiburg/hand3d ``data/BinaryDbReader.py``, kept by Epipolar Transformers'
  ``data/datasets/RHD.py``; it reads every mask once, when the split is built); ``visible``, the hand with more
  visible keypoints (no masks read); ``both``, each hand with at least one visible keypoint as a sample of its own;
- a right hand is kept as it is (not mirrored), as in both references: its side is ``meta["action"]`` ("left" or
  "right"; the references' ``hand_side`` input), so the metrics also aggregate per hand. A mirrored sample
  (``DATASETS.FLIP``, keypoints mode) shows the other hand, and its ``action`` says so;
- joint 0, with ``DATASETS.RHD.PALM`` (the default), is the palm centre: the midpoint of the wrist and the middle
  finger's knuckle in 3D and in the file's 2D, visible when either is, as both references train and evaluate
  (hand3d ``use_wrist_coord=False``, Epipolar Transformers ``DATASETS.WRIST_COORD False``); without it, the wrist.

The world frame is the camera frame: each sample's camera has the image's own K, R = I, t = 0 and no distortion, and
the 3D is the file's metres in millimetres. Keypoints mode: ``keypoints_2d`` is the file's uv (hand3d's reader
truncates it to whole pixels; here it stays as read), ``keypoints_2d_gt`` the projection of the 3D through K (RHD's
own example script draws both; they need not agree to the last fraction of a pixel),
``visibility`` and ``confidence_2d`` the file's visibility flags (hand3d leaves the score maps of hidden keypoints
empty). Images mode: a square crop of the colour image centred on the middle finger's knuckle, its side the larger
extent of the visible keypoints about that centre, doubled and kept within 50..500 pixels (hand3d's hand crop;
deviation: hand3d also caps the side at its 256-pixel crop, never shrinking the image), times ``CROP_SCALE``,
resized to ``IMAGE_SIZE`` (training: random zoom and rotation with ``DATASETS.AUGMENT``) and folded into K
(``datasets.crops``); ``keypoints_2d_crop`` is the projection of the 3D into the crop and ``visibility`` the file's
flag within the crop. ``meta``: subject = the set ("training" / "evaluation"), action = the hand's side, sequence =
"<set>/<id:05d>/<side>", frame = the image number.

Deviation from hand3d's samples: no canonical frame, bone-length normalisation or score maps here (the lifting
networks make those from these samples); the protocol metrics are ``core.metrics_hand.hand_pose_metrics``.
"""
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from core.geometry.cameras import Cameras
from core.metrics_hand import hand_pose_metrics
from core.images import to_image_tensor
from core.registry import DATASETS
from core.skeleton import HAND21, skeleton_of
from datasets import DatasetError, stride_of_split
from datasets.crops import cut_crops, inside_crop, random_zoom_rotation, read_rgb
from datasets.formats.rhd import HANDS, IMAGE_SIZE_PX, RHDAnnotations, RHDFormatError, read_hand_pixels, \
    read_rhd_annotations
from datasets.sequences import mirror_sample

logger = logging.getLogger("epipose")

HAND_RULES = ("mask", "visible", "both")
SETS = {"train": "training", "test": "evaluation"}
CROP_SIDE_PX = (50.0, 500.0)          # hand3d's bounds of the hand crop's side, original pixels
_WRIST, _MIDDLE_MCP = HAND21.index("wrist"), HAND21.index("middle_mcp")


def choose_hands(annotations: RHDAnnotations, rule: str, mask_dir) -> np.ndarray:
    """(M, 2) int64 (image index, hand index into ``HANDS``) of the samples that ``rule`` makes (module docstring)."""
    if rule not in HAND_RULES:
        raise DatasetError(f"DATASETS.RHD.HAND: unknown rule '{rule}'; expected one of {', '.join(HAND_RULES)}")
    images = np.arange(len(annotations.sample_ids))
    if rule == "both":
        pairs = np.argwhere(annotations.visible.any(-1))                       # image-major, left first
        return pairs.astype(np.int64)
    if rule == "visible":
        counts = annotations.visible.sum(-1)
    else:
        logger.info("RHD: reading %d segmentation masks to choose each image's hand (about 1 ms each)",
                    len(annotations.sample_ids))
        try:
            counts = np.stack([read_hand_pixels(Path(mask_dir) / f"{i:05d}.png") for i in annotations.sample_ids])
        except RHDFormatError as err:
            raise DatasetError(f"{err} (DATASETS.RHD.HAND mask reads every mask; 'visible' reads none)") from None
    right = (counts[:, 0] <= counts[:, 1]).astype(np.int64)                    # a tie goes to the right hand
    return np.stack([images, right], 1)


def with_palm_root(xyz: np.ndarray, uv: np.ndarray, visible: np.ndarray):
    """Hands (..., 21, 3), (..., 21, 2), (..., 21) with joint 0 replaced by the palm centre (module docstring)."""
    xyz, uv, visible = xyz.copy(), uv.copy(), visible.copy()
    for points in (xyz, uv):
        points[..., _WRIST, :] = 0.5 * (points[..., _WRIST, :] + points[..., _MIDDLE_MCP, :])
    visible[..., _WRIST] |= visible[..., _MIDDLE_MCP]
    return xyz, uv, visible


def hand_crop_boxes(uv: np.ndarray, visible: np.ndarray, crop_scale: float) -> np.ndarray:
    """(M, 3) crop centre x, y and side (pixels) of hands (M, 21, 2) with visibility (M, 21) (module docstring); a hand
    without a visible keypoint is measured by all of them."""
    centre = uv[:, _MIDDLE_MCP]
    measured = visible | ~visible.any(-1, keepdims=True)
    inside = np.clip(uv, 0.0, IMAGE_SIZE_PX)
    reach = np.where(measured, np.abs(inside - centre[:, None]).max(-1), 0.0).max(-1)
    side = np.clip(2.0 * reach, *CROP_SIDE_PX) * crop_scale
    return np.concatenate([centre, side[:, None]], 1)


class RHDHands(Dataset):
    """One hand per sample (see the module docstring): keypoint samples, or image samples when ``image_dir`` is
    given."""

    skeleton = HAND21

    @staticmethod
    def protocol_metrics(predictions) -> dict:
        """The RHD protocol's figures (``core.metrics_hand.hand_pose_metrics``: EPE, PCK, AUC 20-50 mm on root-relative
        3D) of the test's ``predictions`` (``pred_3d``, ``target_3d``), for metrics.json."""
        pred, target = (torch.from_numpy(predictions[k]).double() for k in ("pred_3d", "target_3d"))
        return {"rhd_protocol": hand_pose_metrics(pred, target, torch.isfinite(target).all(-1), root=HAND21.root)}

    def __init__(self, annotations: RHDAnnotations, hands: np.ndarray, set_name: str, palm: bool = True,
                 image_dir=None, image_size: int = 256, crop_scale: float = 1.0, augment: bool = False,
                 scale_factor: float = 0.25, rotation_factor: float = 30.0, flip: bool = False):
        if not len(hands):
            raise DatasetError(f"RHD {set_name}: no hand samples (no image has a visible keypoint)")
        images, sides = hands[:, 0], hands[:, 1]
        xyz, uv, visible = (a[images, sides] for a in (annotations.xyz_mm, annotations.uv_px, annotations.visible))
        if palm:
            xyz, uv, visible = with_palm_root(xyz, uv, visible)
        self.set_name, self.sides = set_name, sides
        self.sample_ids = annotations.sample_ids[images]
        self.keypoints_3d = torch.from_numpy(xyz.astype(np.float32))
        self.keypoints_2d = torch.from_numpy(uv.astype(np.float32))
        self.visible = torch.from_numpy(visible)
        count = len(images)
        self.cameras = Cameras.create(annotations.K[images], np.tile(np.eye(3), (count, 1, 1)), np.zeros((count, 3)),
                                      image_size=(IMAGE_SIZE_PX, IMAGE_SIZE_PX))
        self.keypoints_2d_gt = self.cameras.project(torch.from_numpy(xyz)).float()
        self.image_dir = None if image_dir is None else Path(image_dir)
        self.boxes = torch.from_numpy(hand_crop_boxes(uv, visible, crop_scale))
        self.image_size, self.augment, self.flip = int(image_size), augment, flip
        self.scale_factor, self.rotation_factor = scale_factor, rotation_factor
        self.num_frames = count

    def __len__(self) -> int:
        return self.num_frames

    def sample_sequences(self) -> np.ndarray:
        """(len(self),) the ``meta["sequence"]`` of every sample, without loading the samples."""
        return np.array([f"{self.set_name}/{i:05d}/{HANDS[s]}" for i, s in zip(self.sample_ids, self.sides)],
                        dtype=object)

    def __getitem__(self, index: int):
        if index < 0 or index >= len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        side, image_id = int(self.sides[index]), int(self.sample_ids[index])
        at = torch.tensor([index])                                   # copies, not views of the whole split
        sample = {
            "keypoints_3d": self.keypoints_3d[at],
            "camera_ids": torch.zeros(1, dtype=torch.int64),
            "frame_ids": torch.tensor([index]),
            "flipped": torch.tensor(False),
            "meta": {"subject": self.set_name, "action": HANDS[side], "frame": image_id,
                     "sequence": f"{self.set_name}/{image_id:05d}/{HANDS[side]}"},
        }
        cameras = self.cameras[at]
        visible = self.visible[at][None].float()
        if self.image_dir is None:
            sample.update(cameras=cameras, keypoints_2d=self.keypoints_2d[at][None],
                          keypoints_2d_gt=self.keypoints_2d_gt[at][None], visibility=visible,
                          confidence_2d=visible.clone())
            if self.flip and bool(torch.rand(()) < 0.5):
                sample = mirror_sample(sample, HAND21)
                sample["meta"] = {**sample["meta"], "action": HANDS[1 - side]}
            return sample
        return {**sample, **self._crop(index, image_id, cameras, sample["keypoints_3d"], visible)}

    def _crop(self, index: int, image_id: int, cameras: Cameras, sample_3d: torch.Tensor, visible: torch.Tensor):
        """The image keys of a sample: the hand crop, its cameras and the 3D projected into it."""
        zoom, rotation = random_zoom_rotation(1, self.scale_factor, self.rotation_factor) if self.augment \
            else (None, None)
        box = self.boxes[index:index + 1]
        image = read_rgb(self.image_dir / f"{image_id:05d}.png", "DATASETS.RHD.ROOT")
        crop_cameras, crops = cut_crops(cameras, [image], box[:, :2], box[:, 2], self.image_size, zoom, rotation)
        crop_2d = crop_cameras.project(sample_3d.to(crop_cameras.dtype)).float()                      # (1, J, 2)
        return {"images": to_image_tensor(crops), "cameras": crop_cameras, "image_cameras": cameras,
                "keypoints_2d_crop": crop_2d[None], "visibility": visible * inside_crop(crop_2d, self.image_size)[None]}


@DATASETS.register("rhd")
def build_rhd(cfg, split: str) -> RHDHands:
    d, r = cfg.DATASETS, cfg.DATASETS.RHD
    if split not in SETS:
        raise DatasetError("DATASETS.NAME 'rhd' has no subjects to hold out as a validation split: leave "
                           "DATASETS.VAL_SUBJECTS empty")
    if skeleton_of(cfg) != HAND21:
        raise DatasetError(f"DATASETS.NAME 'rhd' gives one hand per sample: set DATASETS.SKELETON hand21, not "
                           f"'{d.SKELETON}'")
    if d.FRAMES != 1:
        raise DatasetError(f"DATASETS.NAME 'rhd' holds single images, not sequences: set DATASETS.FRAMES 1, not "
                           f"{d.FRAMES}")
    root = Path(r.ROOT)
    if not r.ROOT or not root.is_dir():
        raise DatasetError(f"DATASETS.RHD.ROOT '{r.ROOT}' is not a folder (the RHD_published_v2 folder with "
                           "training/ and evaluation/)")
    set_name = SETS[split]
    folder = root / set_name
    try:
        annotations = read_rhd_annotations(folder / f"anno_{set_name}.pickle")
    except RHDFormatError as err:
        raise DatasetError(str(err)) from None
    annotations = annotations.select(slice(None, None, stride_of_split(cfg, split)))
    hands = choose_hands(annotations, r.HAND, folder / "mask")
    logger.info("RHD %s: %d images, %d hand samples (%d right hands) chosen by '%s'", set_name,
                len(annotations.sample_ids), len(hands), int(hands[:, 1].sum()), r.HAND)
    images = d.MODE == "images"
    return RHDHands(annotations, hands, set_name, palm=r.PALM, image_dir=folder / "color" if images else None,
                    image_size=r.IMAGE_SIZE, crop_scale=r.CROP_SCALE, augment=images and d.AUGMENT and split == "train",
                    scale_factor=d.SCALE_FACTOR, rotation_factor=d.ROTATION_FACTOR,
                    flip=not images and d.FLIP and split == "train")
