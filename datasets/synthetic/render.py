"""A fast 2.5-D capsule renderer for the synthetic world's bodies, and random backgrounds.

A body is a set of parts, each a capsule between two joints (a sphere when both joints are the
same one): a limb of constant radius in millimetres with round ends. The input is already
projected into the (crop) image by the caller: per view, the joints' pixels, their camera depths
(mm) and the focal length (pixels). In the image a part is a "stadium" whose radius in pixels
varies linearly between its ends (``radius_mm * focal_px / depth`` at each end). The surface depth
at a pixel is the depth of the axis there (linear in the pixel's position along the projected
axis) minus the bulge of a round cross-section, ``radius_mm * sqrt(1 - (d / r)^2)`` at a distance
of ``d`` pixels from an axis of radius ``r`` pixels. A z-buffer keeps the nearest surface, so
parts occlude each other, self-occlusion included, whatever their order. Shading is Lambert +
ambient from the cross-section normal, with optional per-pixel grain.

Deliberate approximations: weak perspective within a part (radius and depth interpolated
linearly in screen space, not perspective-correct), the cross-section normal ignores the axial
tilt of tapered or slanted capsules, no anti-aliasing.

A scene of several objects (the person, then occluders: poles, boxes, other people) is one point
set and one part list: every part occludes every other, and ``joint_visibility(..., num_queried=17)``
tests the person's joints only.

Conventions: integer pixel coordinates are pixel centres (as OpenCV draws), so a point (x, y)
falls on pixel (floor(x + 0.5), floor(y + 0.5)); colours are RGB; light directions point from the
surface towards the light, in camera axes (x right, y down, z forward).

Speed: the only Python loop is over the parts (about 20 per body); each iteration is vectorised over
all views and restricted to the part's bounding box (one window size per part, placed per view),
which is several times faster than evaluating every part on every pixel.
"""
from typing import Optional, Tuple

import numpy as np

DEFAULT_LIGHT_DIR = (-0.35, -0.6, -0.72)  # towards the light: upper left, on the camera's side
_EPS = 1e-12


# ----- input checks ---------------------------------------------------------------------------
def _check_projection(joints_px, depth_mm, focal_px):
    joints_px = np.asarray(joints_px, dtype=np.float32)
    depth_mm = np.asarray(depth_mm, dtype=np.float32)
    focal_px = np.asarray(focal_px, dtype=np.float32)
    if joints_px.ndim != 3 or joints_px.shape[-1] != 2:
        raise ValueError(f"joints_px must have shape (V, J, 2), got {joints_px.shape}")
    if depth_mm.shape != joints_px.shape[:2]:
        raise ValueError(f"depth_mm must have shape (V, J) = {joints_px.shape[:2]}, got {depth_mm.shape}")
    if focal_px.shape != joints_px.shape[:1]:
        raise ValueError(f"focal_px must have shape (V,) = {joints_px.shape[:1]}, got {focal_px.shape}")
    if not np.isfinite(joints_px).all():
        raise ValueError("joints_px contains NaN or infinite values")
    if not (np.isfinite(depth_mm).all() and (depth_mm > 0).all()):
        raise ValueError("depth_mm must be finite and > 0 (every joint in front of its camera)")
    if not (np.isfinite(focal_px).all() and (focal_px > 0).all()):
        raise ValueError("focal_px must be finite and > 0")
    return joints_px, depth_mm, focal_px


def _check_parts(part_joints, part_radius_mm, num_joints, part_color=None):
    part_joints = np.asarray(part_joints)
    if part_joints.ndim != 2 or part_joints.shape[1] != 2 or not np.issubdtype(part_joints.dtype, np.integer):
        raise ValueError(f"part_joints must be an integer array of shape (P, 2), got {part_joints.dtype} "
                         f"{part_joints.shape}")
    if part_joints.size and (part_joints.min() < 0 or part_joints.max() >= num_joints):
        raise ValueError(f"part_joints must index joints in [0, {num_joints}), got values in "
                         f"[{part_joints.min()}, {part_joints.max()}]")
    num_parts = part_joints.shape[0]
    part_radius_mm = np.asarray(part_radius_mm, dtype=np.float32)
    if part_radius_mm.shape != (num_parts,):
        raise ValueError(f"part_radius_mm must have shape (P,) = ({num_parts},), got {part_radius_mm.shape}")
    if not (np.isfinite(part_radius_mm).all() and (part_radius_mm > 0).all()):
        raise ValueError("part_radius_mm must be finite and > 0")
    if part_color is not None:
        part_color = np.asarray(part_color, dtype=np.float32)
        if part_color.shape != (num_parts, 3):
            raise ValueError(f"part_color must have shape (P, 3) = ({num_parts}, 3), got {part_color.shape}")
        if not (np.isfinite(part_color).all() and (part_color >= 0).all() and (part_color <= 1).all()):
            raise ValueError("part_color must be RGB values in [0, 1]")
    return part_joints.astype(np.intp), part_radius_mm, part_color


