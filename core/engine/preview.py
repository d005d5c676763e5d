"""Preview pictures of test samples: every view tiled (light borders between the panels), with the exact 2D
(ground truth: a wide translucent green band), the 3D prediction projected into each view (yellow, over the
truth) and the 2D input (thin, on top: left blue, right red); for root-relative predictions (lifters), also two
3D panels; a legend below names the colours.

Absolute predictions (world mm) are projected as they are. Root-relative predictions (pelvis at the origin) are
re-centred on their own pelvis (as ``core.metrics`` scores them) and:

- placed at the true pelvis and projected into each view (labelled "pred at true root": this shows the 2D fit,
  not the root position, which the lifter does not predict);
- drawn in 3D over the root-relative ground truth, from the front and from the side, in the prediction's frame:
  the camera frame of the single view (V == 1, single-view lifters; drawn with the camera's up, -y, up and the
  front view looking along the camera's z) or the world frame (V > 1, multi-view lifters; world z up, the front
  view facing the person, whose facing is taken from the true hips).
"""
from typing import Optional, Tuple

import numpy as np
import torch

from core.geometry.body_orientation import front_azimuth_deg
from core.images import to_uint8_images
from core.sample_schema import exact_2d, unbatched_centre
from core.skeleton import Skeleton
from core.vis import (BORDER_PX, GROUND_TRUTH_3D_STYLE, GROUND_TRUTH_STYLE, PREDICTION_STYLE, SkeletonStyle,
                      draw_pose_3d, draw_skeleton, put_label, tile, with_legend)

CANVAS_SIDE = 320  # pixels of a view's panel when there is no image (keypoints mode)
ZOOM_MARGIN = 1.5  # keypoints mode: the panel shows a square this many times the person's 2D box
ELEVATION_DEG = 12.0  # the 3D panels' viewers look down this much
INPUT_STYLE = SkeletonStyle(thickness=1, joint_radius=2)
# camera frame (x right, y down, z forward) -> the z-up frame of draw_pose_3d (x right, y forward, z up)
CAMERA_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def preview_sample(sample, skeleton: Skeleton, pred_3d: Optional[np.ndarray] = None, title: str = "",
                   absolute: bool = True) -> np.ndarray:
    """An RGB picture of one sample (a dict of the batch form, unbatched) whose joints are those of ``skeleton``.

    ``pred_3d`` (J, 3) mm: with ``absolute``, world coordinates; otherwise root-relative, in the camera frame of
    the sample's single view when it has one view, else in the world frame (see the module docstring)."""
    cameras = sample["cameras"]
    exact = unbatched_centre(exact_2d(sample)).numpy()
    inputs = unbatched_centre(sample["keypoints_2d"]).numpy() if "keypoints_2d" in sample else None
    has_prediction = pred_3d is not None and np.isfinite(np.asarray(pred_3d, dtype=np.float64)).any()
    relative = None if absolute or pred_3d is None else root_relative_poses(sample, pred_3d, skeleton.root)
    projected = None
    if has_prediction:
        pred_world = pred_3d if relative is None else relative["pred_world"]
        points = torch.as_tensor(np.asarray(pred_world), dtype=cameras.dtype).expand(len(cameras), -1, -1)
        projected = cameras.project(points).numpy()
    if "images" in sample:
        canvases = to_uint8_images(sample["images"])
        scales, offsets = np.ones(len(cameras)), np.zeros((len(cameras), 2))
    else:  # zoom each view onto the person
        low, high = np.nanmin(exact, 1), np.nanmax(exact, 1)
        scales = CANVAS_SIDE / (ZOOM_MARGIN * (high - low).max(-1).clip(min=1.0))
        offsets = CANVAS_SIDE / 2 - (low + high) / 2 * scales[:, None]
        canvases = np.full((len(cameras), CANVAS_SIDE, CANVAS_SIDE, 3), 40, dtype=np.uint8)
    panels = []
    for v, canvas in enumerate(canvases):
        zoom = dict(scale=scales[v], offset=offsets[v], skeleton=skeleton)
        panel = draw_skeleton(canvas, exact[v], GROUND_TRUTH_STYLE, **zoom)
        if projected is not None:
            panel = draw_skeleton(panel, projected[v], PREDICTION_STYLE, **zoom)
            if relative is not None:
                panel = put_label(panel, "pred at true root", "bottom_left")
        if inputs is not None:  # keypoint samples: the 2D the pipeline was given (image samples' input is the image)
            panel = draw_skeleton(panel, inputs[v], INPUT_STYLE, **zoom)
        panels.append(put_label(panel, f"{title} cam {int(sample['camera_ids'][v])}".strip()))
    entries = [("truth", GROUND_TRUTH_STYLE)] + ([("prediction", PREDICTION_STYLE)] if has_prediction else [])
    entries += [("2D input, left / right", INPUT_STYLE)] if inputs is not None else []
    if relative is not None:
        panels += _panels_3d(relative, canvases.shape[1:3], skeleton)
    columns = len(panels) if relative is not None and len(panels) <= 3 else None
    return with_legend(tile(panels, columns, border=BORDER_PX), entries)


def root_relative_poses(sample, pred_3d, root: int) -> dict:
    """The centre frame's true pose and the prediction (re-centred on its root joint ``root``), root-relative in the
    prediction's frame, the prediction placed at the true root in world mm, and the frame's name."""
    cameras = sample["cameras"]
    target_world = unbatched_centre(sample["keypoints_3d"]).to(cameras.dtype)        # J, 3
    pred = torch.as_tensor(np.asarray(pred_3d, dtype=np.float64), dtype=cameras.dtype)
    if pred.shape != target_world.shape:
        raise ValueError(f"preview_sample: pred_3d must have shape {tuple(target_world.shape)}, "
                         f"got {tuple(pred.shape)}")
    pred = pred - pred[root]
    if len(cameras) == 1:  # single-view lifter: the view's camera frame
        target = cameras.world_to_camera(target_world[None])[0]
        pred_world = cameras.camera_to_world((pred + target[root])[None])[0]
        frame = "camera"
    else:  # multi-view lifter: the world frame
        target, pred_world, frame = target_world, pred + target_world[root], "world"
    return {"target": (target - target[root]).numpy(), "pred": pred.numpy(), "pred_world": pred_world.numpy(),
            "frame": frame}


def _panels_3d(relative: dict, size: Tuple[int, int], skeleton: Skeleton) -> list:
    """Front and side 3D panels (ground truth green, prediction yellow), labelled with the sample's MPJPE."""
    target, pred = relative["target"], relative["pred"]
    errors = np.linalg.norm(pred - target, axis=-1)
    error = f"MPJPE {np.nanmean(errors):.1f} mm" if np.isfinite(errors).any() else "MPJPE n/a"
    if relative["frame"] == "camera":
        target, pred = target @ CAMERA_TO_Z_UP.T, pred @ CAMERA_TO_Z_UP.T
        front = 0.0  # looking along the camera's z, as the camera sees the person
    else:
        front = front_azimuth_deg(target, skeleton)
    poses, styles = [target, pred], [GROUND_TRUTH_3D_STYLE, PREDICTION_STYLE]  # the truth wider, under it
    panels = []
    for name, azimuth in (("front", front), ("side", front + 90.0)):
        panel = draw_pose_3d(poses, styles, size=size, elevation_deg=ELEVATION_DEG, azimuth_deg=azimuth,
                             skeleton=skeleton)
        panel = put_label(panel, f"3D {name}, {relative['frame']} frame, root-relative")
        panels.append(put_label(panel, error, "bottom_left"))
    return panels
