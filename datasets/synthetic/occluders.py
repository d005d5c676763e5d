"""The synthetic world's occluders (``DATASETS.SYNTHETIC.OCCLUDERS``): poles, boxes and other people standing between
a camera and the person, drawn by the same capsule renderer, and the scene they make with the person's body
(``scene_points``, ``scene_parts``)."""
import colorsys
import logging
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from core.geometry.cameras import Cameras
from core.skeleton import H36M17
from datasets.synthetic import bodies, motion
from datasets.synthetic.seeding import seeded_rng, stable_seed

logger = logging.getLogger("epipose")

OCCLUDER_KINDS = ("pole", "box", "person")
# WorldSpec fields added after caches existed: left out of the cache key at their defaults (same images).


@dataclass(frozen=True, eq=False)
class Occluder:
    """An object of the scene besides the person, drawn by the same capsule renderer: ``points_mm`` (T, K, 3)
    world points per frame, ``part_joints`` (P, 2) pairs of indices into them, ``part_radius_mm`` (P,) and
    ``part_colour`` (P, 3) RGB in 0..1 (float32, as ``Body.part_arrays``); ``kind`` one of ``OCCLUDER_KINDS``,
    ``camera`` the view it was placed in front of, ``body`` the occluding person's (kind "person")."""
    kind: str
    camera: int
    points_mm: np.ndarray
    part_joints: np.ndarray
    part_radius_mm: np.ndarray
    part_colour: np.ndarray
    body: Optional["bodies.Body"] = None


def scene_points(surface: np.ndarray, occluders: Sequence[Occluder] = (), frames=slice(None)) -> np.ndarray:
    """The body's surface points ``surface`` (..., P, 3) (``Body.surface_points``), followed by the occluders' points
    at ``frames``."""
    if not occluders:
        return surface
    return np.concatenate([surface] + [o.points_mm[frames] for o in occluders], axis=-2)


def scene_parts(body: "bodies.Body", occluders: Sequence[Occluder] = ()) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, 2) int64 point pairs, (P,) radii mm and (P, 3) colours of the body and then each occluder."""
    part_joints, radius, colour = body.part_arrays()
    if not occluders:
        return part_joints, radius, colour
    offsets = body.num_points + np.cumsum([0] + [o.points_mm.shape[1] for o in occluders])
    return (np.concatenate([part_joints] + [o.part_joints + k for o, k in zip(occluders, offsets)]),
            np.concatenate([radius] + [o.part_radius_mm for o in occluders]),
            np.concatenate([colour] + [o.part_colour for o in occluders]))


_OCCLUDER_ACTIONS = tuple(a for a in motion.ACTIONS if a != "walk")  # in place: a walker would roam across the person
_PERSON_CLEARANCE_MM = 100.0   # gap between an occluder and the person, along the direction to the camera
_CAMERA_CLEARANCE_MM = 1000.0  # horizontal gap between an occluder and the camera it stands in front of
_MIN_DEPTH_MM = 300.0          # an occluder's surface stays this far in front of every camera
_PLACEMENT_SPREAD_MM = 800.0   # how much nearer the camera than the closest clear spot an occluder may stand
# sideways offset of an occluder (either side), as seen at the person's distance: people stand off-centre, so
# that they hide one side of the person rather than all of it
_LATERAL_MM = {"pole": (0.0, 300.0), "box": (0.0, 300.0), "person": (250.0, 550.0)}


def _occluder_shape(kind: str, rng: np.random.Generator, num_frames: int, fps: float, name: str, seed: int,
                    front_print: bool):
    """One occluder in a local frame (x towards the camera, y sideways, z up; centred on x = y = 0): points
    (T, K, 3), part pairs, radii, colours and the occluding person's body (or None)."""
    def colour(hue=None, saturation=(0.0, 0.8), value=(0.3, 0.95)):
        return colorsys.hsv_to_rgb(rng.uniform() if hue is None else rng.uniform(*hue), rng.uniform(*saturation),
                                   rng.uniform(*value))
    body = None
    if kind == "pole":  # a tall thin vertical capsule standing on the floor
        radius, height = rng.uniform(50.0, 110.0), rng.uniform(1900.0, 2600.0)
        points = np.array([[0.0, 0.0, radius], [0.0, 0.0, height - radius]])
        parts, radii, colours = [(0, 1)], [radius], [colour()]
    elif kind == "box":  # a stack of two fat horizontal capsules across the line of sight (crates, bales)
        radius, half_width = rng.uniform(200.0, 320.0), rng.uniform(200.0, 450.0)
        tint = colour((0.05, 0.12), (0.35, 0.7), (0.35, 0.8)) if rng.uniform() < 0.6 else colour()
        points = np.array([[0.0, -half_width, radius], [0.0, half_width, radius],
                           [0.0, -half_width, 2.7 * radius], [0.0, half_width, 2.7 * radius]])
        parts, radii, colours = [(0, 1), (2, 3)], [radius, radius], [tint, tint]
    else:  # another person, acting in place
        body = bodies.make_sequence_body(name, seed)
        body = bodies.with_front_print(body) if front_print else body
        action = _OCCLUDER_ACTIONS[rng.integers(len(_OCCLUDER_ACTIONS))]
        joints = motion.generate_sequence(body, action, num_frames, fps=fps, seed=stable_seed(seed, name))
        joints[..., :2] -= joints[:, H36M17.root, :2].mean(axis=0)
        points = body.surface_points(joints)
        parts, radii, colours = body.part_arrays()
        return points, parts, radii, colours, body
    return (np.broadcast_to(points, (num_frames,) + points.shape), np.array(parts, dtype=np.int64),
            np.array(radii, dtype=np.float32), np.array(colours, dtype=np.float32), body)


