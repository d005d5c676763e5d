"""Drawing helpers shared by previews, TensorBoard images, overlay videos and the visualisation scripts.

Images are uint8 RGB (H, W, 3) numpy arrays; keypoints are pixels, in the joints of the ``core.skeleton`` layout each drawing is given.
Left limbs are drawn in blue tones, right limbs in red tones, the trunk in the style's centre colour.
The truth is drawn as a wide translucent band (``GROUND_TRUTH_STYLE``) under thinner estimates, so both stay
visible where they coincide; ``legend`` names the styles of a picture in a strip below it, and ``join_panels`` /
``tile`` put panels side by side with light borders between them.
"""
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from core.skeleton import Skeleton

Color = Tuple[int, int, int]


@dataclass(frozen=True)
class SkeletonStyle:
    left: Color = (60, 140, 255)
    right: Color = (255, 70, 60)
    center: Color = (250, 250, 250)
    thickness: int = 2
    joint_radius: int = 3
    opacity: float = 1.0  # below 1: mixed with what lies beneath, which stays visible


GREEN: Color = (90, 240, 90)
GROUND_TRUTH_STYLE = SkeletonStyle(left=GREEN, right=GREEN, center=GREEN, thickness=6, joint_radius=4, opacity=0.6)
GROUND_TRUTH_3D_STYLE = SkeletonStyle(left=GREEN, right=GREEN, center=GREEN, thickness=5, joint_radius=4)  # opaque
PREDICTION_STYLE = SkeletonStyle(left=(255, 230, 40), right=(255, 230, 40), center=(255, 230, 40), thickness=2,
                                 joint_radius=2)
SIDED_PREDICTION_STYLE = SkeletonStyle(thickness=2, joint_radius=2)  # a prediction in left / right colours (videos)
# the multi-view demo's overlay (scripts/demo_multiview.py): the reprojected 3D in left / right colours, the
# detections thin and grey over it, a known truth as a band wide enough to show around both
DETECTION_STYLE = SkeletonStyle(left=(200, 200, 200), right=(200, 200, 200), center=(200, 200, 200), thickness=1,
                                joint_radius=2)
PROJECTION_STYLE = SkeletonStyle(thickness=2, joint_radius=3)
TRUTH_BAND_STYLE = replace(GROUND_TRUTH_STYLE, thickness=10, joint_radius=6)
BORDER_PX = 2
BORDER_COLOR: Color = (225, 225, 225)
LEGEND_BACKGROUND = 30
LEGEND_ROW_PX = 24
_FONT, _FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.4


def _translucent(drawn: np.ndarray, base: np.ndarray, opacity: float) -> np.ndarray:
    """``drawn`` where it differs from ``base``, mixed with ``base`` by ``opacity``; ``base`` elsewhere."""
    if opacity >= 1.0:
        return drawn
    mixed = cv2.addWeighted(drawn, opacity, base, 1.0 - opacity, 0.0)
    return np.where((drawn != base).any(-1, keepdims=True), mixed, base)


def _check_joints(poses: Sequence[np.ndarray], skeleton: Skeleton, dims: int, what: str) -> None:
    if any(p.shape != (skeleton.num_joints, dims) for p in poses):
        raise ValueError(f"{what}: every pose must have shape ({skeleton.num_joints}, {dims}), the joints of skeleton "
                         f"'{skeleton.name}', got {[p.shape for p in poses]}")


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, style: SkeletonStyle = SkeletonStyle(),
                  valid: Optional[np.ndarray] = None, scale: float = 1.0, offset=(0.0, 0.0), *,
                  skeleton: Skeleton) -> np.ndarray:
    """Draw the bones and joints of ``keypoints`` (J, 2) of ``skeleton`` onto a copy of ``image``; joints that are NaN
    or not ``valid`` are skipped. Drawn at ``keypoints * scale + offset`` (for zoomed canvases)."""
    _check_joints([np.asarray(keypoints)], skeleton, 2, "draw_skeleton")
    base = np.ascontiguousarray(image)
    out = base.copy()
    points = np.asarray(keypoints, dtype=np.float64) * scale + np.asarray(offset, dtype=np.float64)
    ok = np.isfinite(points).all(-1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    colors = {"left": style.left, "right": style.right, "center": style.center}
    for parent, child in skeleton.bones:
        if ok[parent] and ok[child]:
            cv2.line(out, tuple(np.round(points[parent]).astype(int)), tuple(np.round(points[child]).astype(int)),
                     colors[skeleton.side(child)], style.thickness, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(out, tuple(np.round(points[j]).astype(int)), style.joint_radius, style.center, -1, cv2.LINE_AA)
    return _translucent(out, base, style.opacity)


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
                 radius: Optional[float] = None, *, skeleton: Skeleton) -> np.ndarray:
    """A uint8 RGB picture of 3D skeletons, each pose (J, 3) of ``skeleton`` in mm of a z-up frame drawn with its style (in order,
    so later poses lie on top), seen orthographically from ``elevation_deg`` / ``azimuth_deg`` (``view_rotation``).

    - ``size``: an int (square) or (height, width) in pixels.
    - One scale for all poses: the sphere about ``center`` (default: the middle of the 3D box of all finite
      joints) of ``radius`` (default: the farthest finite joint from it) fills the picture less ``margin`` on each
      side, whatever the view, so pictures of the same poses from other viewpoints share the scale.
    - ``grid``: a floor grid (round spacing) at the lowest joint's height, under the poses and at least as wide as
      the sphere's radius, drawn first.
    - Bones are drawn far to near within each pose; joints that are not finite are skipped (with their bones);
      with no finite joint the picture is the plain background.

    Raises ValueError unless every pose has shape (J, 3) and there is one style per pose.
    """
    poses = [np.asarray(p, dtype=np.float64) for p in poses]
    _check_joints(poses, skeleton, 3, "draw_pose_3d")
    if len(styles) != len(poses):
        raise ValueError(f"draw_pose_3d: one style per pose, got {len(styles)} styles for {len(poses)} poses")
    height, width = (size, size) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"draw_pose_3d: size must be positive, got {size}")
    out = np.full((height, width, 3), background, dtype=np.uint8)
    points = np.stack(poses) if poses else np.zeros((0, skeleton.num_joints, 3))           # N, J, 3
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
    bones = np.array(skeleton.bones)
    sides = [skeleton.side(c) for _, c in skeleton.bones]
    for n, style in enumerate(styles):
        beneath = out.copy()
        colors = {"left": style.left, "right": style.right, "center": style.center}
        bone_depth = depth[n, bones].mean(-1)
        for b in np.argsort(-bone_depth, kind="stable"):
            parent, child = bones[b]
            if ok[n, parent] and ok[n, child]:
                cv2.line(out, tuple(pixels[n, parent]), tuple(pixels[n, child]), colors[sides[b]], style.thickness,
                         cv2.LINE_AA)
        for j in np.flatnonzero(ok[n]):
            cv2.circle(out, tuple(pixels[n, j]), style.joint_radius, style.center, -1, cv2.LINE_AA)
        out = _translucent(out, beneath, style.opacity)
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


