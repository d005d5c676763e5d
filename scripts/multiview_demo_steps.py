"""The steps of ``scripts/demo_multiview.py``: 3D poses from calibrated multi-camera footage.

1. ``load_footage``: the footage read and checked (``datasets.footage``), its 2D from keypoint files or, with a
   detector, from the toolbox's own image pipeline (``network_keypoints``); ``check_output_folder`` refuses,
   before any work, an output folder that cannot be made.
2. ``reconstruct``: per frame, the detections of one person are associated across views
   (``core.geometry.association``), triangulated per joint with RANSAC over the views (inlier threshold in
   pixels, confidence-weighted refit; ``modeling.heads.ransac``), optionally smoothed in time or instead
   optimised over the whole recording (robust reprojection, smoothness, constant bone lengths;
   ``core.geometry.optimised_triangulation``), and scored by the reprojection error of every joint in every view
   that saw it and by the spread of the bone lengths.
3. ``lift_views`` and ``refine_with_lifter``: optionally, a trained single-view lifter fills the joints
   triangulation misses.
4. ``save_reconstruction``: npz and JSON (world frame of the calibration, millimetres).
5. ``render_overlay``: an MP4 tiling every view (the reprojected 3D in left / right colours, the detections
   thin and grey over it, a known truth as a wide translucent green band under both) beside a 3D panel seen
   from a steady viewpoint, with borders between the panels, the frame number and the frame's median
   reprojection error, and a legend of the colours below.
"""
import logging
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from core.geometry.association import associate_people
from core.geometry.body_orientation import front_azimuth_deg, up_rotation
from core.geometry.cameras import Cameras
from core.geometry.optimised_triangulation import optimise_sequence
from core.geometry.projection import normalized_to_pixels, pixels_to_normalized, undistort
from core.geometry.triangulation import reprojection_errors
from core.images import to_image_tensor
from core.io import save_npz_atomic, write_json_atomic
from core.metrics import align_similarity
from core.skeleton import H36M17
from core.smoothing import smooth_trajectories
from core.video import FrameSource, Mp4Writer
from core.vis import (DETECTION_STYLE, GROUND_TRUTH_3D_STYLE, PROJECTION_STYLE, TRUTH_BAND_STYLE, draw_pose_3d,
                      draw_skeleton, join_panels, pad_to_height, put_label, with_legend)
from datasets.crops import square_crop_affines
from datasets.footage import Footage, FootageError, read_footage, read_footage_cameras
from modeling.heads.ransac import RansacHead
from core.geometry.projection import crop_to_image_pixels

logger = logging.getLogger("epipose")

LOST_FRAMES = 5  # network 2D: frames without the person before a view's crop goes back to the whole image


@dataclass
class Reconstruction:
    points_3d: np.ndarray              # (T, 17, 3) world mm, NaN where not valid
    valid: np.ndarray                  # (T, 17) bool
    keypoints_2d: np.ndarray           # (T, V, 17, 2) the associated detections
    confidence: np.ndarray             # (T, V, 17)
    person: np.ndarray                 # (T, V) the detection chosen in each view, -1 for none
    inliers: np.ndarray                # (T, V, 17) bool: views used for each joint
    reprojection_error: np.ndarray     # (T, V, 17) pixels, NaN where the view did not see the joint
    lifted: Optional[np.ndarray] = None   # (T, 17, 3) world mm: the lifter's views, aligned and averaged
    filled: Optional[np.ndarray] = None   # (T, 17) bool: joints the lifter supplied (triangulation had none)
    lifter_gap_mm: Optional[float] = None  # median distance of the lifted joints from the triangulated ones
    before_optimisation: Optional[dict] = None  # with optimise: the RANSAC result's reprojection and bone statistics


