"""Overlay videos of test sequences: one MP4 per sequence, each frame tiling every view with the predicted 2D
(the 3D prediction projected; left limbs blue, right limbs red) over the ground truth (a wide translucent green
band), drawn on the view's image (image datasets) or on a dark canvas that frames the person's whole path
(keypoint datasets), beside a 3D panel of the prediction over the truth seen from a viewpoint that stays fixed
for the sequence; light borders between the panels, the frame number and the frame's MPJPE in corners, and a
legend of the colours below.

Root-relative predictions (lifters) are drawn as ``core.engine.preview`` draws them: placed at the true pelvis
to project them, and in 3D root-relative (camera frame for single-view lifters, world frame otherwise).
Absolute predictions are projected as they are and drawn in the world frame.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from core.engine.preview import CAMERA_TO_Z_UP, ELEVATION_DEG, GROUND_TRUTH_3D_STYLE, root_relative_poses
from core.geometry.body_orientation import front_azimuth_deg
from core.images import to_uint8_images
from core.sample_schema import exact_2d, unbatched_centre
from core.skeleton import Skeleton
from core.video import Mp4Writer
from core.vis import (GROUND_TRUTH_STYLE, SIDED_PREDICTION_STYLE, draw_pose_3d, draw_skeleton, join_panels,
                      put_label, with_legend)

logger = logging.getLogger("epipose")

LEGEND = (("truth", GROUND_TRUTH_STYLE), ("prediction, left / right", SIDED_PREDICTION_STYLE))
PATH_MARGIN = 1.15  # keypoint datasets: the canvas shows the person's 2D path over the sequence, with this margin


@dataclass
class SequenceView:
    """What stays fixed over a sequence: the 3D panel's centre, radius and azimuth, and (keypoint datasets)
    each view's zoom (scale, offset) onto the person's path."""
    centre: np.ndarray
    radius: float
    azimuth: float
    frame: str                    # world or camera
    scales: np.ndarray            # (V,)
    offsets: np.ndarray           # (V, 2)


def choose_sequences(sequence_ids: np.ndarray, count: int) -> Dict[str, np.ndarray]:
    """``count`` sequences (0 = all) spread over the test set, in order of appearance: name -> its rows."""
    names, first = np.unique(sequence_ids, return_index=True)
    names = names[np.argsort(first)]
    if 0 < count < len(names):
        names = names[np.linspace(0, len(names) - 1, count).round().astype(int)]
    return {str(name): np.flatnonzero(sequence_ids == name) for name in names}


def _poses(sample, pred_3d: np.ndarray, absolute: bool, root: int) -> dict:
    """The frame's truth and prediction for the 3D panel (z-up), the prediction in world mm, and the MPJPE."""
    if absolute:
        target = unbatched_centre(sample["keypoints_3d"]).double().numpy()
        pred_world = np.asarray(pred_3d, dtype=np.float64)
        return {"target": target, "pred": pred_world, "pred_world": pred_world, "frame": "world", "relative": False,
                "error": np.nanmean(np.linalg.norm(pred_world - target, axis=-1))}
    relative = root_relative_poses(sample, pred_3d, root)
    error = np.nanmean(np.linalg.norm(relative["pred"] - relative["target"], axis=-1))
    if relative["frame"] == "camera":
        relative["target"] = relative["target"] @ CAMERA_TO_Z_UP.T
        relative["pred"] = relative["pred"] @ CAMERA_TO_Z_UP.T
    return {**relative, "relative": True, "error": error}


def sequence_view(samples: Sequence[dict], poses: Sequence[dict], canvas: int, skeleton: Skeleton) -> SequenceView:
    targets = np.stack([p["target"] for p in poses])                                  # T, J, 3
    finite = targets[np.isfinite(targets).all(-1)]
    centre = (finite.min(0) + finite.max(0)) / 2
    radius = float(np.linalg.norm(finite - centre, axis=-1).max())
    azimuth = 0.0 if poses[0]["frame"] == "camera" else float(np.median([front_azimuth_deg(p["target"], skeleton)
                                                                          for p in poses]))
    exact = np.stack([unbatched_centre(exact_2d(s)).numpy() for s in samples])                            # T,V,J,2
    low, high = np.nanmin(exact, axis=(0, 2)), np.nanmax(exact, axis=(0, 2))                                # V, 2
    scales = canvas / (PATH_MARGIN * (high - low).max(-1).clip(min=1.0))
    offsets = canvas / 2 - (low + high) / 2 * scales[:, None]
    return SequenceView(centre, radius, azimuth, poses[0]["frame"], scales, offsets)


