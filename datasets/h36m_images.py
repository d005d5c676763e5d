"""Human3.6M multi-view images in the two public preprocessed layouts.

``DATASETS.NAME h36m_toolbox``: the H36M-Toolbox annotation pickle (``h36m_train.pkl`` /
``h36m_validation.pkl``, used by the multi-view pose and Epipolar Transformers code), a list with one
dict per (subject, action, subaction, camera, frame):

- ``image``: path relative to ``ROOT``, e.g. ``s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg``;
- ``joints_3d`` (17, 3) world mm in the Human3.6M 17-joint order of ``core.skeleton``;
- ``center`` (2,), ``scale`` (2,): the person box in the original (distorted) pixels, side = 200 x scale;
- ``subject``, ``action`` (2..16), ``subaction`` (1, 2), ``camera_id`` (0..3), ``image_id`` (frame);
- ``camera``: ``R`` (3, 3), ``T`` (3, 1) the camera CENTRE in world mm (``X_cam = R (X - T)``),
  ``fx, fy, cx, cy``, radial ``k`` (3,) and tangential ``p`` (2,) in Human3.6M's own model, which is
  OpenCV's with distortion ``(k1, k2, p1, p2, k3) = (k0, k1, p0, p1, k2)``.
Records are grouped into multi-view frames by (subject, action, subaction, image_id); a frame is kept
only when every camera is present.

``DATASETS.NAME h36m_learnable_triangulation``: the labels ``.npy`` of learnable triangulation
(Iskakov et al. 2019), a dict with ``subject_names``, ``camera_names``, ``action_names`` ("Directions-1"),
``cameras`` (subjects x cameras, fields ``R`` (3, 3), ``t`` (3, 1) mm with ``X_cam = R X + t``, ``K``,
``dist`` (5,)) and ``table``, one row per frame with ``subject_idx``, ``action_idx``, ``frame_idx`` (0-based),
``keypoints`` (17, 3) world mm in its own (MPII-like) joint order, converted here, and
``bbox_by_camera_tlbr`` (cameras, 4) (top, left, bottom, right); an all-zero box marks a view that is
missing, and such frames are dropped (in the public labels: S11 Directions-2, camera 54138969).
Images: ``ROOT/<subject>/<action>/imageSequence/<camera>/img_<frame_idx + 1:06d>.jpg``, or
``imageSequence-undistorted`` with ``H36M_IMAGES.UNDISTORTED True`` (the cameras then have no distortion).
One file holds every subject; ``TRAIN_FILE`` and ``TEST_FILE`` may be the same file.

Both: ``TRAIN_SUBJECTS`` / ``TEST_SUBJECTS`` select subjects, ``TRAIN_STRIDE`` / ``TEST_STRIDE`` keep every
n-th frame (Epipolar Transformers: 5 and 64), ``SKIP_DAMAGED`` drops the three damaged S9 takes
(Greeting-2, SittingDown-2, Waiting-1). Samples have the image form of ``core.sample_schema``: a
square crop per view of side ``CROP_SCALE`` x the box, resized to ``IMAGE_SIZE`` (training: random zoom
and rotation with ``AUGMENT``), the crop folded into each camera's K (``datasets.crops``), and the 2D
targets (``keypoints_2d_crop``) are the exact projections of the 3D joints into the crops (visible = inside the crop). The
annotation files are read with ``datasets.formats.safe_pickle`` (plain data only, never code).
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from core.geometry.cameras import Cameras
from core.images import to_image_tensor
from core.registry import DATASETS
from core.skeleton import H36M17, H36M17_LEARNABLE_TRIANGULATION, joint_map, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split
from datasets.crops import cut_crops, inside_crop, random_zoom_rotation, read_rgb
from datasets.formats.calibration import CalibrationError, check_camera, check_rig
from datasets.formats.safe_pickle import SafePickleError, load_npy, load_pickle

log = logging.getLogger("epipose")

# Human3.6M action ids of the H36M-Toolbox (and of the dataset's own file names).
TOOLBOX_ACTIONS = {2: "Directions", 3: "Discussion", 4: "Eating", 5: "Greeting", 6: "Phoning", 7: "Posing",
                   8: "Purchases", 9: "Sitting", 10: "SittingDown", 11: "Smoking", 12: "TakingPhoto",
                   13: "Waiting", 14: "Walking", 15: "WalkingDog", 16: "WalkTogether"}
DAMAGED_TAKES = frozenset({("S9", "Greeting", 2), ("S9", "SittingDown", 2), ("S9", "Waiting", 1)})


@dataclass
class FrameTable:
    """Multi-view frames of one annotation file: N frames, V views."""
    image_paths: np.ndarray      # (N, V) str, relative to the image root
    keypoints_3d: np.ndarray     # (N, J, 3) float32, world mm
    boxes: np.ndarray            # (N, V, 3) float64: box centre x, y and side, original pixels
    camera_set: np.ndarray       # (N,) int64 index into ``cameras``
    cameras: Cameras             # (number of camera sets, V) float64, original images
    subjects: np.ndarray         # (N,) str, "S9"
    actions: np.ndarray          # (N,) str, action group name, "Greeting"
    takes: np.ndarray            # (N,) int64, take (subaction) 1 or 2
    frames: np.ndarray           # (N,) int64, frame number within the take

    def select(self, keep: np.ndarray) -> "FrameTable":
        return FrameTable(self.image_paths[keep], self.keypoints_3d[keep], self.boxes[keep], self.camera_set[keep],
                          self.cameras, self.subjects[keep], self.actions[keep], self.takes[keep], self.frames[keep])


def _field(record, key: str, shape, where: str) -> np.ndarray:
    try:
        value = np.asarray(record[key], dtype=np.float64)
    except KeyError:
        raise DatasetError(f"{where}: missing key '{key}'") from None
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: '{key}' is not numeric") from None
    if value.size != int(np.prod(shape)):
        raise DatasetError(f"{where}: '{key}' must have {int(np.prod(shape))} values {shape}, got shape {value.shape}")
    if not np.isfinite(value).all():
        raise DatasetError(f"{where}: '{key}' has NaN or infinite values (image datasets need complete 3D and cameras)")
    return value.reshape(shape)


def _check_rigs(cameras: Cameras, subjects, camera_names, path: str) -> None:
    """``check_rig`` on each subject's cameras (``cameras`` batch (S, V))."""
    for subject, centres in zip(subjects, cameras.centers.numpy()):
        try:
            check_rig(centres, camera_names, f"{path} cameras of {subject}")
        except CalibrationError as err:
            raise DatasetError(str(err)) from None


