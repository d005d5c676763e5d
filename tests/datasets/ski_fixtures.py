"""A tiny Ski-Pose fixture in the public layout (never the licensed data): a made-up skier running down a slope, seen
by 6 made-up pan-tilt-zoom cameras that follow it (each frame's rotation looks at the skier, its zoom keeps the skier
about 60 % of the 256 px crop, its principal point wanders), projected with cv2.projectPoints (an independent path)
into ``labels.h5`` rows and ``ski_centers.csv`` lines, in metres and fractions of the crop."""
from pathlib import Path

import cv2
import h5py
import numpy as np


# (seq, subj, frames) of each split; seq 102 lacks camera 4 at frame 7
RUNS = {"train": ((101, 1, 30), (102, 2, 20)), "test": ((201, 3, 25),)}
MISSING = (102, 7, 4)
CAMERAS = 6
SIDE = 256
# pelvis-relative joints (h36m17 order), metres, facing +x, left at +y, z up
TEMPLATE = np.array([
    (0, 0, 0), (0, -0.12, 0), (0.05, -0.12, -0.45), (0, -0.12, -0.88), (0, 0.12, 0), (0.05, 0.12, -0.45),
    (0, 0.12, -0.88), (0, 0, 0.25), (0, 0, 0.5), (0.02, 0, 0.6), (0, 0, 0.72), (0, 0.18, 0.48), (0.1, 0.22, 0.22),
    (0.3, 0.22, 0.1), (0, -0.18, 0.48), (0.1, -0.22, 0.22), (0.3, -0.22, 0.1)])
CAMERA_CENTRES = np.array([(x, side * 25.0, 4.0) for x in (-5.0, 10.0, 25.0) for side in (-1, 1)])


def skier(seq: int, frame: int):
    """(world centre (3,), world joints (17, 3)) in metres."""
    phase = 0.3 * frame + seq
    centre = np.array([0.4 * frame, 3.0 * np.sin(0.1 * frame + seq), 2.0 - 0.15 * frame])
    yaw = 0.4 * np.sin(0.2 * frame)
    turn = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    pose = TEMPLATE.copy()
    pose[[12, 13, 15, 16], 2] += 0.1 * np.sin(phase)                     # arms swing
    pose[[2, 5], 0] += 0.1 * np.cos(phase)                               # knees bend
    return centre, centre + pose @ turn.T


def look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The camera-to-world rotation of a camera at ``centre`` looking at ``target`` (OpenCV axes, world z up)."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return np.column_stack([right, np.cross(forward, right), forward])


def rows_of_split(split: str) -> dict:
    """The labels.h5 datasets of ``split`` and its centres {(seq, frame): (3,)}."""
    rows = {key: [] for key in ("seq", "subj", "cam", "frame", "3D", "2D", "cam_intrinsic", "cam_position",
                                "R_cam_2_world")}
    centres = {}
    for seq, subj, frames in RUNS[split]:
        for frame in range(frames):
            centre, joints = skier(seq, frame)
            centres[(seq, frame)] = centre
            for cam in range(CAMERAS):
                if (seq, frame, cam) == MISSING:
                    continue
                position = CAMERA_CENTRES[cam]
                to_world = look_at(position, centre + 0.2 * np.sin([frame + cam, frame - cam, 0]))
                focal = 0.6 * np.linalg.norm(centre - position) / 1.7
                principal = 0.5 + 0.05 * np.sin([frame + cam, 2 * frame - cam])
                intrinsic = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1]])
                rvec, _ = cv2.Rodrigues(to_world.T)
                pixels, _ = cv2.projectPoints(joints, rvec, -to_world.T @ position, intrinsic * [[SIDE], [SIDE], [1]],
                                              np.zeros(5))
                for key, value in (("seq", seq), ("subj", subj), ("cam", cam), ("frame", frame),
                                   ("3D", ((joints - centre) @ to_world).ravel()), ("2D", pixels.ravel() / SIDE),
                                   ("cam_intrinsic", intrinsic), ("cam_position", position),
                                   ("R_cam_2_world", to_world)):
                    rows[key].append(value)
    return {key: np.array(value, dtype=np.float32 if key in ("3D", "2D") else None) for key, value in rows.items()}, \
        centres


def write_labels(path: Path, rows: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        for key, value in rows.items():
            handle[key] = value
    return path


def write_ski(root: Path) -> Path:
    """train/labels.h5, test/labels.h5 and ski_centers.csv under ``root``; returns ``root``."""
    lines = []
    for split in RUNS:
        rows, centres = rows_of_split(split)
        write_labels(root / split / "labels.h5", rows)
        lines += [" ".join([str(seq), str(frame), *(repr(float(v)) for v in centre)])
                  for (seq, frame), centre in centres.items()]
    (root / "ski_centers.csv").write_text("\n".join(lines) + "\n")
    return root