def video_frame(sample, pose: dict, view: SequenceView, height: int, frame_number: int, skeleton: Skeleton) \
        -> np.ndarray:
    """One video frame: the views and the 3D panel side by side, ``height`` pixels high."""
    cameras = sample["cameras"]
    exact = unbatched_centre(exact_2d(sample)).numpy()
    points = torch.as_tensor(pose["pred_world"], dtype=cameras.dtype).expand(len(cameras), -1, -1)
    projected = cameras.project(points).numpy()
    panels = []
    for v in range(len(cameras)):
        if "images_uint8" in sample:
            image = sample["images_uint8"][v]
            scale, offset = height / image.shape[0], np.zeros(2)
            image = cv2.resize(image, (int(round(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
        else:
            image = np.full((height, height, 3), 40, dtype=np.uint8)
            scale, offset = view.scales[v], view.offsets[v]
        panel = draw_skeleton(image, exact[v], GROUND_TRUTH_STYLE, scale=scale, offset=offset, skeleton=skeleton)
        panel = draw_skeleton(panel, projected[v], SIDED_PREDICTION_STYLE, scale=scale, offset=offset,
                              skeleton=skeleton)
        panels.append(put_label(panel, f"cam {int(sample['camera_ids'][v])}"))
    panel_3d = draw_pose_3d([pose["target"], pose["pred"]], [GROUND_TRUTH_3D_STYLE, SIDED_PREDICTION_STYLE],
                            size=(height, height), elevation_deg=ELEVATION_DEG, azimuth_deg=view.azimuth,
                            center=view.centre, radius=view.radius, skeleton=skeleton)
    kind = ", root-relative" if pose["relative"] else ""
    panels.append(put_label(panel_3d, f"3D, {pose['frame']} frame{kind}"))
    canvas = put_label(join_panels(panels), f"frame {frame_number}", "bottom_left")
    error = f"MPJPE {pose['error']:.1f} mm" if np.isfinite(pose["error"]) else "MPJPE n/a"
    return with_legend(put_label(canvas, error, "bottom_right"), LEGEND)


def _without_images(sample: dict) -> dict:
    """The sample without its images (the first pass keeps a whole sequence's samples)."""
    sample.pop("images", None)
    return sample


def _with_uint8_images(sample: dict) -> dict:
    if "images" in sample:
        sample["images_uint8"] = to_uint8_images(sample.pop("images"))
    return sample


def write_sequence_videos(test_set, pred_3d: np.ndarray, rows_by_sequence: Dict[str, np.ndarray], absolute: bool,
                          folder, fps: float, height: int = 256) -> List[Path]:
    """One MP4 per sequence of ``rows_by_sequence`` (rows index both ``test_set`` and ``pred_3d``), named after
    the sequence, in ``folder``; the joints are those of ``test_set.skeleton``."""
    folder, skeleton = Path(folder), test_set.skeleton
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    images = "images" in test_set[int(next(iter(rows_by_sequence.values()))[0])]
    for name, rows in rows_by_sequence.items():
        # first pass without images (the steady view needs the whole sequence), then one sample at a time
        samples = [_without_images(test_set[int(r)]) for r in tqdm(rows, desc=f"video {name}", disable=None,
                                                                    leave=False)]
        order = np.argsort([s["meta"]["frame"] for s in samples], kind="stable")
        samples, rows = [samples[i] for i in order], rows[order]
        poses = [_poses(s, pred_3d[r], absolute, skeleton.root) for s, r in zip(samples, rows)]
        steady = sequence_view(samples, poses, height, skeleton)
        path = folder / f"{name.replace('/', '_')}.mp4"
        with Mp4Writer(path, fps) as writer:
            for sample, pose, row in zip(samples, poses, rows):
                full = _with_uint8_images(test_set[int(row)]) if images else sample
                writer.write(video_frame(full, pose, steady, height, sample["meta"]["frame"], skeleton))
        logger.info("wrote %s (%d frames)", path, len(samples))
        written.append(path)
    return written