def _check_light(light_dir, num_views):
    light = np.asarray(DEFAULT_LIGHT_DIR if light_dir is None else light_dir, dtype=np.float32)
    if light.shape not in ((3,), (num_views, 3)):
        raise ValueError(f"light_dir must have shape (3,) or (V, 3) = ({num_views}, 3), got {light.shape}")
    norm = np.linalg.norm(light, axis=-1, keepdims=True)
    if not (np.isfinite(light).all() and (norm > 0).all()):
        raise ValueError("light_dir must be finite and non-zero")
    return np.broadcast_to(light / norm, (num_views, 3))


# ----- geometry shared by the renderer and the visibility test --------------------------------
def _projected_parts(joints_px, depth_mm, focal_px, part_joints, part_radius_mm):
    """Per view and part (V, P): end pixels x/y, end depths (mm) and end radii (px)."""
    start, end = part_joints[:, 0], part_joints[:, 1]
    za, zb = depth_mm[:, start], depth_mm[:, end]
    radius_focal = part_radius_mm * focal_px[:, None]
    return dict(ax=joints_px[:, start, 0], ay=joints_px[:, start, 1],
                bx=joints_px[:, end, 0], by=joints_px[:, end, 1],
                za=za, zb=zb, ra=radius_focal / za, rb=radius_focal / zb)


def _capsule_surface(px, py, ax, ay, bx, by, ra, rb, za, zb, radius_mm):
    """Surface depth (mm, inf off the part) and in-image normal components at pixels.

    All arguments broadcast together. Returns ``depth, nx, ny`` where ``(nx, ny)`` is the offset
    from the axis in units of the local radius (the x, y components of the cross-section normal).
    """
    dx, dy = bx - ax, by - ay
    inv_len2 = 1.0 / np.maximum(dx * dx + dy * dy, _EPS)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) * inv_len2, 0.0, 1.0)
    radius_px = ra + t * (rb - ra)
    nx = (px - ax - t * dx) / radius_px
    ny = (py - ay - t * dy) / radius_px
    q = nx * nx + ny * ny
    bulge = radius_mm * np.sqrt(np.maximum(1.0 - q, 0.0))
    depth = np.where(q < 1.0, za + t * (zb - za) - bulge, np.inf)
    return depth, nx, ny