def join_panels(images: Sequence[np.ndarray], border: int = BORDER_PX, axis: int = 1) -> np.ndarray:
    """Images of one height side by side (``axis`` 1) or of one width one above the other (``axis`` 0), with
    ``border``-pixel lines of ``BORDER_COLOR`` between them."""
    images = list(images)
    if not images:
        raise ValueError("join_panels needs at least one image")
    across = 1 - axis
    if any(im.shape[across] != images[0].shape[across] for im in images):
        raise ValueError(f"join_panels needs images of one {'height' if axis == 1 else 'width'}, got "
                         f"{[im.shape[:2] for im in images]}")
    shape = list(images[0].shape)
    shape[axis] = border
    line = np.empty(shape, dtype=np.uint8)
    line[...] = BORDER_COLOR
    return np.concatenate([part for im in images for part in (line, im)][1:], axis=axis)


def pad_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` with black rows added below it up to ``height`` pixels (none when it has that height)."""
    if image.shape[0] == height:
        return image
    return np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)))


def tile(images: Sequence[np.ndarray], columns: Optional[int] = None, border: int = 0) -> np.ndarray:
    """Tile equally sized images into a grid (row-major), padding the last row with black, with ``border``-pixel
    lines between the cells (``join_panels``)."""
    images = list(images)
    if not images:
        raise ValueError("tile needs at least one image")
    if any(im.shape[:2] != images[0].shape[:2] for im in images):
        raise ValueError("tile needs images of one size")
    columns = columns or int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / columns))
    cells = images + [np.zeros_like(images[0])] * (rows * columns - len(images))
    return join_panels([join_panels(cells[r * columns:(r + 1) * columns], border) for r in range(rows)], border,
                       axis=0)


def _swatch(strip: np.ndarray, x: int, y: int, style: SkeletonStyle, length: int) -> np.ndarray:
    """A bone sample of ``style`` from (x, y), ``length`` pixels long: left then right colour when they differ."""
    out = strip.copy()
    thickness = int(np.clip(style.thickness, 1, 8))
    if style.left != style.right:
        half = x + length // 2
        cv2.line(out, (x, y), (half, y), style.left, thickness, cv2.LINE_AA)
        cv2.line(out, (half, y), (x + length, y), style.right, thickness, cv2.LINE_AA)
    else:
        cv2.line(out, (x, y), (x + length, y), style.center, thickness, cv2.LINE_AA)
    cv2.circle(out, (x + length, y), min(style.joint_radius, 5), style.center, -1, cv2.LINE_AA)
    return _translucent(out, strip, style.opacity)


def legend(width: int, entries: Sequence[Tuple[str, SkeletonStyle]], swatch: int = 22) -> np.ndarray:
    """A strip ``width`` pixels wide naming the styles of a picture: per entry a bone sample of the style (its
    left and right colours when they differ) and the label, entries flowing into as many rows as they need."""
    placed, x, row = [], 6, 0
    for label, style in entries:
        text_width = cv2.getTextSize(label, _FONT, _FONT_SCALE, 1)[0][0]
        extent = swatch + 10 + text_width
        if x > 6 and x + extent > width - 6:
            x, row = 6, row + 1
        placed.append((x, row, label, style))
        x += extent + 16
    strip = np.full(((row + 1) * LEGEND_ROW_PX, width, 3), LEGEND_BACKGROUND, dtype=np.uint8)
    for x, row, label, style in placed:
        middle = row * LEGEND_ROW_PX + LEGEND_ROW_PX // 2
        strip = _swatch(strip, x, middle, style, swatch)
        cv2.putText(strip, label, (x + swatch + 10, middle + 4), _FONT, _FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def with_legend(image: np.ndarray, entries: Sequence[Tuple[str, SkeletonStyle]]) -> np.ndarray:
    """``image`` above its ``legend`` (with a border line between them)."""
    return join_panels([image, legend(image.shape[1], entries)], axis=0)


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
