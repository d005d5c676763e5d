"""The embedded synthetic multi-view world as a torch ``Dataset``: the default data of EpiPose.

``SyntheticWorld`` generates, deterministically from a seed, one sequence per subject, action and
repeat (plus optional BVH clips): the 3D motion (``motion.py``), a camera rig (``rigs.py``), the
exact 2D projections in every view, joint visibility from the renderer's depth test
(``render.joint_visibility``) and detector-like noisy 2D with confidences (``noise.py``).

Two options (both off by default, which leaves the world exactly as it was):

- ``DATASETS.SYNTHETIC.BODY_PER_SEQUENCE``: every sequence of the training split moves a body of its
  own (``bodies.make_sequence_body``, from the sequence name and the seed), so the training set has
  subjects x actions x SEQUENCES_PER_ACTION distinct bodies; the validation and test subjects keep
  their fixed per-subject bodies (``bodies.make_body``).
- ``DATASETS.SYNTHETIC.OCCLUDERS``: that many occluders per sequence (``occluders.make_occluders``; test
  sequences too): poles, boxes and other people (acting in place), each standing between one
  random camera and the person, clear of the person, so it hides part of the person in that view
  while the other views see it. They are drawn in the crops, hide joints in ``visibility`` (and so
  the detector noise of occluded joints in keypoints mode);
  the crop box still frames the person alone.

``SyntheticMultiView`` turns it into samples: the windowed keypoint samples of ``datasets.sequences``
(their keys are listed there), whose 2D input is the noisy detections of the full image in keypoints
mode. In images mode a sample also holds ``images`` (V,3,S,S) float32, ImageNet-normalised RGB crops;
its ``cameras`` then have the crop and resize folded into K (``image_cameras``: those of the full images) and
``keypoints_2d_crop`` holds the exact projections in the crop (the heatmap targets), in place of the 2D input
keys (``core.sample_schema``).

Images are rendered on the fly (deterministic per sample) or read from an HDF5 cache that is built
once, atomically, when ``cache_dir`` is set. The detector noise is drawn once per sequence when the
world is built (deterministic from the seed), so every epoch sees the same noisy 2D, as a fixed set
of detections (e.g. CPN keypoints of Human3.6M) would be.
"""
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from core.geometry.cameras import Cameras
from core.images import to_image_tensor
from core.io import atomic_write
from core.registry import DATASETS
from core.skeleton import H36M17, Skeleton, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split, views_of_split
from datasets.crops import joints_box, random_zoom_rotation, square_crop_affines
from datasets.sequences import KeypointSequence, SequenceSamples
from datasets.synthetic import bodies, motion, rigs
from datasets.synthetic.noise import DetectorNoise, apply_detector_noise
from datasets.synthetic.occluders import Occluder, make_occluders, scene_parts, scene_points
from datasets.synthetic.render import joint_visibility, random_backgrounds, render_capsules
from datasets.synthetic.seeding import stable_seed

logger = logging.getLogger("epipose")

# Version of the rendered look (body parts, landmarks, shading): part of the image cache's key.
LOOK = 2
MODES = ("keypoints", "images")
RIGS = ("h36m_ring", "random")
CLIP_SUBJECT = "mocap"
_LATER_SPEC_DEFAULTS = {"body_per_sequence": False, "occluders": 0, "front_print": False}


@dataclass
class WorldSpec:
    """What the world holds. ``body_per_sequence``: every sequence gets a body of its own
    (``bodies.make_sequence_body``) instead of its subject's; ``world_spec_from_config`` sets it for the
    training split only, so the test subjects keep their fixed bodies. ``occluders``: occluding objects
    per sequence (``make_occluders``). ``front_print``: every body, the occluding people's too, wears a print on its
    shirt front (``bodies.with_front_print``)."""
    subjects: Sequence[str]
    actions: Sequence[str]
    sequences_per_action: int = 1
    frames_per_sequence: int = 200
    fps: float = 50.0
    rig: str = "h36m_ring"
    num_cameras: int = 4
    seed: int = 0
    motion_files: Sequence[str] = ()
    noise: DetectorNoise = field(default_factory=DetectorNoise)
    body_per_sequence: bool = False
    occluders: int = 0
    front_print: bool = False


