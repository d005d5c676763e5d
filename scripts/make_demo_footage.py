"""Demo footage made by the toolbox itself: a short clip of the embedded synthetic world filmed by its ring of
calibrated cameras, written in the formats of a real recording, so that ``scripts/demo_multiview.py`` runs on a
fresh clone and can be scored against the known 3D.

    python scripts/make_demo_footage.py --out outs/demo_footage [--frames 100] [--action walk] [--size 480]

Writes into ``--out``:

- ``videos/cam1.mp4`` ...: each camera's frames, rendered by the world's capsule renderer over an empty room (a
  tiled floor and a wall, seen through the same lens), ``--size`` pixels on the longer side;
- ``calibration.toml``: the cameras in the aniposelib / Pose2Sim layout (``size``, ``matrix``, ``distortions``
  k1, k2, p1, p2, k3, Rodrigues ``rotation`` and ``translation`` in metres, world to camera);
- ``openpose/cam1/cam1_000000000000_keypoints.json`` ...: one OpenPose BODY_25 file per frame and camera, the
  projections of the body's keypoints with the world's detector-like noise (``DetectorNoise`` with the
  defaults of ``DATASETS.SYNTHETIC.NOISE``, scaled to these pixels: correlated jitter, larger on occluded
  keypoints, outliers, left/right swaps; confidence lower where occluded). A detector finds no keypoint outside
  the image nor a third of the occluded ones: those are written as OpenPose writes missing keypoints (0, 0, 0);
- ``truth.npz``: the true 3D, ``points_3d_mm`` (T, 17, 3) world mm in the Human3.6M joint order, with
  ``joint_names`` (``--truth`` of the demo).
"""
import argparse
import contextlib
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import get_defaults  # noqa: E402
from core.geometry.cameras import Cameras  # noqa: E402
from core.geometry.projection import pixels_to_normalized, undistort  # noqa: E402
from core.io import save_npz_atomic, write_text_atomic  # noqa: E402
from core.skeleton import H36M17  # noqa: E402
from core.video import Mp4Writer, VideoError  # noqa: E402
from datasets.formats.keypoints2d import KEYPOINT_NAMES  # noqa: E402
from datasets.synthetic import bodies, motion  # noqa: E402
from datasets.synthetic.dataset import (SyntheticSequence, SyntheticWorld, WorldSpec,  # noqa: E402
                                        world_spec_from_config)
from datasets.synthetic.noise import DetectorNoise, apply_detector_noise  # noqa: E402
from datasets.synthetic.render import joint_visibility, render_capsules  # noqa: E402
from datasets.synthetic.seeding import stable_seed  # noqa: E402

log = logging.getLogger("make_demo_footage")

BODY25 = KEYPOINT_NAMES["body25"]
BODY25_FLIP = tuple(BODY25.index({"l_": "r_", "r_": "l_"}.get(n[:2], n[:2]) + n[2:]) for n in BODY25)
# the keypoints that are points of the body's own (``Body.surface_points``): joints, and the nose landmark
TWINS = {**{name: H36M17.joint_names.index(name) for name in BODY25 if name in H36M17.joint_names},
         "openpose_neck": H36M17.joint_names.index("thorax"), "mid_hip": H36M17.joint_names.index("pelvis"),
         "nose": H36M17.num_joints + bodies.LANDMARK_NAMES.index("nose")}
MISSING_OCCLUDED = 1 / 3     # share of the occluded keypoints the detector does not report
FLOOR_TILE_MM = 600.0
WALL_RADIUS_MM = 7500.0      # a round room about the capture area, behind the cameras' ring
WALL_HEIGHT_MM = 3200.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip (the world moves at 50 fps)")
    parser.add_argument("--action", default="walk", choices=motion.ACTIONS, help="what the person does")
    parser.add_argument("--subject", default="S9", choices=bodies.SUBJECTS, help="whose body")
    parser.add_argument("--cameras", type=int, default=4, help="cameras on the ring (2 to 16)")
    parser.add_argument("--size", type=int, default=480, help="pixels of the images' longer side (64 to 1000)")
    parser.add_argument("--seed", type=int, default=0, help="the world's seed")
    args = parser.parse_args(argv)
    for name, value, low, high in (("--frames", args.frames, 1, 10000), ("--cameras", args.cameras, 2, 16),
                                   ("--size", args.size, 64, 1000), ("--seed", args.seed, 0, 2 ** 32 - 1)):
        if not low <= value <= high:
            parser.error(f"{name} must be between {low} and {high}, got {value}")
    return args


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _radius(body: bodies.Body, part: str) -> float:
    return body.parts[bodies.BODY_PART_NAMES.index(part)].radius_mm