def load_footage(calibration, keypoints: Sequence, layout: str = "auto", videos: Sequence = (),
                 camera_names: Sequence[str] = (), subject: str = "", toml_units: str = "m",
                 detector=None, crop_size: int = 256, crop_scale: float = 1.25) -> Footage:
    """Read and check the inputs (``datasets.footage.read_footage``): ``keypoints`` and ``videos`` hold one path
    per camera, in the order of ``camera_names`` (default: every camera of the calibration, in the file's order).
    With ``detector`` (an image pipeline) the 2D comes from it and the videos instead of keypoint files
    (``network_keypoints``)."""
    if detector is None:
        return read_footage(calibration, keypoints, layout, videos, camera_names, subject, toml_units)
    cameras, names = read_footage_cameras(calibration, keypoints, videos, camera_names, subject, toml_units)
    if keypoints or not videos:
        raise FootageError("2D from the network replaces the keypoint files and needs the videos: give videos, "
                           "not keypoints")
    sources = [FrameSource(path) for path in videos]
    counts = {name: len(source) for name, source in zip(names, sources)}
    if len(set(counts.values())) != 1:
        raise FootageError(f"the videos disagree on the number of frames: {counts}")
    points, confidence = network_keypoints(sources, cameras, detector, crop_size, crop_scale)
    return Footage(cameras, list(names), points, confidence, "h36m", [], [FrameSource(p) for p in videos])


def network_keypoints(videos: Sequence[FrameSource], cameras: Cameras, detector, crop_size: int,
                      crop_scale: float = 1.25, min_confidence: float = 0.3, progress: bool = True):
    """2D of every view from the toolbox's own image pipeline (``detector``, an ``ImagePipeline``) instead of
    keypoint files: (T, V, 1, 17, 2) full-image pixels and (T, V, 1, 17) confidences (heatmap peaks).

    Top-down without a person detector: in the first frame each view's crop is the whole image (the longer
    side, centred); later crops are the square around the previous frame's confident 2D, ``crop_scale`` times
    its larger side (kept when fewer than 4 joints are confident, and back to the whole image after
    ``LOST_FRAMES`` such frames in a row). The crops of a frame's views go through
    the network together with their crop cameras (the crop is folded into K, as in training), and the 2D is
    mapped back to image pixels exactly (``crop_to_image_pixels``)."""
    sizes = cameras.image_size                                                          # V, 2 (w, h)
    whole_centre, whole_side = sizes / 2, sizes.max(-1).values
    centre, side = whole_centre, whole_side
    lost = torch.zeros(len(videos), dtype=torch.int64)
    streams = [source.frames() for source in videos]
    points, confidences = [], []
    for t in tqdm(range(len(videos[0])), desc="2D from the network", disable=not progress):
        images = [next(stream) for stream in streams]
        if t == 0:
            for image, size, source in zip(images, sizes.tolist(), videos):
                if (image.shape[1], image.shape[0]) != tuple(int(v) for v in size):
                    logger.warning("%s: frames are %dx%d, the calibration says %dx%d; the 2D assumes the "
                                   "calibration's pixels", source.path, image.shape[1], image.shape[0], *size)
        affines = square_crop_affines(centre, side, crop_size)
        crops = np.stack([cv2.warpAffine(im, a, (crop_size, crop_size), flags=cv2.INTER_LINEAR)
                          for im, a in zip(images, affines.numpy())])
        crop_cameras = cameras.with_affine(affines, (crop_size, crop_size))
        with torch.no_grad():
            out = detector.detect({"images": to_image_tensor(crops)[None], "cameras": crop_cameras[None]})
        pixels = crop_to_image_pixels(out["pred_2d"][0].double(), crop_cameras, cameras)      # V, J, 2
        confidence = out["confidence_2d"][0].double()
        points.append(pixels)
        confidences.append(confidence)
        sure = (confidence >= min_confidence)[..., None]
        low = torch.where(sure, pixels, torch.inf).min(1).values
        high = torch.where(sure, pixels, -torch.inf).max(1).values
        track = sure.squeeze(-1).sum(-1) >= 4                                            # V
        lost = torch.where(track, 0, lost + 1)
        reset = lost >= LOST_FRAMES
        centre = torch.where(track[:, None], (low + high) / 2, torch.where(reset[:, None], whole_centre, centre))
        side = torch.where(track, (high - low).max(-1).values.clamp_min(32.0) * crop_scale,
                           torch.where(reset, whole_side, side))
    return torch.stack(points)[:, :, None].numpy(), torch.stack(confidences)[:, :, None].numpy()


