"""Camera rigs for the embedded synthetic world, as ``core.geometry.cameras.Cameras`` (float64).

All rigs look at the capture volume of ``datasets.synthetic.motion`` (every joint of a generated
sequence stays inside a cylinder of radius ``CAPTURE_RADIUS_MM`` about the world z axis, between the
floor and ``CAPTURE_HEIGHT_MM``) and see all of it: the cylinder's rims (its extreme points) project
at least ``IMAGE_MARGIN_PX`` inside every image, lens distortion included (``sees_capture_volume``).

- ``h36m_like_ring``: cameras on a ring 4.7-5.3 m from the origin at about 1.5 m height, aimed at a
  point about 1 m above the origin, with Human3.6M-like intrinsics (focal ~1150 px, 1000x1000
  images, principal point near the centre, k1 ~ -0.2, k2 ~ 0.24; see the dataset's
  ``camera-parameters.json``). The ring is a little wider than Human3.6M's (4.1-5.5 m) so that the
  whole volume is seen from every camera.
- ``random_rig``: 2-8 cameras with random azimuths (stratified, so no two share a place), heights,
  aims, focal lengths and distortion; each camera is placed at (a random factor above) the smallest
  distance from which it sees the whole volume.
- ``look_at``: world->camera ``R, t`` of a camera at ``eye`` looking at ``target`` (OpenCV axes).

Distortion is kept globally monotonic (radial factor derivative ``1 + 3 k1 r^2 + 5 k2 r^4 + 7 k3 r^6 >
0`` for all r when k3 >= 0, by ``k2 > 9 k1^2 / 20``), so no far-off point folds back into the image.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from core.geometry.cameras import Cameras
from datasets.synthetic.motion import CAPTURE_HEIGHT_MM, CAPTURE_RADIUS_MM
from datasets.synthetic.seeding import check_seed

IMAGE_MARGIN_PX = 10.0
_RING_DEFAULT_SEED = 20240501


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> Tuple[np.ndarray, np.ndarray]:
    """World->camera rotation R (..., 3, 3) and translation t (..., 3) mm of a camera at ``eye``
    looking at ``target`` with ``up`` pointing up in the image (OpenCV axes: x right, y down, z forward).

    Broadcasts over leading axes; raises ValueError when eye == target or the view is along ``up``.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    if eye.shape[-1:] != (3,) or target.shape[-1:] != (3,) or up.shape[-1:] != (3,):
        raise ValueError(f"look_at: eye, target and up must have shape (..., 3), got {eye.shape}, "
                         f"{target.shape}, {up.shape}")
    if not (np.isfinite(eye).all() and np.isfinite(target).all() and np.isfinite(up).all()):
        raise ValueError("look_at: eye, target and up must be finite")
    forward = target - eye
    forward_norm = np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, up)
    right_norm = np.linalg.norm(right, axis=-1, keepdims=True)
    up_norm = np.linalg.norm(up, axis=-1, keepdims=True)
    if (forward_norm <= 1e-9).any() or (right_norm <= 1e-9 * forward_norm * up_norm).any():
        raise ValueError("look_at: eye must differ from target and the viewing direction must not be parallel to up")
    z_axis = forward / forward_norm
    x_axis = right / right_norm
    y_axis = np.cross(z_axis, x_axis)
    R = np.stack([x_axis, y_axis, z_axis], axis=-2)
    t = -np.einsum("...ij,...j->...i", R, eye)
    return R, t


def _capture_points() -> torch.Tensor:
    """(P, 3) points on the capture cylinder: its rims (the extreme points, which decide whether a
    pinhole camera sees all of it) and a middle circle (for the slight bending of distortion)."""
    angles = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)
    heights = np.array([0.0, 0.5, 1.0]) * CAPTURE_HEIGHT_MM
    circles = np.stack(np.broadcast_arrays(CAPTURE_RADIUS_MM * np.cos(angles)[:, None],
                                           CAPTURE_RADIUS_MM * np.sin(angles)[:, None], heights[None, :]), axis=-1)
    return torch.from_numpy(circles.reshape(-1, 3))


def sees_capture_volume(cameras: Cameras, margin_px: float = IMAGE_MARGIN_PX) -> torch.Tensor:
    """(*batch) bool: whether the whole capture cylinder projects inside each camera's image."""
    points = _capture_points().to(device=cameras.device, dtype=cameras.dtype)
    pixels = cameras.project(points)  # (*batch, P, 2); the points broadcast over the cameras
    size = cameras.image_size.unsqueeze(-2)
    inside = (pixels >= margin_px) & (pixels <= size - margin_px)  # NaN (behind the camera) is outside
    return inside.all(dim=-1).all(dim=-1)


def _intrinsics(focal_px, aspect, centre_px):
    """(V, 3, 3) K from (V,) focal lengths fx, fy = fx * aspect and (V, 2) principal points."""
    K = np.zeros((len(focal_px), 3, 3))
    K[:, 0, 0], K[:, 1, 1] = focal_px, focal_px * aspect
    K[:, :2, 2] = centre_px
    K[:, 2, 2] = 1.0
    return K


def _check_count(num_cameras, low: int, high: int) -> int:
    if isinstance(num_cameras, bool) or not isinstance(num_cameras, (int, np.integer)) \
            or not low <= num_cameras <= high:
        raise ValueError(f"num_cameras must be an integer in [{low}, {high}], got {num_cameras!r}")
    return int(num_cameras)