def body25_points(body: bodies.Body, joints: np.ndarray) -> np.ndarray:
    """(T, 25, 3) world mm: the OpenPose BODY_25 keypoints of the body at ``joints`` (T, 17, 3), on its surface
    where OpenPose marks the surface (eyes and ears on the head, toes and heels on the feet), the nose at the centre
    of the body's nose. OpenPose's neck is the thorax joint (between the shoulders), its mid-hip the pelvis."""
    surface = body.surface_points(joints)
    named = {name: surface[..., index, :] for name, index in TWINS.items()}
    centre = joints[..., H36M17.joint_names.index("head"), :]
    up = _unit(centre - named["openpose_neck"])
    forward = _unit(np.cross(named["l_shoulder"] - named["r_shoulder"], up))
    left = np.cross(up, forward)
    head = _radius(body, "head")
    feet_forward = _unit(np.cross(named["l_hip"] - named["r_hip"], [0.0, 0.0, 1.0]))
    feet_left = np.cross([0.0, 0.0, 1.0], feet_forward)
    toe, heel = _radius(body, "l_foot"), max(_radius(body, "l_foot"), _radius(body, "l_shin"))
    for side, sign in (("l_", 1.0), ("r_", -1.0)):
        named[side + "eye"] = centre + head * _unit(0.8 * forward + 0.2 * up + 0.4 * sign * left)
        named[side + "ear"] = centre + head * sign * left
        toes = surface[..., H36M17.num_joints + bodies.LANDMARK_NAMES.index(side + "toes"), :]
        named[side + "big_toe"] = toes + toe * _unit(feet_forward - 0.6 * sign * feet_left)
        named[side + "small_toe"] = toes + toe * _unit(feet_forward + 0.6 * sign * feet_left)
        named[side + "heel"] = named[side + "ankle"] + heel * _unit(-feet_forward - [0.0, 0.0, 0.5])
    return np.stack([named[name] for name in BODY25], axis=-2)


def resized_cameras(cameras: Cameras, size: int) -> Cameras:
    """The cameras with their images resized to ``size`` pixels on the longer side (pixel centres kept)."""
    stride = float(cameras.image_size.max()) / size
    return cameras.for_feature_map(stride, torch.round(cameras.image_size[0] / stride))


def project(cameras: Cameras, points: np.ndarray):
    """(T, N, 3) world mm -> (T, V, N, 2) pixels and (T, V, N) camera depths, mm."""
    T, N, _ = points.shape
    world = torch.from_numpy(points).to(cameras.dtype).reshape(1, -1, 3).expand(len(cameras), -1, -1)
    pixels = cameras.project(world).reshape(len(cameras), T, N, 2).transpose(0, 1)
    depth = cameras.world_to_camera(world)[..., 2].reshape(len(cameras), T, N).transpose(0, 1)
    return pixels.numpy(), depth.numpy()


def keypoint_visibility(seq: SyntheticSequence, cameras: Cameras, keypoints: np.ndarray) -> np.ndarray:
    """(T, V, 25) bool: each keypoint inside the image and not hidden by any part of the scene (the renderer's
    own depth test, ``render.joint_visibility``). The keypoints come first in the point set, and the parts of the
    body's joints and nose (``TWINS``) end at their keypoints, so that a joint is not hidden by its own limb."""
    parts, radius, _ = seq.scene_parts()
    scene = seq.scene_points(slice(None))
    points = np.concatenate([keypoints, scene], axis=1)                                  # T, 25 + P, 3
    remap = np.arange(scene.shape[1]) + keypoints.shape[1]
    remap[list(TWINS.values())] = [BODY25.index(name) for name in TWINS]
    pixels, depth = project(cameras, points)
    T, V, N, _ = pixels.shape
    focal = np.broadcast_to(cameras.focal_lengths.mean(-1).numpy(), (T, V)).reshape(-1)
    visible = joint_visibility(pixels.reshape(T * V, N, 2), depth.reshape(T * V, N), focal,
                               remap[parts], radius, tuple(cameras.image_size[0].tolist()),
                               num_queried=keypoints.shape[1])
    return visible.reshape(T, V, -1)


