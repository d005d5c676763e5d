"""Drawing helpers shared by previews, TensorBoard images and the visualisation scripts.

Images are uint8 RGB (H, W, 3) numpy arrays; keypoints are pixels in the Human3.6M 17-joint order.
Left limbs are drawn in blue tones, right limbs in red tones, the trunk in the style's centre colour.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from core.skeleton import BONES, bone_side

Color = Tuple[int, int, int]


@dataclass(frozen=True)
class SkeletonStyle:
    left: Color = (60, 140, 255)
    right: Color = (255, 70, 60)
    center: Color = (250, 250, 250)
    thickness: int = 2
    joint_radius: int = 3


GROUND_TRUTH_STYLE = SkeletonStyle(left=(120, 230, 120), right=(120, 230, 120), center=(120, 230, 120), thickness=1,
                                   joint_radius=2)
PREDICTION_STYLE = SkeletonStyle(left=(255, 230, 40), right=(255, 230, 40), center=(255, 230, 40), thickness=1,
                                 joint_radius=2)


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, style: SkeletonStyle = SkeletonStyle(),
                  valid: Optional[np.ndarray] = None, scale: float = 1.0, offset=(0.0, 0.0)) -> np.ndarray:
    """Draw the bones and joints of ``keypoints`` (J, 2) onto a copy of ``image``; joints that are NaN or
    not ``valid`` are skipped. Drawn at ``keypoints * scale + offset`` (for zoomed canvases)."""
    out = np.ascontiguousarray(image).copy()
    points = np.asarray(keypoints, dtype=np.float64) * scale + np.asarray(offset, dtype=np.float64)
    ok = np.isfinite(points).all(-1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    colors = {"left": style.left, "right": style.right, "center": style.center}
    for parent, child in BONES:
        if ok[parent] and ok[child]:
            cv2.line(out, tuple(np.round(points[parent]).astype(int)), tuple(np.round(points[child]).astype(int)),
                     colors[bone_side(parent, child)], style.thickness, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(out, tuple(np.round(points[j]).astype(int)), style.joint_radius, style.center, -1, cv2.LINE_AA)
    return out


def put_label(image: np.ndarray, text: str, corner: str = "top_left") -> np.ndarray:
    """White text on a black box in a corner (top_left, top_right, bottom_left, bottom_right)."""
    out = image.copy()
    (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    x = 4 if corner.endswith("left") else out.shape[1] - w - 4
    y = h + 4 if corner.startswith("top") else out.shape[0] - baseline - 4
    cv2.rectangle(out, (x - 3, y - h - 3), (x + w + 3, y + baseline + 1), (0, 0, 0), -1)
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def tile(images: Sequence[np.ndarray], columns: Optional[int] = None) -> np.ndarray:
    """Tile equally sized images into a grid (row-major), padding the last row with black."""
    images = list(images)
    if not images:
        raise ValueError("tile needs at least one image")
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError("tile needs images of one size")
    columns = columns or int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / columns))
    grid = np.zeros((rows * h, columns * w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    return grid


def write_png(path, image_rgb: np.ndarray) -> None:
    """Write an RGB image; raises OSError naming the file when OpenCV cannot write it."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image '{path}'")