def _stratified_azimuths(rng: np.random.Generator, num_cameras: int, jitter: float) -> np.ndarray:
    """Evenly spaced azimuths from a random start, each moved by up to ``jitter`` of the spacing."""
    spacing = 2 * np.pi / num_cameras
    return rng.uniform(0, 2 * np.pi) + spacing * (np.arange(num_cameras) + rng.uniform(-jitter, jitter, num_cameras))


def h36m_like_ring(num_cameras: int = 4, seed: Optional[int] = None) -> Cameras:
    """A Human3.6M-like ring of ``num_cameras`` (1..16) cameras; ``seed=None`` gives the fixed default rig."""
    num_cameras = _check_count(num_cameras, 1, 16)
    rng = np.random.default_rng(_RING_DEFAULT_SEED if seed is None else check_seed(seed))
    azimuth = _stratified_azimuths(rng, num_cameras, jitter=0.05)
    radius = rng.uniform(4700.0, 5300.0, num_cameras)
    eye = np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), rng.uniform(1400.0, 1600.0, num_cameras)], -1)
    target = np.stack([rng.uniform(-150.0, 150.0, num_cameras), rng.uniform(-150.0, 150.0, num_cameras),
                       rng.uniform(1000.0, 1150.0, num_cameras)], -1)
    R, t = look_at(eye, target)
    K = _intrinsics(rng.uniform(1140.0, 1155.0, num_cameras), rng.uniform(0.997, 1.001, num_cameras),
                    500.0 + rng.uniform(-12.0, 12.0, (num_cameras, 2)))
    k1 = rng.uniform(-0.21, -0.19, num_cameras)
    dist = np.stack([k1, rng.uniform(0.21, 0.26, num_cameras), rng.uniform(-0.003, 0.003, num_cameras),
                     rng.uniform(-0.003, 0.003, num_cameras), rng.uniform(-0.01, 0.01, num_cameras)], -1)
    cameras = Cameras.create(K, R, t, dist, image_size=(1000.0, 1000.0))
    if not sees_capture_volume(cameras).all():  # the ranges above leave > 50 px to spare
        raise RuntimeError(f"h36m_like_ring: seed {seed} gives a camera that misses part of the capture volume")
    return cameras


def random_rig(num_cameras: int, seed: int, image_size: Sequence[float] = (1000, 1000)) -> Cameras:
    """``num_cameras`` (2..8) randomly placed cameras that all see the whole capture volume."""
    num_cameras = _check_count(num_cameras, 2, 8)
    rng = np.random.default_rng(check_seed(seed))
    width, height = (float(v) for v in image_size)
    if not (np.isfinite([width, height]).all() and 64 <= min(width, height) and max(width, height) <= 8192):
        raise ValueError(f"image_size must be (width, height) in pixels between 64 and 8192, got {image_size!r}")
    azimuth = _stratified_azimuths(rng, num_cameras, jitter=0.35)
    camera_height = rng.uniform(600.0, 3000.0, num_cameras)
    aim_radius, aim_angle = 400.0 * np.sqrt(rng.uniform(size=num_cameras)), rng.uniform(0, 2 * np.pi, num_cameras)
    target = np.stack([aim_radius * np.cos(aim_angle), aim_radius * np.sin(aim_angle),
                       rng.uniform(800.0, 1200.0, num_cameras)], -1)
    focal = max(width, height) * rng.uniform(0.8, 1.8, num_cameras)
    K = _intrinsics(focal, rng.uniform(0.995, 1.005, num_cameras),
                    np.array([width, height]) / 2 * (1 + rng.uniform(-0.02, 0.02, (num_cameras, 2))))
    k1 = rng.uniform(-0.3, 0.05, num_cameras)
    dist = np.stack([k1, 9 * k1 ** 2 / 20 + rng.uniform(0.005, 0.2, num_cameras),
                     rng.uniform(-0.002, 0.002, num_cameras), rng.uniform(-0.002, 0.002, num_cameras),
                     rng.uniform(0.0, 0.02, num_cameras)], -1)

    # the smallest distance (on a 100 mm grid) from the aim point at which the whole volume is seen
    distances = np.arange(1500.0, 20000.0, 100.0)
    direction = np.stack([np.cos(azimuth), np.sin(azimuth)], -1)
    eye = np.concatenate([target[:, None, :2] + distances[None, :, None] * direction[:, None, :],
                          np.broadcast_to(camera_height[:, None, None], (num_cameras, len(distances), 1))], -1)
    R, t = look_at(eye, target[:, None, :])
    candidates = Cameras.create(np.repeat(K[:, None], len(distances), axis=1), R, t,
                                np.repeat(dist[:, None], len(distances), axis=1), image_size=(width, height))
    seen = sees_capture_volume(candidates).numpy()
    if not seen.any(axis=1).all():
        raise RuntimeError("random_rig: no camera distance sees the whole capture volume (internal error)")
    nearest = distances[np.argmax(seen, axis=1)]
    # move back by a random factor, but only to distances that still see everything
    wanted = nearest * rng.uniform(1.0, 1.25, num_cameras)
    allowed = np.where(seen & (distances[None, :] >= nearest[:, None]), distances[None, :], np.inf)
    choice = np.argmin(np.abs(allowed - wanted[:, None]), axis=1)
    index = np.arange(num_cameras)
    return Cameras.create(K, R[index, choice], t[index, choice], dist, image_size=(width, height))