def detections(pixels: np.ndarray, visible: np.ndarray, image_size, noise: DetectorNoise,
               rng: np.random.Generator) -> np.ndarray:
    """(T, V, 25, 3) OpenPose triplets (x, y, confidence): the noisy keypoints, (0, 0, 0) where not found."""
    noisy, confidence = apply_detector_noise(pixels, visible, noise, rng, flip=BODY25_FLIP)
    inside = ((pixels >= 0) & (pixels <= np.asarray(image_size) - 1)).all(-1)
    found = inside & (visible | (rng.random(visible.shape) >= MISSING_OCCLUDED))
    return np.where(found[..., None], np.concatenate([noisy, confidence[..., None]], -1), 0.0)


def room_backgrounds(cameras: Cameras, rng: np.random.Generator) -> np.ndarray:
    """(V, H, W, 3) uint8: what each camera sees of an empty round room through its lens: a floor of grey tiles
    (z = 0) and a wall of radius ``WALL_RADIUS_MM``, pale up to ``WALL_HEIGHT_MM`` and dark above, with a little
    sensor grain."""
    width, height = (int(v) for v in cameras.image_size[0].tolist())
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).reshape(1, -1, 2)
    pixels = torch.from_numpy(grid).to(cameras.dtype).expand(len(cameras), -1, -1)
    rays = undistort(pixels_to_normalized(pixels, cameras.K), cameras.dist)                 # V, H W, 2
    direction = (torch.cat([rays, torch.ones_like(rays[..., :1])], -1) @ cameras.R).numpy()  # R^T d, world
    origin = cameras.centers.numpy()[:, None]
    floor = np.where(direction[..., 2] < 0, -origin[..., 2] / np.minimum(direction[..., 2], -1e-9), np.inf)
    a = (direction[..., :2] ** 2).sum(-1)
    b = (origin[..., :2] * direction[..., :2]).sum(-1)
    c = (origin[..., :2] ** 2).sum(-1) - WALL_RADIUS_MM ** 2                                  # < 0: inside
    wall = (-b + np.sqrt(b * b - a * c)) / np.maximum(a, 1e-12)
    on_floor = floor < wall
    hit = origin + np.minimum(floor, wall)[..., None] * direction
    tiles = np.floor(hit[..., :2] / FLOOR_TILE_MM).sum(-1) % 2
    floor_rgb = np.where(tiles[..., None] > 0, (0.56, 0.54, 0.50), (0.44, 0.42, 0.40))
    shade = np.clip(1.0 - np.linalg.norm(hit[..., :2], axis=-1) / (2.5 * WALL_RADIUS_MM), 0.5, 1.0)[..., None]
    wall_rgb = np.where(hit[..., 2:] < WALL_HEIGHT_MM, (0.70, 0.74, 0.78), (0.25, 0.25, 0.27))
    image = np.where(on_floor[..., None], floor_rgb * shade, wall_rgb * (0.8 + 0.2 * hit[..., 2:] / WALL_HEIGHT_MM))
    image = image + rng.normal(0.0, 0.015, image.shape)
    image = np.nan_to_num(image, nan=0.0)        # rays the lens model cannot undo, at the corners of strong lenses
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8).reshape(len(cameras), height, width, 3)


def toml_list(values) -> str:
    return "[" + ", ".join(toml_list(v) if np.ndim(v) else repr(float(v)) for v in values) + "]"


def calibration_toml(cameras: Cameras, names) -> str:
    """The aniposelib / Pose2Sim TOML of ``cameras``: one table per camera, translations in metres."""
    tables = []
    for v, name in enumerate(names):
        rotation = cv2.Rodrigues(cameras.R[v].numpy())[0].ravel()
        tables.append(f'[cam_{v + 1}]\nname = "{name}"\nsize = {toml_list(cameras.image_size[v].numpy())}\n'
                      f"matrix = {toml_list(cameras.K[v].numpy())}\n"
                      f"distortions = {toml_list(cameras.dist[v].numpy())}\nrotation = {toml_list(rotation)}\n"
                      f"translation = {toml_list(cameras.t[v].numpy() / 1000.0)}\nfisheye = false\n")
    return "\n".join(tables + ["[metadata]\nadjusted = false\nerror = 0.0\n"])