def _toolbox_camera(camera, where: str):
    """(K, R, t, dist) from a toolbox camera dict (``T`` is the camera centre)."""
    if not isinstance(camera, dict):
        raise DatasetError(f"{where}: 'camera' must be a dict with R, T, fx, fy, cx, cy, k, p")
    R = _field(camera, "R", (3, 3), f"{where} camera")
    centre = _field(camera, "T", (3,), f"{where} camera")
    fx, fy, cx, cy = (float(_field(camera, key, (1,), f"{where} camera")[0]) for key in ("fx", "fy", "cx", "cy"))
    k, p = _field(camera, "k", (3,), f"{where} camera"), _field(camera, "p", (2,), f"{where} camera")
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    try:
        check_camera(K, R, f"{where} camera")
    except CalibrationError as err:
        raise DatasetError(str(err)) from None
    return K, R, -R @ centre, np.array([k[0], k[1], p[0], p[1], k[2]])


def read_toolbox_annotations(path) -> FrameTable:
    """The multi-view frames of an H36M-Toolbox annotation pickle (see the module docstring)."""
    path = Path(path)
    try:
        records = load_pickle(path)
    except SafePickleError as err:
        raise DatasetError(str(err)) from None
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise DatasetError(f"{path}: expected a non-empty list of annotation dicts (H36M-Toolbox layout)")
    try:
        keys = np.array([(r["subject"], r["action"], r["subaction"], r["image_id"], r["camera_id"]) for r in records],
                        dtype=np.int64)
    except KeyError as err:
        raise DatasetError(f"{path}: a record has no key {err} (subject, action, subaction, image_id, camera_id "
                           "expected)") from None
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: subject, action, subaction, image_id and camera_id must be integers") from None
    unknown = sorted(set(keys[:, 1].tolist()) - set(TOOLBOX_ACTIONS))
    if unknown:
        raise DatasetError(f"{path}: unknown action ids {unknown}; Human3.6M actions are 2..16")
    camera_ids = np.unique(keys[:, 4])
    num_views = len(camera_ids)
    order = np.lexsort(keys[:, ::-1].T)                      # by subject, action, subaction, image_id, camera
    frame_keys, first, counts = np.unique(keys[order, :4], axis=0, return_index=True, return_counts=True)
    complete = counts == num_views
    if not complete.any():
        raise DatasetError(f"{path}: no frame has all {num_views} cameras {camera_ids.tolist()}")
    rows = order[first[complete][:, None] + np.arange(num_views)]          # (N, V), cameras in id order
    frame_keys = frame_keys[complete]

    subjects = np.array([f"S{s}" for s in frame_keys[:, 0]])
    camera_key = frame_keys[:, 0]                                         # one camera set per subject
    sets, set_first, camera_set = np.unique(camera_key, return_index=True, return_inverse=True)
    K, R, t, dist = [], [], [], []
    for row in rows[set_first].reshape(-1):
        where = f"{path} record {row}"
        for out, value in zip((K, R, t, dist), _toolbox_camera(records[row].get("camera"), where)):
            out.append(value)
    sizes = torch.tensor([[2.0 * k[0, 2], 2.0 * k[1, 2]] for k in K])    # nominal; crops set their own size
    cameras = Cameras.create(np.stack(K), np.stack(R), np.stack(t), np.stack(dist), sizes).reshape(len(sets), num_views)
    _check_rigs(cameras, [f"S{s}" for s in sets], [str(c) for c in camera_ids], str(path))

    boxes = np.empty((len(rows), num_views, 3))
    keypoints = np.empty((len(rows), H36M17.num_joints, 3), np.float32)
    paths = np.empty(rows.shape, dtype=object)
    for i, frame_rows in enumerate(rows):
        for v, row in enumerate(frame_rows):
            record, where = records[row], f"{path} record {row}"
            centre, scale = _field(record, "center", (2,), where), _field(record, "scale", (2,), where)
            boxes[i, v] = (centre[0], centre[1], 200.0 * scale.max())
            paths[i, v] = str(record.get("image", ""))
        keypoints[i] = _field(records[frame_rows[0]], "joints_3d", (H36M17.num_joints, 3), f"{path} record {frame_rows[0]}")
    actions = np.array([TOOLBOX_ACTIONS[a] for a in frame_keys[:, 1]])
    return FrameTable(paths, keypoints, boxes, camera_set.astype(np.int64), cameras, subjects, actions,
                      frame_keys[:, 2].copy(), frame_keys[:, 3].copy())