def make_occluders(name: str, surface_mm: np.ndarray, part_radius_mm: np.ndarray, cameras: Cameras, count: int,
                   seed: int, fps: float = 50.0, front_print: bool = False) -> Tuple[Occluder, ...]:
    """``count`` occluders of the sequence ``name``, deterministic from ``name`` and the world ``seed``.

    Each is a pole (a capsule 1.9-2.6 m tall, 50-110 mm thick), a box (approximated by two stacked
    horizontal capsules of radius 200-320 mm across the line of sight: 0.8-1.5 m wide, 0.7-1.2 m high)
    or another person (``bodies.make_sequence_body`` acting one of the in-place actions, so it moves),
    equally likely (a person wears a front print when ``front_print``). It stands on the floor in front of a random camera, near the horizontal segment
    from that camera to the person's mean pelvis position (offset sideways by ``_LATERAL_MM`` at the
    person's distance: up to 0.3 m for poles and boxes, 0.25-0.55 m for people), beyond a vertical
    plane across that segment that clears the person's surface (``surface_mm`` (T, N, 3) and its parts'
    ``part_radius_mm``) in every frame by ``_PERSON_CLEARANCE_MM``. So it never intersects the person,
    and it hides part of the person in that view while the views from other directions see past it.
    It keeps ``_CAMERA_CLEARANCE_MM`` from its camera and ``_MIN_DEPTH_MM`` in front of every camera;
    when the drawn camera leaves no such spot, the others are tried in turn (an occluder that fits
    none is left out: on the h36m ring there is always room). Vectorised over frames and points; the
    only loops are over the occluders and, rarely, the cameras.
    """
    rng = seeded_rng("occluders", seed, name)
    R, t = cameras.R.numpy(), cameras.t.numpy()
    centres = cameras.centers.numpy()
    mean_xy = surface_mm[:, 0, :2].mean(axis=0)
    person_xy = surface_mm[..., :2].reshape(-1, 2) - mean_xy
    person_radius = float(np.max(part_radius_mm))
    occluders = []
    for k in range(count):  # a loop over the few occluders
        kind = OCCLUDER_KINDS[rng.integers(len(OCCLUDER_KINDS))]
        local, parts, radii, colours, body = _occluder_shape(kind, rng, len(surface_mm), fps, f"{name}/occluder{k}",
                                                             seed, front_print)
        extent = float(np.max(radii))
        first = int(rng.integers(len(cameras)))
        for camera in [first] + [int(c) for c in rng.permutation(len(cameras)) if c != first]:
            towards = centres[camera, :2] - mean_xy
            distance = float(np.linalg.norm(towards))
            if distance < 1.0:
                continue
            u = towards / distance
            w = np.array([-u[1], u[0]])
            reach = float((person_xy @ u).max()) + person_radius  # the person's extent towards the camera
            nearest = reach + _PERSON_CLEARANCE_MM - (float(local[..., 0].min()) - extent)
            farthest = distance - _CAMERA_CLEARANCE_MM - (float(local[..., 0].max()) + extent)
            if farthest < nearest:
                continue
            along = nearest + rng.uniform() * min(farthest - nearest, _PLACEMENT_SPREAD_MM)
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            sideways = side * rng.uniform(*_LATERAL_MM[kind]) * (distance - along) / distance
            anchor = mean_xy + along * u + sideways * w
            points = np.concatenate([anchor + local[..., :1] * u + local[..., 1:2] * w, local[..., 2:]], axis=-1)
            depth = np.einsum("vj,tkj->vtk", R[:, 2], points) + t[:, None, None, 2]  # (V, T, K) camera z
            if depth.min() - extent >= _MIN_DEPTH_MM:
                occluders.append(Occluder(kind, camera, points, parts, radii, colours, body))
                break
        else:
            logger.debug("synthetic sequence %s: no camera leaves room for occluder %d (%s)", name, k, kind)
    return tuple(occluders)