@dataclass
class SyntheticSequence(KeypointSequence):
    """A take of the synthetic world: a ``KeypointSequence`` (noisy 2D as the input), the body that
    moves in it and the occluders around it (for rendering)."""
    body: "bodies.Body" = None
    occluders: Tuple[Occluder, ...] = ()

    def scene_points(self, frames) -> np.ndarray:
        """(..., N, 3) world mm of the whole scene at ``frames`` (an index, slice or index array): the body's
        surface points (its 17 joints first), then each occluder's points; ``scene_parts`` indexes them."""
        return scene_points(self.body.surface_points(self.keypoints_3d[frames]), self.occluders, frames)

    def scene_parts(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The parts of the body and the occluders, as ``Body.part_arrays`` gives them, into ``scene_points``."""
        return scene_parts(self.body, self.occluders)


class SyntheticWorld:
    """All sequences of one split, generated at construction (cheap: no images)."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self._check(spec)
        self.sequences: List[SyntheticSequence] = []
        for subject in spec.subjects:
            subject_body = self._dress(bodies.make_body(subject, spec.seed))
            for action in spec.actions:
                for repeat in range(spec.sequences_per_action):
                    name = f"{subject}/{action}/{repeat}"
                    seed = stable_seed(spec.seed, name)
                    body = self._dress(bodies.make_sequence_body(name, spec.seed)) if spec.body_per_sequence \
                        else subject_body
                    points = motion.generate_sequence(body, action, spec.frames_per_sequence, fps=spec.fps, seed=seed)
                    self.sequences.append(self._observe(name, subject, action, body, points, seed))
        for path in spec.motion_files:
            # The clip's action is its file stem with "_" as "-", so that the metrics' take-suffix
            # grouping ("Walking 1" -> "Walking") keeps clips such as 131_01 apart.
            action = Path(path).stem.replace("_", "-")
            name = f"{CLIP_SUBJECT}/{action}/0"
            points = self._load_clip(path, spec.fps)
            body = self._dress(bodies.make_sequence_body(name, spec.seed) if spec.body_per_sequence else
                               bodies.make_body(CLIP_SUBJECT, spec.seed))
            self.sequences.append(self._observe(name, CLIP_SUBJECT, action, body, points,
                                                stable_seed(spec.seed, name)))
        if not self.sequences:
            raise DatasetError("the synthetic world has no sequences: DATASETS.SYNTHETIC subjects, actions or "
                               "MOTION_FILES are empty")

    def _dress(self, body: "bodies.Body") -> "bodies.Body":
        return bodies.with_front_print(body) if self.spec.front_print else body

    @staticmethod
    def _check(spec: WorldSpec) -> None:
        unknown = sorted(set(spec.actions) - set(motion.ACTIONS))
        if unknown:
            raise DatasetError(f"DATASETS.SYNTHETIC.ACTIONS: unknown action(s) {', '.join(unknown)}; "
                               f"available: {', '.join(motion.ACTIONS)}")
        if spec.rig not in RIGS:
            raise DatasetError(f"DATASETS.SYNTHETIC.RIG: unknown rig '{spec.rig}'; expected one of {', '.join(RIGS)}")
        if not 2 <= spec.num_cameras <= 8:
            raise DatasetError(f"DATASETS.SYNTHETIC.NUM_CAMERAS must be in 2..8, got {spec.num_cameras}")
        if spec.frames_per_sequence < 1 or spec.sequences_per_action < 0 or spec.fps <= 0:
            raise DatasetError("DATASETS.SYNTHETIC: FRAMES_PER_SEQUENCE and FPS must be positive and "
                               "SEQUENCES_PER_ACTION non-negative")
        _check_flag("BODY_PER_SEQUENCE", spec.body_per_sequence)
        _check_flag("FRONT_PRINT", spec.front_print)
        if isinstance(spec.occluders, (bool, np.bool_)) or not isinstance(spec.occluders, (int, np.integer)) \
                or spec.occluders < 0:
            raise DatasetError(f"DATASETS.SYNTHETIC.OCCLUDERS must be a non-negative integer (occluding objects per "
                               f"sequence; 0: none), got {spec.occluders!r}")

    @staticmethod
    def _load_clip(path: str, fps: float) -> np.ndarray:
        from datasets.formats.bvh import load_motion_file
        if not Path(path).is_file():
            raise DatasetError(f"DATASETS.SYNTHETIC.MOTION_FILES: '{path}' does not exist (a BVH clip is expected)")
        try:
            points = load_motion_file(path, target_fps=fps)
        except ValueError as err:
            raise DatasetError(str(err)) from None
        # Centre the clip's mean ground position on the capture area, keeping its height.
        centre = np.nanmean(points[:, 0, :2], axis=0)
        points = points.copy()
        points[..., :2] -= centre
        return points

    def _rig(self, seed: int) -> Cameras:
        if self.spec.rig == "h36m_ring":
            return rigs.h36m_like_ring(self.spec.num_cameras)
        return rigs.random_rig(self.spec.num_cameras, seed=seed)

    def _observe(self, name, subject, action, body, points: np.ndarray, seed: int) -> SyntheticSequence:
        cameras = self._rig(seed)
        num_frames, num_views = len(points), len(cameras)
        surface = body.surface_points(points)                      # T, P, 3: joints, then landmarks
        occluders = make_occluders(name, surface, body.part_arrays()[1], cameras, self.spec.occluders,
                                   self.spec.seed, self.spec.fps, self.spec.front_print) if self.spec.occluders else ()
        surface = scene_points(surface, occluders)                 # then the occluders' points
        part_joints, radius, _ = scene_parts(body, occluders)
        num_points = surface.shape[1]
        world = torch.from_numpy(surface).to(cameras.dtype).reshape(1, -1, 3).expand(num_views, -1, -1)
        pixels = cameras.project(world).reshape(num_views, num_frames, num_points, 2)
        depth = cameras.world_to_camera(world)[..., 2].reshape(num_views, num_frames, num_points)
        if not bool((depth > 0).all()):
            raise DatasetError(f"synthetic sequence {name}: a joint is behind a camera; the rig does not "
                               "frame the capture area")
        pixels = pixels.transpose(0, 1).numpy()                   # T, V, P, 2
        depth = depth.transpose(0, 1).numpy()                      # T, V, P
        focal = cameras.focal_lengths.mean(-1).numpy()             # V
        visibility = np.zeros((num_frames, num_views, H36M17.num_joints), dtype=bool)
        sizes = cameras.image_size.numpy()
        for size in np.unique(sizes, axis=0):  # one call per distinct image size (usually one)
            views = np.flatnonzero((sizes == size).all(-1))
            visibility[:, views] = joint_visibility(
                pixels[:, views].reshape(-1, num_points, 2), depth[:, views].reshape(-1, num_points),
                np.broadcast_to(focal[views], (num_frames, len(views))).reshape(-1), part_joints, radius,
                tuple(size), num_queried=H36M17.num_joints).reshape(num_frames, len(views), H36M17.num_joints)
        pixels = pixels[:, :, :H36M17.num_joints]
        rng = np.random.default_rng(stable_seed(seed, "noise"))
        noisy, confidence = apply_detector_noise(pixels, visibility, self.spec.noise, rng)
        return SyntheticSequence(name=name, subject=subject, action=action, keypoints_3d=points.astype(np.float32),
                                 cameras=cameras, keypoints_2d=noisy.astype(np.float32),
                                 keypoints_2d_gt=pixels.astype(np.float32), confidence_2d=confidence.astype(np.float32),
                                 visibility=visibility, body=body, occluders=occluders)


class SyntheticMultiView(SequenceSamples):
    """Samples of a ``SyntheticWorld`` (``datasets.sequences.SequenceSamples``), with rendered crops in images
    mode."""

    def __init__(self, world: SyntheticWorld, skeleton: Skeleton = H36M17, mode: str = "keypoints", views: str = "all",
                 frames: int = 1, stride: int = 1, image_size: int = 256, crop_scale: float = 1.25, cache_dir: str = "",
                 augment: bool = False, scale_factor: float = 0.25, rotation_factor: float = 30.0,
                 flip: bool = False):
        if mode not in MODES:
            raise DatasetError(f"DATASETS.MODE: unknown mode '{mode}'; expected one of {', '.join(MODES)}")
        if image_size < 8 or crop_scale <= 0:
            raise DatasetError("DATASETS.SYNTHETIC.IMAGE_SIZE must be >= 8 and CROP_SCALE > 0")
        if augment and cache_dir and mode == "images":
            raise DatasetError("DATASETS.SYNTHETIC.CACHE_DIR cannot be used with DATASETS.AUGMENT: augmented crops "
                               "are rendered on the fly")
        if flip and mode == "images":
            raise DatasetError("DATASETS.FLIP mirrors keypoint samples; images mode does not mirror crops "
                               "(He et al. train without flips): set DATASETS.FLIP False")
        if not (0 <= scale_factor < 1 and rotation_factor >= 0):
            raise DatasetError(f"DATASETS.SCALE_FACTOR must be in [0, 1) and DATASETS.ROTATION_FACTOR >= 0, got "
                               f"{scale_factor} and {rotation_factor}")
        super().__init__(world.sequences, skeleton, layout=H36M17, views=views, frames=frames, stride=stride, flip=flip)
        self.world, self.mode = world, mode
        self.image_size, self.crop_scale = image_size, crop_scale
        self.augment, self.scale_factor, self.rotation_factor = augment, scale_factor, rotation_factor
        self.cache_path = self._build_cache(Path(cache_dir)) if (cache_dir and mode == "images") else None
        self._cache = None

    def __getitem__(self, index: int):
        if self.mode == "keypoints":
            return super().__getitem__(index)
        frame_sample, views, number, frame, window = self.locate(index)
        sample = self.base_sample(number, frame, window, views)
        seq = self.sequences[number]
        cameras = seq.cameras[torch.from_numpy(views)]
        crop_cameras = self.crop_cameras(seq, frame, cameras, *self._augmentation(len(views)))
        world = torch.from_numpy(seq.keypoints_3d[window]).to(cameras.dtype).reshape(1, -1, 3)
        crop_2d = crop_cameras.project(world.expand(len(views), -1, -1))
        crop_2d = crop_2d.reshape(len(views), len(window), H36M17.num_joints, 2).transpose(0, 1).float()
        images = self._cached_images(frame_sample, views) if self.cache_path else \
            self.render(seq, frame, crop_cameras, stable_seed(self.world.spec.seed, seq.name, frame, "image"), views)
        sample.update(keypoints_2d_crop=crop_2d, cameras=crop_cameras, image_cameras=cameras,
                      images=to_image_tensor(images))
        return self.in_skeleton(sample)

    # ----- images ---------------------------------------------------------------------------------
    def crop_cameras(self, seq: SyntheticSequence, frame: int, cameras: Cameras, zoom=None,
                     rotation_deg=None) -> Cameras:
        """Cameras whose K maps into a square crop around the person's exact 2D box, resized to S x S,
        optionally zoomed by ``zoom`` (V,) and rotated by ``rotation_deg`` (V,) about the crop centre
        (augmentation): ``x_crop = S/2 + s R(rotation) (x - centre)``, folded into K, so that the
        projections and epipolar geometry of the crop stay exact."""
        views = cameras  # (V,)
        points = torch.from_numpy(seq.keypoints_3d[frame]).to(views.dtype).expand(len(views), -1, -1)
        pixels = views.project(points)                                            # V, J, 2
        centre, side = joints_box(pixels, views.image_size, self.crop_scale)
        affines = square_crop_affines(centre, side, self.image_size, zoom, rotation_deg)
        return views.with_affine(affines, (self.image_size, self.image_size))

    def _augmentation(self, num_views: int):
        """Per-view zoom and rotation (``datasets.crops.random_zoom_rotation``); (None, None) without
        augmentation."""
        if not self.augment:
            return None, None
        return random_zoom_rotation(num_views, self.scale_factor, self.rotation_factor)

    def render(self, seq: SyntheticSequence, frame: int, crop_cameras: Cameras, seed: int, views) -> np.ndarray:
        """(V, S, S, 3) uint8 RGB crops of one frame."""
        rng = np.random.default_rng(seed)
        surface = torch.from_numpy(seq.scene_points(frame))  # the body, then the occluders
        points = surface.to(crop_cameras.dtype).expand(len(crop_cameras), -1, -1)
        pixels = crop_cameras.project(points).numpy()
        depth = crop_cameras.world_to_camera(points)[..., 2].numpy()
        focal = crop_cameras.focal_lengths.mean(-1).numpy()
        part_joints, radius, color = seq.scene_parts()
        background = random_backgrounds(rng, len(crop_cameras), self.image_size, self.image_size)
        images, _ = render_capsules(pixels, depth, focal, part_joints, radius, color, background, rng=rng)
        return images

    def _cache_key(self) -> str:
        spec = asdict(self.world.spec)
        for key, default in _LATER_SPEC_DEFAULTS.items():
            if spec[key] == default:
                del spec[key]
        spec.update(image_size=self.image_size, crop_scale=self.crop_scale, frames=len(self.seq_index), look=LOOK,
                    first_frames=self.frame_index[:4].tolist())
        return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _build_cache(self, cache_dir: Path) -> Path:
        import h5py
        path = cache_dir / f"synthetic_{self._cache_key()}.h5"
        shape = (len(self.seq_index), self.num_views, self.image_size, self.image_size, 3)
        if path.is_file():
            try:
                with h5py.File(path, "r") as f:
                    found = f["images"].shape if "images" in f else None
            except OSError as err:
                raise DatasetError(f"rendered-image cache '{path}' is unreadable ({err}); delete it and it is "
                                   "rendered again") from None
            if found != shape:
                raise DatasetError(f"rendered-image cache '{path}' holds images {found}, expected {shape}; delete "
                                   "it and it is rendered again")
            return path
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DatasetError(f"DATASETS.SYNTHETIC.CACHE_DIR '{cache_dir}' cannot be created: {err.strerror}") from None
        views = np.arange(self.num_views)

        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w") as f:
                data = f.create_dataset("images", shape, dtype=np.uint8, chunks=(1,) + shape[1:], compression="lzf")
                for i in tqdm(range(len(self.seq_index)), desc=f"rendering cache {path.name}", leave=False):
                    seq = self.world.sequences[self.seq_index[i]]
                    frame = int(self.frame_index[i])
                    crop = self.crop_cameras(seq, frame, seq.cameras)
                    data[i] = self.render(seq, frame, crop, stable_seed(self.world.spec.seed, seq.name, frame, "image"),
                                          views)

        atomic_write(path, write)
        logger.info("cached %d rendered frames in %s", len(self.seq_index), path)
        return path

    def __getstate__(self):
        """An open HDF5 handle is neither picklable nor safe to share with workers: each reopens it."""
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def _cached_images(self, frame_sample: int, views) -> np.ndarray:
        if self._cache is None:  # opened lazily, once per DataLoader worker
            import h5py
            self._cache = h5py.File(self.cache_path, "r")["images"]
        return self._cache[frame_sample][views]


def _check_flag(key: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise DatasetError(f"DATASETS.SYNTHETIC.{key} must be True or False, got {value!r}")


def world_spec_from_config(cfg, split: str) -> WorldSpec:
    """The world of ``split``; ``BODY_PER_SEQUENCE`` applies to the training split only (validation and test
    subjects keep their fixed per-subject bodies, unseen in training)."""
    s = cfg.DATASETS.SYNTHETIC
    _check_flag("BODY_PER_SEQUENCE", s.BODY_PER_SEQUENCE)
    _check_flag("FRONT_PRINT", s.FRONT_PRINT)
    n = s.NOISE
    subjects = subjects_of_split(cfg, split, s.TRAIN_SUBJECTS, s.TEST_SUBJECTS, "DATASETS.SYNTHETIC")
    clips = s.MOTION_FILES if s.MOTION_FILES_SPLIT in (split, "both") else []
    try:
        noise = DetectorNoise(jitter_std_px=n.JITTER_PX, temporal_correlation=n.TEMPORAL_CORRELATION,
                              occluded_jitter_scale=n.OCCLUDED_SCALE, outlier_prob=n.OUTLIER_PROB,
                              outlier_std_px=n.OUTLIER_PX, swap_prob=n.SWAP_PROB)
    except ValueError as err:
        raise DatasetError(f"DATASETS.SYNTHETIC.NOISE: {err}") from None
    return WorldSpec(subjects=list(subjects), actions=list(s.ACTIONS) or list(motion.ACTIONS),
                     sequences_per_action=s.SEQUENCES_PER_ACTION, frames_per_sequence=s.FRAMES_PER_SEQUENCE,
                     fps=float(s.FPS), rig=s.RIG, num_cameras=s.NUM_CAMERAS, seed=s.SEED, motion_files=list(clips),
                     noise=noise, body_per_sequence=bool(s.BODY_PER_SEQUENCE) and split == "train",
                     occluders=s.OCCLUDERS, front_print=bool(s.FRONT_PRINT))


@DATASETS.register("synthetic")
def build_synthetic(cfg, split: str) -> SyntheticMultiView:
    d = cfg.DATASETS
    return SyntheticMultiView(SyntheticWorld(world_spec_from_config(cfg, split)), skeleton_of(cfg), mode=d.MODE,
                              views=views_of_split(cfg, split),
                              frames=d.FRAMES, stride=stride_of_split(cfg, split),
                              image_size=d.SYNTHETIC.IMAGE_SIZE, crop_scale=d.SYNTHETIC.CROP_SCALE,
                              cache_dir=d.SYNTHETIC.CACHE_DIR, augment=d.AUGMENT and split == "train",
                              scale_factor=d.SCALE_FACTOR, rotation_factor=d.ROTATION_FACTOR,
                              flip=d.FLIP and split == "train")