def read_learnable_triangulation_labels(path, undistorted: bool = False) -> FrameTable:
    """The multi-view frames of a learnable-triangulation labels ``.npy`` (see the module docstring)."""
    path = Path(path)
    try:
        labels = load_npy(path)
    except SafePickleError as err:
        raise DatasetError(str(err)) from None
    required = ("subject_names", "camera_names", "action_names", "cameras", "table")
    if not isinstance(labels, dict) or not set(required) <= set(labels):
        raise DatasetError(f"{path}: expected a dict with keys {', '.join(required)} (learnable-triangulation labels)")
    table, cams = labels["table"], labels["cameras"]
    subject_names = [str(s) for s in labels["subject_names"]]
    camera_names = [str(c) for c in labels["camera_names"]]
    action_names = [str(a) for a in labels["action_names"]]
    fields = ("subject_idx", "action_idx", "frame_idx", "keypoints", "bbox_by_camera_tlbr")
    if not isinstance(table, np.ndarray) or table.dtype.names is None or not set(fields) <= set(table.dtype.names):
        raise DatasetError(f"{path}: 'table' must be a structured array with fields {', '.join(fields)}")
    num_views = len(camera_names)
    if not isinstance(cams, np.ndarray) or cams.dtype.names is None or cams.shape != (len(subject_names), num_views) \
            or not {"R", "t", "K", "dist"} <= set(cams.dtype.names):
        raise DatasetError(f"{path}: 'cameras' must be a structured array (subjects, cameras) = "
                           f"({len(subject_names)}, {num_views}) with fields R, t, K, dist")
    try:   # a damaged dtype can list a field that it cannot read
        table = {name: np.asarray(table[name]) for name in fields}
        cams_count = cams.size
        cams = {name: np.asarray(cams[name]) for name in ("R", "t", "K", "dist")}
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise DatasetError(f"{path}: the fields of 'table' or 'cameras' cannot be read ({err})") from None
    sizes = {"R": 9, "t": 3, "K": 9, "dist": 5}  # values per camera
    wrong = [name for name, size in sizes.items() if cams[name].size != size * cams_count]
    if wrong:
        raise DatasetError(f"{path}: 'cameras' fields R, t, K, dist must hold 9, 3, 9 and 5 values per camera; "
                           f"{', '.join(wrong)} do not")
    if table["keypoints"].shape[1:] != (H36M17.num_joints, 3) or table["bbox_by_camera_tlbr"].shape[1:] != (num_views, 4):
        raise DatasetError(f"{path}: table keypoints must be ({H36M17.num_joints}, 3) and boxes ({num_views}, 4) per row")
    if not np.isfinite(table["keypoints"]).all():
        raise DatasetError(f"{path}: table keypoints have NaN or infinite values (image datasets need complete "
                           "3D)")
    subject_idx, action_idx = table["subject_idx"].astype(np.int64), table["action_idx"].astype(np.int64)
    if subject_idx.min(initial=0) < 0 or subject_idx.max(initial=0) >= len(subject_names) or \
            action_idx.min(initial=0) < 0 or action_idx.max(initial=0) >= len(action_names):
        raise DatasetError(f"{path}: table subject_idx / action_idx outside subject_names / action_names")

    K = cams["K"].astype(np.float64).reshape(-1, 3, 3)
    R = cams["R"].astype(np.float64).reshape(-1, 3, 3)
    for i, (k, r) in enumerate(zip(K, R)):
        try:
            check_camera(k, r, f"{path} camera {subject_names[i // num_views]}/{camera_names[i % num_views]}")
        except CalibrationError as err:
            raise DatasetError(str(err)) from None
    dist = np.zeros((len(K), 5)) if undistorted else cams["dist"].astype(np.float64).reshape(-1, 5)
    sizes = torch.from_numpy(2.0 * K[:, :2, 2])
    cameras = Cameras.create(K, R, cams["t"].astype(np.float64).reshape(-1, 3), dist, sizes)
    cameras = cameras.reshape(len(subject_names), num_views)
    _check_rigs(cameras, list(subject_names), list(camera_names), str(path))

    boxes_tlbr = table["bbox_by_camera_tlbr"].astype(np.float64)            # (N, V, 4)
    present = (boxes_tlbr != 0).any(-1).all(-1)
    if not present.all():
        log.info("%s: %d frames with a missing view are left out", path, int((~present).sum()))
    top, left, bottom, right = np.moveaxis(boxes_tlbr, -1, 0)
    boxes = np.stack([(left + right) / 2, (top + bottom) / 2, np.maximum(right - left, bottom - top)], -1)
    takes = np.array([_split_take(a) for a in action_names], dtype=object)
    folder = "imageSequence-undistorted" if undistorted else "imageSequence"
    frame_idx = table["frame_idx"].astype(np.int64)
    subjects = np.array(subject_names)[subject_idx]
    action_folders = np.array(action_names)[action_idx]
    paths = np.array([[f"{s}/{a}/{folder}/{c}/img_{f + 1:06d}.jpg" for c in camera_names]
                      for s, a, f in zip(subjects, action_folders, frame_idx)], dtype=object).reshape(-1, num_views)
    table = FrameTable(paths, table["keypoints"][:, joint_map(H36M17_LEARNABLE_TRIANGULATION, H36M17)].astype(np.float32), boxes,
                       subject_idx, cameras, subjects, np.array([t[0] for t in takes])[action_idx],
                       np.array([t[1] for t in takes], dtype=np.int64)[action_idx], frame_idx)
    return table.select(present)