def reconstruct(footage: Footage, min_confidence: float = 0.3, inlier_threshold_px: float = 20.0,
                smooth_sigma_frames: float = 0.0, optimise: bool = False, smooth_weight: float = 0.3,
                bone_weight: float = 0.3) -> Reconstruction:
    """Associate, triangulate (RANSAC over views), optionally smooth or optimise, and score by reprojection.

    ``optimise``: instead of the Gaussian smoothing (giving both is refused), the RANSAC result is refined over the
    whole recording (``core.geometry.optimised_triangulation``: Huber reprojection error of RANSAC's inliers, or of
    every detection at or above ``min_confidence`` for the joints RANSAC missed, weighted by the confidence, plus ``smooth_weight`` x the accelerations and
    ``bone_weight`` x the deviations from one length per bone, solved jointly), which also fills the joints
    RANSAC missed from their other frames. The reprojection and bone statistics of the RANSAC result are kept in
    ``before_optimisation``; the inliers stay RANSAC's, so the errors over inliers compare the same observations."""
    if optimise and smooth_sigma_frames > 0:
        raise FootageError("--smooth and --optimise: choose one (the optimisation has its own temporal smoothness term)")
    cameras = footage.cameras
    keypoints = torch.from_numpy(footage.keypoints_2d)
    confidence = torch.from_numpy(footage.confidence)
    person = associate_people(keypoints, confidence, cameras, min_confidence=min_confidence)     # T, V
    chosen = person.clamp_min(0)[..., None, None]
    points_2d = keypoints.gather(2, chosen[..., None].expand(-1, -1, 1, *keypoints.shape[-2:])).squeeze(2)
    conf = confidence.gather(2, chosen.expand(-1, -1, 1, confidence.shape[-1])).squeeze(2)
    conf = torch.where(person[..., None] >= 0, conf, torch.zeros_like(conf))
    points_2d = torch.where(conf[..., None] > 0, points_2d, torch.full_like(points_2d, float("nan")))
    head = RansacHead(inlier_threshold_px, confidence_weighted=True, min_confidence=min_confidence)
    result = head(points_2d, conf, cameras.expand(len(points_2d), len(footage.camera_names)))
    points_3d, valid, before = smooth_trajectories(result.points_3d, smooth_sigma_frames), result.valid, None
    errors = _reprojection_errors(cameras, points_3d, valid, points_2d, conf, min_confidence)
    if optimise:
        before = {"median_reprojection_error_px_inliers": _number(_nan_median(
                      np.where(result.used.numpy(), errors.numpy(), np.nan))),
                  "valid_joints": int(valid.sum()), **bone_length_spread(points_3d.numpy())}
        weights = torch.where((conf >= min_confidence) & (result.used | ~result.valid.unsqueeze(1)), conf,
                              torch.zeros_like(conf))
        fit = optimise_sequence(result.points_3d, points_2d, weights, cameras, H36M17.bones, smooth_weight=smooth_weight,
                                bone_weight=bone_weight)
        points_3d, valid = fit.points_3d, fit.valid
        errors = _reprojection_errors(cameras, points_3d, valid, points_2d, conf, min_confidence)
    return Reconstruction(points_3d.numpy(), valid.numpy(), points_2d.numpy(), conf.numpy(), person.numpy(),
                          result.used.numpy(), errors.numpy(), before_optimisation=before)


def bone_length_spread(points_3d: np.ndarray) -> dict:
    """How far the bone lengths of (T, 17, 3) world mm poses (NaN = missing) vary over the frames: the standard
    deviation over the frames of each bone (``core.skeleton.H36M17.bones``, named by its child joint), mm, and its median
    and mean over the bones (a rigid skeleton gives 0)."""
    parents, children = np.array(H36M17.bones).T
    lengths = np.linalg.norm(points_3d[:, children] - points_3d[:, parents], axis=-1)        # T, bones
    spread = _quietly(np.nanstd, lengths, axis=0)
    return {"bone_length_std_mm_median": _number(_nan_median(spread)),
            "bone_length_std_mm_mean": _number(_quietly(np.nanmean, spread)),
            "bone_length_std_mm_per_bone": {H36M17.joint_names[c]: _number(v) for c, v in zip(children, spread)}}


def _reprojection_errors(cameras: Cameras, points_3d, valid, points_2d, confidence, min_confidence: float):
    """(T, V, J) pixel distance of each valid 3D joint's projection from each view's confident detection."""
    errors = reprojection_errors(points_3d, cameras.expand(*points_2d.shape[:2]), points_2d)
    seen = (confidence >= min_confidence) & valid.unsqueeze(1)
    return torch.where(seen, errors, torch.full_like(errors, float("nan")))


