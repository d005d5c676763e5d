"""Preview pictures of test samples: every view tiled, with the 2D input, the exact 2D (ground truth)
and, for pipelines that predict absolute 3D, the prediction projected into each view."""
from typing import Optional

import numpy as np
import torch

from core.vis import GROUND_TRUTH_STYLE, PREDICTION_STYLE, SkeletonStyle, draw_skeleton, put_label, tile
from datasets.images import to_uint8_images

CANVAS_SIDE = 320  # pixels of a view's panel when there is no image (keypoints mode)
ZOOM_MARGIN = 1.5  # keypoints mode: the panel shows a square this many times the person's 2D box


def preview_sample(sample, pred_3d: Optional[np.ndarray] = None, title: str = "") -> np.ndarray:
    """An RGB picture of one sample (a dict of the batch form, unbatched); ``pred_3d`` (J,3) world mm."""
    cameras = sample["cameras"]
    centre = sample["keypoints_2d"].shape[0] // 2
    inputs = sample["keypoints_2d"][centre].numpy()
    exact = sample["keypoints_2d_gt"][centre].numpy()
    projected = None
    if pred_3d is not None and np.isfinite(pred_3d).any():
        points = torch.as_tensor(pred_3d, dtype=cameras.dtype).expand(len(cameras), -1, -1)
        projected = cameras.project(points).numpy()
    if "images" in sample:
        canvases = to_uint8_images(sample["images"])
        scales, offsets = np.ones(len(cameras)), np.zeros((len(cameras), 2))
    else:  # zoom each view onto the person
        low, high = exact.min(1), exact.max(1)
        scales = CANVAS_SIDE / (ZOOM_MARGIN * (high - low).max(-1).clip(min=1.0))
        offsets = CANVAS_SIDE / 2 - (low + high) / 2 * scales[:, None]
        canvases = np.full((len(cameras), CANVAS_SIDE, CANVAS_SIDE, 3), 40, dtype=np.uint8)
    panels = []
    for v, canvas in enumerate(canvases):
        zoom = dict(scale=scales[v], offset=offsets[v])
        panel = draw_skeleton(canvas, exact[v], GROUND_TRUTH_STYLE, **zoom)
        panel = draw_skeleton(panel, inputs[v], SkeletonStyle(), **zoom)
        if projected is not None:
            panel = draw_skeleton(panel, projected[v], PREDICTION_STYLE, **zoom)
        panels.append(put_label(panel, f"{title} cam {int(sample['camera_ids'][v])}".strip()))
    return tile(panels)
