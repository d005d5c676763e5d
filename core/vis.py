"""Drawing helpers shared by previews, TensorBoard images and the visualisation scripts.

Images are uint8 RGB (H, W, 3) numpy arrays; keypoints are pixels in the Human3.6M 17-joint order.
Left limbs are drawn in blue tones, right limbs in red tones, the trunk in the style's centre colour.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from core.skeleton import BONES, NUM_JOINTS, bone_side

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


GRID_COLOR: Color = (85, 85, 85)
GRID_SPACINGS_MM = (100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0)


def view_rotation(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """(3, 3) rows: the screen's right, up and into-the-screen directions of an orthographic viewer of a z-up frame.

    Azimuth 0, elevation 0 looks along +y with +x to the right and +z up; the azimuth turns the viewing
    direction about z from +y towards +x; a positive elevation raises the viewer, who then looks down."""
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    ahead = np.array([np.sin(a), np.cos(a), 0.0])      # horizontal viewing direction
    right = np.array([np.cos(a), -np.sin(a), 0.0])
    z = np.array([0.0, 0.0, 1.0])
    return np.stack([right, np.sin(e) * ahead + np.cos(e) * z, np.cos(e) * ahead - np.sin(e) * z])


def _grid_spacing(half_extent: float) -> float:
    """The smallest round spacing giving at most 4 grid cells from the centre to the edge."""
    return next((s for s in GRID_SPACINGS_MM if half_extent / s <= 4), GRID_SPACINGS_MM[-1])


def draw_pose_3d(poses: Sequence[np.ndarray], styles: Sequence[SkeletonStyle], size=320,
                 elevation_deg: float = 12.0, azimuth_deg: float = 0.0, background: int = 40, grid: bool = True,
                 margin: float = 0.12, center: Optional[np.ndarray] = None,
                 radius: Optional[float] = None) -> np.ndarray:
    """A uint8 RGB picture of 3D skeletons, each pose (J, 3) in mm of a z-up frame drawn with its style (in order,
    so later poses lie on top), seen orthographically from ``elevation_deg`` / ``azimuth_deg`` (``view_rotation``).

    - ``size``: an int (square) or (height, width) in pixels.
    - One scale for all poses: the sphere about ``center`` (default: the middle of the 3D box of all finite
      joints) of ``radius`` (default: the farthest finite joint from it) fills the picture less ``margin`` on each
      side, whatever the view, so pictures of the same poses from other viewpoints share the scale.
    - ``grid``: a floor grid (round spacing) at the lowest joint's height, under the poses and at least as wide as
      the sphere's radius, drawn first.
    - Bones are drawn far to near within each pose; joints that are not finite are skipped (with their bones);
      with no finite joint the picture is the plain background.

    Raises ValueError unless every pose has shape (NUM_JOINTS, 3) and there is one style per pose.
    """
    poses = [np.asarray(p, dtype=np.float64) for p in poses]
    if any(p.shape != (NUM_JOINTS, 3) for p in poses):
        raise ValueError(f"draw_pose_3d: every pose must have shape ({NUM_JOINTS}, 3), got "
                         f"{[p.shape for p in poses]}")
    if len(styles) != len(poses):
        raise ValueError(f"draw_pose_3d: one style per pose, got {len(styles)} styles for {len(poses)} poses")
    height, width = (size, size) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"draw_pose_3d: size must be positive, got {size}")
    out = np.full((height, width, 3), background, dtype=np.uint8)
    points = np.stack(poses) if poses else np.zeros((0, NUM_JOINTS, 3))           # N, J, 3
    ok = np.isfinite(points).all(-1)                                                 # N, J
    if not ok.any():
        return out
    finite = points[ok]
    center = (finite.min(0) + finite.max(0)) / 2 if center is None else np.asarray(center, dtype=np.float64)
    if radius is None:
        radius = float(np.linalg.norm(finite - center, axis=-1).max())
    scale = (min(height, width) / 2 * (1 - 2 * margin)) / max(radius, 1.0)        # pixels per mm
    rotation = view_rotation(elevation_deg, azimuth_deg)

    def to_pixels(xyz: np.ndarray):
        """(..., 3) mm -> (..., 2) pixels (x right, y down) and (...) depth (larger = farther)."""
        view = (xyz - center) @ rotation.T
        pixels = np.stack([width / 2 + scale * view[..., 0], height / 2 - scale * view[..., 1]], -1)
        return pixels, view[..., 2]

    if grid:
        floor = finite[:, 2].min()
        half = max(np.abs(finite[:, :2] - center[:2]).max() * 1.25, 0.5 * radius, 200.0)
        spacing = _grid_spacing(half)
        ticks = center[:2, None] + np.arange(-np.ceil(half / spacing), np.ceil(half / spacing) + 1) * spacing
        low, high = ticks[:, 0], ticks[:, -1]
        # segments (M, 2, 3): lines along y at every x tick, then along x at every y tick
        along_y = np.stack([np.stack([ticks[0], np.full_like(ticks[0], low[1])], -1),
                            np.stack([ticks[0], np.full_like(ticks[0], high[1])], -1)], 1)
        along_x = np.stack([np.stack([np.full_like(ticks[1], low[0]), ticks[1]], -1),
                            np.stack([np.full_like(ticks[1], high[0]), ticks[1]], -1)], 1)
        segments = np.concatenate([along_y, along_x])
        segments = np.concatenate([segments, np.full(segments.shape[:-1] + (1,), floor)], -1)
        ends = np.round(to_pixels(segments)[0]).astype(int)
        for a, b in ends:
            cv2.line(out, tuple(a), tuple(b), GRID_COLOR, 1, cv2.LINE_AA)

    pixels, depth = to_pixels(points)                                                # N, J, 2 and N, J
    pixels = np.round(np.where(ok[..., None], pixels, 0)).astype(int)
    bones = np.array(BONES)
    sides = [bone_side(p, c) for p, c in BONES]
    for n, style in enumerate(styles):
        colors = {"left": style.left, "right": style.right, "center": style.center}
        bone_depth = depth[n, bones].mean(-1)
        for b in np.argsort(-bone_depth, kind="stable"):
            parent, child = bones[b]
            if ok[n, parent] and ok[n, child]:
                cv2.line(out, tuple(pixels[n, parent]), tuple(pixels[n, child]), colors[sides[b]], style.thickness,
                         cv2.LINE_AA)
        for j in np.flatnonzero(ok[n]):
            cv2.circle(out, tuple(pixels[n, j]), style.joint_radius, style.center, -1, cv2.LINE_AA)
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


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """``image`` (H, W, 3) with ``heat`` (h, w, values in [0, 1]) resized onto it in the JET colour map."""
    heat = cv2.resize(np.clip(np.nan_to_num(heat), 0.0, 1.0).astype(np.float32), image.shape[1::-1],
                      interpolation=cv2.INTER_LINEAR)
    colored = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = (alpha * heat)[..., None]
    return (image * (1 - weight) + colored * weight).astype(np.uint8)


def heatmap_grid(images: np.ndarray, heatmaps: np.ndarray, joint_names: Sequence[str], side: int = 96) -> np.ndarray:
    """One row per view, one column per joint: each view's image (V, H, W, 3) with that joint's heatmap
    (V, J, h, w; clipped to [0, 1]) over it, ``side`` pixels square, labelled with the joint and its peak."""
    rows = []
    for image, maps in zip(images, heatmaps):
        small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        row = [put_label(heat_overlay(small, m), f"{name} {np.nanmax(m):.2f}")
               for name, m in zip(joint_names, maps)]
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def epipolar_picture(images: np.ndarray, reference_view: int, reference_pixel: np.ndarray, sources: Sequence[int],
                     sample_pixels: np.ndarray, attention: np.ndarray, mask: np.ndarray,
                     labels: Sequence[str]) -> np.ndarray:
    """The reference view with its pixel marked, then each source view with the epipolar samples of that pixel
    coloured by their attention weight (JET, scaled to the view's largest weight) and the line through them.

    images (V, H, W, 3); sample_pixels (S, K, 2), attention and mask (S, K) for the S ``sources``."""
    panels = []
    reference = images[reference_view].copy()
    centre = tuple(np.round(reference_pixel).astype(int))
    cv2.drawMarker(reference, centre, (255, 255, 0), cv2.MARKER_CROSS, 18, 2, cv2.LINE_AA)
    cv2.circle(reference, centre, 6, (255, 255, 0), 1, cv2.LINE_AA)
    panels.append(put_label(reference, f"{labels[reference_view]} (reference)"))
    for s, view in enumerate(sources):
        panel = images[view].copy()
        points = sample_pixels[s][mask[s]]
        weights = attention[s][mask[s]]
        if len(points) > 1:
            cv2.polylines(panel, [np.round(points).astype(np.int32)], False, (255, 255, 255), 1, cv2.LINE_AA)
        scaled = weights / max(float(weights.max()), 1e-12) if len(weights) else weights
        colors = cv2.applyColorMap((scaled * 255).astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_JET)[:, 0, ::-1]
        for point, color, w in sorted(zip(points, colors, scaled), key=lambda item: item[2]):
            cv2.circle(panel, tuple(np.round(point).astype(int)), 2 + int(round(4 * w)), tuple(int(c) for c in color),
                       -1, cv2.LINE_AA)
        best = f", peak {weights.max():.2f}" if len(weights) else ", line outside the view"
        panels.append(put_label(panel, f"{labels[view]}{best}"))
    return np.concatenate(panels, axis=1)