def lift_views(footage: Footage, recon: Reconstruction, lifting, virtual: Cameras, frames: int,
               min_confidence: float = 0.3, batch_size: int = 512) -> np.ndarray:
    """(T, 17, 3) world mm: every view's 2D lifted by a trained single-view lifting pipeline (``lifting``,
    ``modeling.pipelines``), turned into the world by the camera's rotation, moved onto the frame's
    triangulated joints by the least-squares similarity, and averaged over the views; NaN where no view could
    be lifted or aligned.

    The lifter learned the cameras of its training data, so each view's 2D is first re-imaged by ``virtual``
    (one of those cameras' intrinsics): the same rays through that camera's K. The rays are not distorted
    again with that camera's lens, so a lifter trained on strongly distorted 2D sees a slightly different
    input. A view's 2D
    misses a joint the detector did not see confidently; the projection of the triangulated joint stands in,
    and views with a joint still missing are not lifted. ``frames``: the lifter's window, edge-padded."""
    cameras, T, V = footage.cameras, footage.num_frames, len(footage.camera_names)
    detected = torch.from_numpy(recon.keypoints_2d)
    confident = torch.from_numpy(recon.confidence >= min_confidence)
    stand_in = cameras.expand(T, V).project(torch.from_numpy(recon.points_3d).unsqueeze(1))
    pixels = torch.where(confident[..., None], detected, stand_in)                        # T, V, J, 2
    rays = undistort(pixels_to_normalized(pixels, cameras.K), cameras.dist)              # per view's camera
    virtual_pixels = normalized_to_pixels(rays, virtual.K[:1].expand(V, 3, 3))           # T, V, J, 2
    liftable = torch.isfinite(virtual_pixels).all(-1).all(-1)                            # T, V
    window = (torch.arange(T)[:, None] + torch.arange(frames) - frames // 2).clamp(0, T - 1)   # T, F
    inputs = virtual_pixels[window].permute(0, 2, 1, 3, 4).reshape(T * V, frames, 1, -1, 2)  # (T V), F, 1, J, 2
    ok = liftable[window].all(1).reshape(-1)
    view_cameras = Cameras(virtual.K[:1].expand(T * V, 1, 3, 3), cameras.R.repeat(T, 1, 1)[:, None],
                           torch.zeros(T * V, 1, 3, dtype=cameras.dtype), torch.zeros(T * V, 1, 5, dtype=cameras.dtype),
                           virtual.image_size[:1].expand(T * V, 1, 2))
    lifted = torch.full((T * V, inputs.shape[-2], 3), float("nan"), dtype=torch.float64)
    rows = torch.nonzero(ok).squeeze(-1)
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chosen = rows[start:start + batch_size]
            points = torch.nan_to_num(inputs[chosen]).float()
            inputs_only = {"keypoints_2d": points, "confidence_2d": torch.ones(points.shape[:-1]),
                           "cameras": view_cameras[chosen]}
            lifted[chosen] = lifting(inputs_only)["pred_3d"].double()                          # root-relative, camera frame
    world = (lifted.reshape(T, V, -1, 3) @ cameras.R.unsqueeze(0)).double()             # R^T x for each row
    target = torch.from_numpy(recon.points_3d).unsqueeze(1).expand(T, V, -1, 3)
    mask = torch.from_numpy(recon.valid).unsqueeze(1).expand(T, V, -1)
    aligned = align_similarity(world, torch.nan_to_num(target), mask & (mask.sum(-1, keepdim=True) >= 3))
    counted = torch.isfinite(aligned).all(-1)                                            # T, V, J
    total = torch.where(counted[..., None], aligned, 0.0).sum(1)
    count = counted.sum(1)
    return torch.where(count[..., None] > 0, total / count.clamp_min(1)[..., None], float("nan")).numpy()


def refine_with_lifter(recon: Reconstruction, lifted: np.ndarray, cameras: Cameras, blend: float = 0.0,
                       min_confidence: float = 0.3) -> Reconstruction:
    """Joints without a triangulation take the lifted estimate; the others become ``(1 - blend) x triangulated
    + blend x lifted`` (0: triangulation kept). The reprojection errors are those of the result;
    ``lifter_gap_mm`` is the median distance of the lifted joints from the triangulated ones (before mixing)."""
    if not 0.0 <= blend <= 1.0:
        raise FootageError(f"the lifter's blend weight must be in [0, 1], got {blend}")
    valid = recon.valid
    both = valid & np.isfinite(lifted).all(-1)
    gap = np.linalg.norm(lifted - recon.points_3d, axis=-1)[both]
    filled = ~valid & np.isfinite(lifted).all(-1)
    mixed = np.where(np.isfinite(lifted), (1 - blend) * recon.points_3d + blend * lifted, recon.points_3d)
    points = np.where(valid[..., None], mixed, np.where(filled[..., None], lifted, np.nan))
    now_valid = valid | filled
    errors = _reprojection_errors(cameras, torch.from_numpy(points), torch.from_numpy(now_valid),
                                  torch.from_numpy(recon.keypoints_2d), torch.from_numpy(recon.confidence),
                                  min_confidence)
    return replace(recon, points_3d=points, valid=now_valid, reprojection_error=errors.numpy(), lifted=lifted,
                   filled=filled, lifter_gap_mm=float(np.median(gap)) if gap.size else None)


def _nan_median(values: np.ndarray, axis=None):
    """``np.nanmedian`` that gives NaN without a warning where every value is NaN."""
    return _quietly(np.nanmedian, values, axis=axis)


def _quietly(nan_function, *args, **kwargs):
    """A numpy NaN-ignoring reduction without its all-NaN RuntimeWarning (the result is NaN there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nan_function(*args, **kwargs)


def summary(footage: Footage, recon: Reconstruction) -> dict:
    """Counts and median reprojection errors: of every view that saw a joint (overall, per joint, per camera),
    and of the RANSAC inliers alone."""
    errors = recon.reprojection_error
    per_joint = _nan_median(errors, axis=(0, 1))
    per_camera = _nan_median(errors, axis=(0, 2))
    overall = _nan_median(errors)
    inliers = _nan_median(np.where(recon.inliers, errors, np.nan))
    lifter = {}
    if recon.lifted is not None:
        lifter = {"lifter_filled_joints": int(recon.filled.sum()),
                  "lifter_to_triangulation_median_mm": None if recon.lifter_gap_mm is None else
                  _number(recon.lifter_gap_mm)}
    optimised = {} if recon.before_optimisation is None else {"before_optimisation": recon.before_optimisation}
    return {**lifter, **optimised, "frames": footage.num_frames, "cameras": footage.camera_names,
            "layout": footage.layout,
            "approximated_joints": footage.approximated,
            "valid_joints": int(recon.valid.sum()), "joints": int(recon.valid.size),
            "median_reprojection_error_px": _number(overall),
            "median_reprojection_error_px_inliers": _number(inliers),
            "median_reprojection_error_px_per_joint": dict(zip(H36M17.joint_names, map(_number, per_joint))),
            "median_reprojection_error_px_per_camera": dict(zip(footage.camera_names, map(_number, per_camera))),
            **bone_length_spread(recon.points_3d)}


def _number(value) -> Optional[float]:
    return round(float(value), 2) if np.isfinite(value) else None


def check_output_folder(path) -> None:
    """Refuse an output folder that cannot be created or written, before any work: a folder is made and removed
    again where ``path`` is (or would be) created, so nothing is left behind."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise FootageError(f"output folder '{path}': '{existing}' is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as err:
        raise FootageError(f"output folder '{path}' cannot be created or written (no folder can be made in "
                           f"'{existing}': {err.strerror}); choose another --out") from None


def save_reconstruction(out_dir, footage: Footage, recon: Reconstruction) -> dict:
    """``poses_3d.npz`` (arrays) and ``poses_3d.json`` (per frame: 17 [x, y, z] mm or null, and the
    per-joint reprojection errors), both atomic; returns the summary also written to ``summary.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lifter = {} if recon.lifted is None else {"lifted_mm": recon.lifted, "filled": recon.filled}
    save_npz_atomic({"points_3d_mm": recon.points_3d, "valid": recon.valid, "keypoints_2d": recon.keypoints_2d,
                     "confidence": recon.confidence, "person": recon.person, "inliers": recon.inliers,
                     "reprojection_error_px": recon.reprojection_error, **lifter,
                     "camera_names": np.array(footage.camera_names), "joint_names": np.array(H36M17.joint_names)},
                    out_dir / "poses_3d.npz")

    def rounded(values):
        return [None if not np.isfinite(v).all() else [round(float(x), 2) for x in np.atleast_1d(v)]
                for v in values]
    frames = [{"frame": t,
               "joints_mm": rounded(recon.points_3d[t]),
               "reprojection_error_px": {name: [None if not np.isfinite(e) else round(float(e), 2) for e in errs]
                                         for name, errs in zip(footage.camera_names, recon.reprojection_error[t])}}
              for t in range(footage.num_frames)]
    write_json_atomic({"units": "mm", "frame_of_reference": "world frame of the calibration",
                       "joint_names": list(H36M17.joint_names), "camera_names": footage.camera_names, "frames": frames},
                      out_dir / "poses_3d.json")
    stats = summary(footage, recon)
    write_json_atomic(stats, out_dir / "summary.json")
    return stats


def render_overlay(path, footage: Footage, recon: Reconstruction, fps: float, view_height: int = 480,
                   progress: bool = True, truth: Optional[np.ndarray] = None) -> Path:
    """The overlay MP4 (see the module docstring); needs ``footage.videos``. ``truth`` (T, 17, 3) world mm, NaN
    where unknown: a known 3D drawn under the reconstruction."""
    if not footage.videos:
        raise FootageError("an overlay video needs the cameras' videos or image folders")
    rotation = up_rotation(recon.points_3d, H36M17)
    z_up = recon.points_3d @ rotation.T
    finite = z_up[np.isfinite(z_up).all(-1)]
    centre = (finite.min(0) + finite.max(0)) / 2 if len(finite) else np.zeros(3)
    radius = float(np.linalg.norm(finite - centre, axis=-1).max()) if len(finite) else 1000.0
    azimuth = front_azimuth_deg(z_up, H36M17) + 30.0
    shown = np.stack([recon.points_3d] if truth is None else [truth, recon.points_3d], 1)  # T, (truth,) 3D, J, 3
    projected = footage.cameras.expand(footage.num_frames, shown.shape[1], len(footage.camera_names)).project(
        torch.from_numpy(shown).unsqueeze(2)).numpy()                                # T, (truth,) 3D, V, J, 2
    shown_z_up = shown @ rotation.T
    styles_2d = [PROJECTION_STYLE] if truth is None else [TRUTH_BAND_STYLE, PROJECTION_STYLE]
    styles_3d = [PROJECTION_STYLE] if truth is None else [GROUND_TRUTH_3D_STYLE, PROJECTION_STYLE]
    legend = [("truth", TRUTH_BAND_STYLE)] * (truth is not None) + [
        ("3D, reprojected: left / right", PROJECTION_STYLE), ("2D detections", DETECTION_STYLE)]
    frame_error = _nan_median(recon.reprojection_error, axis=(1, 2))
    streams = [source.frames() for source in footage.videos]
    with Mp4Writer(path, fps) as writer:
        for t in tqdm(range(footage.num_frames), desc="overlay video", disable=not progress):
            panels = []
            for v, stream in enumerate(streams):
                image = next(stream)
                scale = view_height / image.shape[0]
                image = cv2.resize(image, (int(round(image.shape[1] * scale)), view_height),
                                   interpolation=cv2.INTER_AREA)
                for points, style in zip(projected[t, :, v], styles_2d):
                    image = draw_skeleton(image, points, style, scale=scale, skeleton=H36M17)
                image = draw_skeleton(image, recon.keypoints_2d[t, v], DETECTION_STYLE, scale=scale,
                                      skeleton=H36M17)
                panels.append(put_label(image, footage.camera_names[v]))
            panel_3d = draw_pose_3d(list(shown_z_up[t]), styles_3d, size=(view_height, view_height),
                                    azimuth_deg=azimuth, center=centre, radius=radius, skeleton=H36M17)
            panels.append(put_label(panel_3d, "3D, world (steady view)"))
            canvas = join_panels([pad_to_height(p, view_height) for p in panels])
            canvas = put_label(canvas, f"frame {t}", "bottom_left")
            label = f"median reprojection {frame_error[t]:.1f} px" if np.isfinite(frame_error[t]) else \
                "no 3D in this frame"
            writer.write(with_legend(put_label(canvas, label, "bottom_right"), legend))
    return Path(path)