def write_openpose(folder: Path, name: str, triplets: np.ndarray) -> None:
    """One OpenPose JSON per frame of one camera's (T, 25, 3) keypoints; the frame files of an earlier clip in the
    folder go first, so that it holds this clip's frames only."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{name}_*_keypoints.json"):
        stale.unlink()
    for t, person in enumerate(np.round(triplets, 3)):
        people = [{"person_id": [-1], "pose_keypoints_2d": person.ravel().tolist()}]
        write_text_atomic(json.dumps({"version": 1.3, "people": people}), folder / f"{name}_{t:012d}_keypoints.json")


def render_videos(folder: Path, names, seq: SyntheticSequence, cameras: Cameras, backgrounds: np.ndarray,
                  fps: float, rng: np.random.Generator) -> None:
    """One MP4 per camera: the body (and any occluders) rendered over the camera's background, frame by frame."""
    parts, radius, colour = seq.scene_parts()
    pixels, depth = project(cameras, seq.scene_points(slice(None)))
    focal = cameras.focal_lengths.mean(-1).numpy()
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(Mp4Writer(folder / f"{name}.mp4", fps)) for name in names]
        for t in tqdm(range(len(pixels)), desc="rendering the cameras"):
            images, _ = render_capsules(pixels[t], depth[t], focal, parts, radius, colour, backgrounds, rng=rng)
            for writer, image in zip(writers, images):
                writer.write(image)


def make_footage(args) -> dict:
    """Write the footage (see the module docstring); returns what the log reports."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world_spec = WorldSpec(subjects=[args.subject], actions=[args.action], frames_per_sequence=args.frames,
                           num_cameras=args.cameras, seed=args.seed, noise=DetectorNoise.none())
    seq = SyntheticWorld(world_spec).sequences[0]
    cameras = resized_cameras(seq.cameras, args.size)
    scale = float(cameras.image_size.max() / seq.cameras.image_size.max())
    noise = world_spec_from_config(get_defaults(), "test").noise       # its pixels are those of the world's images
    noise = replace(noise, jitter_std_px=noise.jitter_std_px * scale, outlier_std_px=noise.outlier_std_px * scale)
    rng = np.random.default_rng(stable_seed(args.seed, seq.name, "demo footage"))
    names = [f"cam{v + 1}" for v in range(len(cameras))]
    keypoints = body25_points(seq.body, seq.keypoints_3d.astype(np.float64))
    pixels, _ = project(cameras, keypoints)
    visible = keypoint_visibility(seq, cameras, keypoints)
    triplets = detections(pixels, visible, cameras.image_size[0].numpy(), noise, rng)
    write_text_atomic(calibration_toml(cameras, names), out / "calibration.toml")
    save_npz_atomic({"points_3d_mm": seq.keypoints_3d.astype(np.float64), "joint_names": np.array(H36M17.joint_names)},
                    out / "truth.npz")
    for v, name in enumerate(tqdm(names, desc="writing OpenPose JSON")):
        write_openpose(out / "openpose" / name, name, triplets[:, v])
    render_videos(out / "videos", names, seq, cameras, room_backgrounds(cameras, rng), world_spec.fps, rng)
    return {"frames": args.frames, "cameras": len(names), "size": tuple(int(v) for v in cameras.image_size[0]),
            "found": float((triplets[..., 2] > 0).mean()), "occluded": float((~visible).mean())}


def demo_command(out: str, cameras: int) -> str:
    views = ",".join(str(v + 1) for v in range(cameras))
    return (f"python scripts/demo_multiview.py --calibration {out}/calibration.toml --keypoints "
            f"{out}/openpose/cam{{{views}}} --layout body25 --videos {out}/videos/cam{{{views}}}.mp4 "
            f"--truth {out}/truth.npz --out outs/demo")


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s] %(message)s", datefmt="%H:%M:%S")
    try:
        stats = make_footage(args)
    except OSError as err:
        print(f"error: --out '{args.out}': cannot write there ({err.strerror or err})", file=sys.stderr)
        return 2
    except VideoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log.info("wrote %s: %d cameras x %d frames of %dx%d pixels, calibration.toml, OpenPose BODY_25 JSON (%.0f %% of "
             "the keypoints found, %.0f %% occluded) and truth.npz", args.out, stats["cameras"], stats["frames"],
             *stats["size"], 100 * stats["found"], 100 * stats["occluded"])
    log.info("next: %s", demo_command(args.out.rstrip("/"), stats["cameras"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