def _split_take(name: str):
    """"Directions-1" -> ("Directions", 1); a name without a take number is take 1."""
    base, _, take = name.rpartition("-")
    return (base, int(take)) if base and take.isdigit() else (name, 1)


class H36MMultiViewImages(Dataset):
    """Samples of all views of a Human3.6M frame: crops, crop cameras, 3D and 2D targets, in h36m17's joints."""

    skeleton = H36M17

    def __init__(self, table: FrameTable, root, image_size: int = 256, crop_scale: float = 1.0,
                 augment: bool = False, scale_factor: float = 0.25, rotation_factor: float = 30.0):
        self.table, self.root = table, Path(root)
        self.image_size, self.crop_scale = int(image_size), float(crop_scale)
        self.augment, self.scale_factor, self.rotation_factor = augment, scale_factor, rotation_factor
        self.num_views = table.image_paths.shape[1]

    def __len__(self) -> int:
        return len(self.table.frames)

    def sample_sequences(self) -> np.ndarray:
        """(len(self),) the ``meta["sequence"]`` of every sample, without loading the samples."""
        t = self.table
        return np.array([f"{s}/{a}-{k}" for s, a, k in zip(t.subjects, t.actions, t.takes)], dtype=object)

    def __getitem__(self, index: int):
        if index < 0 or index >= len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        t = self.table
        cameras = t.cameras[int(t.camera_set[index])]                                       # (V,)
        zoom, rotation = random_zoom_rotation(self.num_views, self.scale_factor, self.rotation_factor) \
            if self.augment else (None, None)
        box = torch.from_numpy(t.boxes[index])
        where = f"DATASETS.H36M_IMAGES.ROOT = '{self.root}'"
        crop_cameras, images = cut_crops(cameras, (read_rgb(self.root / p, where) for p in t.image_paths[index]),
                                         box[:, :2], box[:, 2] * self.crop_scale, self.image_size, zoom, rotation)
        world = torch.from_numpy(t.keypoints_3d[index]).to(crop_cameras.dtype)
        crop_2d = crop_cameras.project(world.expand(self.num_views, -1, -1)).float()       # (V, J, 2)
        visible = inside_crop(crop_2d, self.image_size)
        subject, action, take = str(t.subjects[index]), str(t.actions[index]), int(t.takes[index])
        return {
            "keypoints_3d": torch.from_numpy(t.keypoints_3d[index])[None],
            "visibility": visible[None],
            "camera_ids": torch.arange(self.num_views),
            "meta": {"subject": subject, "action": f"{action} {take}", "frame": int(t.frames[index]),
                     "sequence": f"{subject}/{action}-{take}"},
            "keypoints_2d_crop": crop_2d[None],
            "frame_ids": torch.tensor([index]),
            "flipped": torch.tensor(False),
            "cameras": crop_cameras,
            "image_cameras": cameras,
            "images": to_image_tensor(images),
        }