# ----- public API ------------------------------------------------------------------------------
def render_capsules(joints_px, depth_mm, focal_px, part_joints, part_radius_mm, part_color, background,
                    light_dir=None, ambient: float = 0.35, rng: Optional[np.random.Generator] = None,
                    grain_std: float = 0.04) -> Tuple[np.ndarray, np.ndarray]:
    """Render the capsule body over ``background`` in each of V views.

    Args:
        joints_px: (V, J, 2) joint pixels in the rendered image.
        depth_mm: (V, J) camera depth (z) of each joint, mm, > 0.
        focal_px: (V,) focal length in pixels of the rendered image.
        part_joints: (P, 2) integer joint index pairs (equal indices: a sphere).
        part_radius_mm: (P,) part radii, mm.
        part_color: (P, 3) RGB in [0, 1].
        background: (V, H, W, 3) uint8 RGB; it sets the image size.
        light_dir: (3,) or (V, 3) direction towards the light in camera axes (default: upper left,
            from the camera's side).
        ambient: shade of surfaces turned away from the light (0..1); full light gives 1.
        rng: when given, each body pixel's brightness is multiplied by ``1 + grain_std * N(0, 1)``.
        grain_std: relative strength of that grain.

    Returns:
        images (V, H, W, 3) uint8 RGB and depth_buffer (V, H, W) float32, mm, inf where empty.
    """
    joints_px, depth_mm, focal_px = _check_projection(joints_px, depth_mm, focal_px)
    num_views, num_joints = depth_mm.shape
    part_joints, part_radius_mm, part_color = _check_parts(part_joints, part_radius_mm, num_joints, part_color)
    background = np.asarray(background)
    if background.dtype != np.uint8 or background.ndim != 4 or background.shape[0] != num_views \
            or background.shape[-1] != 3:
        raise ValueError(f"background must be a uint8 array of shape (V={num_views}, H, W, 3), got "
                         f"{background.dtype} {background.shape}")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient must be in [0, 1], got {ambient}")
    light = _check_light(light_dir, num_views)
    height, width = background.shape[1:3]

    parts = _projected_parts(joints_px, depth_mm, focal_px, part_joints, part_radius_mm)
    # Bounding box of each part in each view (V, P), clipped to the image; a part entirely off
    # the image gets a 1-pixel box where the exact test below finds nothing.
    x_lo = np.floor(np.minimum(parts["ax"] - parts["ra"], parts["bx"] - parts["rb"])).clip(0, width - 1)
    x_hi = np.ceil(np.maximum(parts["ax"] + parts["ra"], parts["bx"] + parts["rb"])).clip(0, width - 1)
    y_lo = np.floor(np.minimum(parts["ay"] - parts["ra"], parts["by"] - parts["rb"])).clip(0, height - 1)
    y_hi = np.ceil(np.maximum(parts["ay"] + parts["ra"], parts["by"] + parts["rb"])).clip(0, height - 1)
    win_w = (x_hi - x_lo + 1).max(axis=0).astype(np.intp)  # (P,) one window size per part
    win_h = (y_hi - y_lo + 1).max(axis=0).astype(np.intp)
    x0 = np.minimum(x_lo, width - win_w).astype(np.intp)  # shifted so the window stays inside
    y0 = np.minimum(y_lo, height - win_h).astype(np.intp)

    depth_buffer = np.full(num_views * height * width, np.inf, dtype=np.float32)
    part_buffer = np.full(num_views * height * width, -1, dtype=np.int32)
    nx_buffer = np.zeros(num_views * height * width, dtype=np.float32)
    ny_buffer = np.zeros(num_views * height * width, dtype=np.float32)
    view_offset = (np.arange(num_views, dtype=np.intp) * (height * width))[:, None, None]
    for p in range(part_joints.shape[0]):  # a loop over the ~20 body parts, vectorised over views
        xs = x0[:, p, None] + np.arange(win_w[p], dtype=np.intp)  # (V, w)
        ys = y0[:, p, None] + np.arange(win_h[p], dtype=np.intp)  # (V, h)
        geometry = {k: v[:, p, None, None] for k, v in parts.items()}
        depth, nx, ny = _capsule_surface(xs[:, None, :].astype(np.float32), ys[:, :, None].astype(np.float32),
                                         radius_mm=part_radius_mm[p], **geometry)
        flat = view_offset + ys[:, :, None] * width + xs[:, None, :]  # (V, h, w) indices into the buffers
        nearer = depth < depth_buffer[flat]
        index = flat[nearer]
        depth_buffer[index] = depth[nearer]
        part_buffer[index] = p
        nx_buffer[index] = nx[nearer]
        ny_buffer[index] = ny[nearer]

    images = background.copy()
    body = part_buffer >= 0
    nx, ny = nx_buffer[body], ny_buffer[body]
    nz = -np.sqrt(np.maximum(1.0 - nx * nx - ny * ny, 0.0))  # facing the camera: negative z
    body_light = light[np.flatnonzero(body) // (height * width)]  # (N, 3) light of each body pixel's view
    lambert = np.maximum(nx * body_light[..., 0] + ny * body_light[..., 1] + nz * body_light[..., 2], 0.0)
    shade = ambient + (1.0 - ambient) * lambert
    if rng is not None and grain_std > 0:
        shade = shade * (1.0 + grain_std * rng.standard_normal(shade.shape[0], dtype=np.float32))
    rgb = part_color[part_buffer[body]] * shade[:, None]
    images.reshape(-1, 3)[body] = np.clip(rgb * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    return images, depth_buffer.reshape(num_views, height, width)


def joint_visibility(joints_px, depth_mm, focal_px, part_joints, part_radius_mm, image_size,
                     tolerance_mm: float = 10.0, num_queried: Optional[int] = None) -> np.ndarray:
    """(V, J) bool: is each joint seen in each view, by the renderer's own depth test.

    A joint is visible iff its pixel (nearest integer) lies inside the image of ``image_size``
    (width, height) and no surface there is nearer than the joint's own surface by more than
    ``tolerance_mm``. The joint's own surface is the nearest surface at that pixel among the
    parts that contain the joint (or the joint itself if none covers the pixel). This evaluates
    exactly the depth test of :func:`render_capsules` at the joints' pixels only, so it agrees
    with the rendered depth buffer without rasterising anything. Arguments as in
    :func:`render_capsules`; with ``num_queried`` (n), only the first n joints are tested (every
    part still occludes them) and the result is (V, n): e.g. a person's joints, followed by the
    points of other objects in the scene (occluders) whose own visibility is not wanted.
    """
    joints_px, depth_mm, focal_px = _check_projection(joints_px, depth_mm, focal_px)
    num_views, num_joints = depth_mm.shape
    part_joints, part_radius_mm, _ = _check_parts(part_joints, part_radius_mm, num_joints)
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (width, height) > 0, got {image_size}")
    width, height = image_size
    if num_queried is not None:
        if isinstance(num_queried, bool) or not isinstance(num_queried, (int, np.integer)) \
                or not 0 <= num_queried <= num_joints:
            raise ValueError(f"num_queried must be an integer in [0, {num_joints}], got {num_queried!r}")
        num_joints = int(num_queried)
    queried_px, queried_depth = joints_px[:, :num_joints], depth_mm[:, :num_joints]

    pixel = np.floor(queried_px + 0.5)  # (V, J, 2)
    inside = ((pixel >= 0) & (pixel <= np.array([width - 1, height - 1], dtype=np.float32))).all(axis=-1)
    parts = _projected_parts(joints_px, depth_mm, focal_px, part_joints, part_radius_mm)
    geometry = {k: v[:, None, :] for k, v in parts.items()}  # (V, 1, P)
    depth, _, _ = _capsule_surface(pixel[..., 0, None], pixel[..., 1, None], radius_mm=part_radius_mm,
                                   **geometry)  # (V, J, P)
    front = depth.min(axis=-1, initial=np.inf)
    joint_ids = np.arange(num_joints)[:, None]
    incident = (part_joints[:, 0] == joint_ids) | (part_joints[:, 1] == joint_ids)  # (J, P)
    own = np.minimum(queried_depth, np.where(incident, depth, np.inf).min(axis=-1, initial=np.inf))
    return inside & (front >= own - np.float32(tolerance_mm))


def _bilinear_matrix(size: int, coarse: int) -> np.ndarray:
    """(size, coarse) weights that linearly interpolate ``coarse`` evenly spaced samples."""
    position = np.arange(size) * ((coarse - 1) / max(size - 1, 1))
    lower = np.minimum(np.floor(position).astype(np.intp), coarse - 2)
    weight = position - lower
    matrix = np.zeros((size, coarse), dtype=np.float32)
    rows = np.arange(size)
    matrix[rows, lower] = 1.0 - weight
    matrix[rows, lower + 1] = weight
    return matrix


def _smooth_noise(rng: np.random.Generator, num: int, height: int, width: int, cells: int) -> np.ndarray:
    """(3, num, H, W) smooth random colour field in [-1, 1] from a cells x cells grid."""
    grid = rng.uniform(-1.0, 1.0, (3, num, cells, cells)).astype(np.float32)
    return _bilinear_matrix(height, cells) @ grid @ _bilinear_matrix(width, cells).T


def random_backgrounds(rng: np.random.Generator, num: int, height: int, width: int,
                       max_shapes: int = 8) -> np.ndarray:
    """(num, H, W, 3) uint8 RGB varied backgrounds, deterministic for a given ``rng`` state.

    Each image is a colour gradient in a random direction, with (probability 0.6) a floor below a
    random horizon in its own colour and (half of those) a checkerboard of tiles, smooth colour
    noise at two scales, up to ``max_shapes`` random rectangles, ellipses and striped rectangles,
    and fine grey grain. Vectorised over images, computed channel-first (3, num, H, W) where
    numpy's inner loops are fastest; memory O(num * max_shapes * H * W).
    """
    if num < 0 or height <= 0 or width <= 0 or max_shapes < 0:
        raise ValueError(f"random_backgrounds needs num >= 0, height > 0, width > 0, max_shapes >= 0; got "
                         f"{num}, {height}, {width}, {max_shapes}")
    if num == 0:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    y = (np.arange(height, dtype=np.float32) / height)[:, None]  # (H, 1) in [0, 1)
    x = (np.arange(width, dtype=np.float32) / width)[None, :]  # (1, W) in [0, 1)

    def per_image(values):  # (num[, 3]) -> (1 or 3, num, 1, 1); floats as float32
        values = values.astype(np.float32) if values.dtype.kind == "f" else values
        return values.reshape(num, -1).T[..., None, None]

    # Gradient between two colours along a random direction, normalised to [0, 1] over the image.
    colors = rng.uniform(0.0, 1.0, (2, num, 3))
    angle = rng.uniform(0.0, 2.0 * np.pi, num)
    cos, sin = np.cos(angle), np.sin(angle)
    low = np.minimum(cos, 0.0) + np.minimum(sin, 0.0)
    ramp = (x * per_image(cos) + y * per_image(sin) - per_image(low)) / per_image(np.abs(cos) + np.abs(sin))
    image = per_image(colors[0]) + (per_image(colors[1]) - per_image(colors[0])) * ramp  # (3, num, H, W)

    # Floor below a horizon: its own colour, darker far away, sometimes tiled in perspective.
    has_floor = rng.random(num) < 0.6
    horizon = rng.uniform(0.35, 0.85, num)
    floor_color = rng.uniform(0.1, 0.9, (num, 3))
    tiles = (rng.random(num) < 0.5) & has_floor
    tile_count = rng.integers(4, 16, num).astype(np.float32)
    nearness = np.clip((y - per_image(horizon)) / (1.0 - per_image(horizon)), 0.0, 1.0)  # (1, num, H, 1)
    tile_column = (x * (per_image(tile_count) / (0.3 + nearness))).astype(np.int32)  # floor: all >= 0
    tile_row = (nearness * per_image(0.5 * tile_count)).astype(np.int32)
    darker_tile = per_image(tiles) & ((tile_column + tile_row) & 1).astype(bool)
    floor = per_image(floor_color) * ((0.6 + 0.4 * nearness) * (1.0 - 0.25 * darker_tile))
    image = np.where(per_image(has_floor) & (y >= per_image(horizon)), floor, image)

    # Smooth colour noise, coarse and finer.
    strength = rng.uniform(0.0, 0.25, (2, num))
    image += per_image(strength[0]) * _smooth_noise(rng, num, height, width, 4)
    image += per_image(strength[1]) * _smooth_noise(rng, num, height, width, 12)

    # Random shapes, later ones on top: 0 rectangle, 1 ellipse, 2 striped rectangle.
    if max_shapes:
        shape = (num, max_shapes)
        active = rng.random(shape) < 0.5
        kind = rng.integers(0, 3, shape)
        center = rng.uniform(0.0, 1.0, (*shape, 2)).astype(np.float32)
        half = rng.uniform(0.03, 0.3, (*shape, 2)).astype(np.float32)
        shape_color = rng.uniform(0.0, 1.0, (*shape, 3)).astype(np.float32)
        stripe_angle = rng.uniform(0.0, np.pi, shape)
        stripe_wave = (rng.uniform(10.0, 40.0, shape) * np.stack([np.cos(stripe_angle), np.sin(stripe_angle)])
                       ).astype(np.float32)  # (2, num, K) wave vector per unit of image size

        u = (x - center[..., 0, None, None]) / half[..., 0, None, None]  # (num, K, 1, W)
        v = (y - center[..., 1, None, None]) / half[..., 1, None, None]  # (num, K, H, 1)
        in_box = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
        in_ellipse = u * u + v * v <= 1.0
        cover = np.where((kind == 1)[..., None, None], in_ellipse, in_box) & active[..., None, None]
        order = np.arange(1, max_shapes + 1, dtype=np.min_scalar_type(max_shapes))[:, None, None]
        top = (cover * order).max(axis=1).astype(np.intp)  # (num, H, W) 0: no shape, k + 1: shape k on top
        pick = np.arange(num)[:, None, None] * max_shapes + np.maximum(top - 1, 0)  # flat (image, shape)
        dark = (kind.ravel()[pick] == 2) & (np.sin(stripe_wave[0].ravel()[pick] * x
                                                   + stripe_wave[1].ravel()[pick] * y) > 0)
        top_color = np.take(shape_color.reshape(-1, 3).T, pick, axis=1)  # (3, num, H, W)
        top_color *= 1.0 - 0.4 * dark
        np.copyto(image, top_color, where=top > 0)

    grain = rng.random((num, height, width), dtype=np.float32) - 0.5  # uniform, std 1 / sqrt(12)
    image += per_image(rng.uniform(0.0, 0.1, num)) * grain
    image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(image.transpose(1, 2, 3, 0))