def select_frames(table: FrameTable, subjects: Sequence[str], stride: int, skip_damaged: bool, where: str) -> FrameTable:
    """Frames of ``subjects``, every ``stride``-th, optionally without the damaged S9 takes."""
    known = sorted(set(table.subjects.tolist()))
    missing = sorted(set(subjects) - set(known))
    if missing:
        raise DatasetError(f"{where}: subjects {missing} are not in the file (it has {known})")
    keep = np.isin(table.subjects, list(subjects))
    if skip_damaged:
        damaged = np.array([(s, a, k) in DAMAGED_TAKES for s, a, k in zip(table.subjects, table.actions, table.takes)],
                           dtype=bool)
        keep &= ~damaged
    return table.select(np.flatnonzero(keep)[::stride])


def _build(cfg, split: str, reader) -> H36MMultiViewImages:
    d, h = cfg.DATASETS, cfg.DATASETS.H36M_IMAGES
    key = "TEST_FILE" if split == "test" else "TRAIN_FILE"  # validation subjects are held out of training
    file = getattr(h, key)
    if not file:
        raise DatasetError(f"DATASETS.H36M_IMAGES.{key} is empty: set it to the {split} annotation file")
    if not h.ROOT or not Path(h.ROOT).is_dir():
        raise DatasetError(f"DATASETS.H36M_IMAGES.ROOT '{h.ROOT}' is not a folder (the image root expected)")
    if d.MODE != "images" or d.VIEWS != "all" or d.FRAMES != 1:
        raise DatasetError("the Human3.6M image datasets give multi-view image samples: set DATASETS.MODE images, "
                           "DATASETS.VIEWS all and DATASETS.FRAMES 1")
    if skeleton_of(cfg) != H36M17:
        raise DatasetError(f"the Human3.6M image datasets give the joints of h36m17: set DATASETS.SKELETON h36m17 "
                           f"(got '{d.SKELETON}')")
    subjects = subjects_of_split(cfg, split, h.TRAIN_SUBJECTS, h.TEST_SUBJECTS, "DATASETS.H36M_IMAGES")
    table = select_frames(reader(file), subjects, stride_of_split(cfg, split), h.SKIP_DAMAGED,
                          f"DATASETS.H36M_IMAGES.{key} '{file}'")
    return H36MMultiViewImages(table, h.ROOT, image_size=h.IMAGE_SIZE, crop_scale=h.CROP_SCALE,
                               augment=d.AUGMENT and split == "train", scale_factor=d.SCALE_FACTOR,
                               rotation_factor=d.ROTATION_FACTOR)


@DATASETS.register("h36m_toolbox")
def build_h36m_toolbox(cfg, split: str) -> H36MMultiViewImages:
    return _build(cfg, split, read_toolbox_annotations)


@DATASETS.register("h36m_learnable_triangulation")
def build_h36m_learnable_triangulation(cfg, split: str) -> H36MMultiViewImages:
    return _build(cfg, split, lambda file: read_learnable_triangulation_labels(
        file, undistorted=cfg.DATASETS.H36M_IMAGES.UNDISTORTED))
