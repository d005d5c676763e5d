"""Tiny Human3.6M fixtures that the tests write (never real Human3.6M data): the two image layouts (a scene of
known 3D joints seen by an H36M-like ring of 4 distorted cameras; each view's image is black with a white disc at
the head's projection, cv2.projectPoints, an independent path; the toolbox describes it with camera centre T and
split k / p, learnable triangulation with R, t, K, dist, its own joint order and tlbr boxes) and the VideoPose3D
keypoint npz files."""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import torch

from core.skeleton import H36M17, H36M17_LEARNABLE_TRIANGULATION, joint_map
from datasets.formats.videopose3d import CAMERA_IDS, H36M_32_TO_17
from datasets.synthetic.rigs import h36m_like_ring

HEAD = 10
CAMERA_NAMES = ["54138969", "55011271", "58860488", "60457274"]
RIG = h36m_like_ring(4)


def pose(frame: int) -> np.ndarray:
    rng = np.random.default_rng(frame)
    points = np.column_stack([rng.uniform(-300, 300, H36M17.num_joints), rng.uniform(-300, 300, H36M17.num_joints),
                              rng.uniform(100, 1600, H36M17.num_joints)])
    points[HEAD] = (40.0 * frame, -30.0, 1750.0)
    return points


def project_cv2(points: np.ndarray, view: int) -> np.ndarray:
    rvec, _ = cv2.Rodrigues(RIG.R[view].numpy())
    pixels, _ = cv2.projectPoints(points, rvec, RIG.t[view].numpy(), RIG.K[view].numpy(), RIG.dist[view].numpy())
    return pixels[:, 0]


def box(pixels: np.ndarray):
    low, high = pixels.min(0), pixels.max(0)
    return (low + high) / 2, 1.2 * (high - low).max()


def write_image(path, head_px):
    image = np.zeros((1000, 1000, 3), np.uint8)
    cv2.circle(image, tuple(int(round(c * 16)) for c in head_px), 8 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


# (subject, action id, take, frame) of the fixture; S9 action 5 take 2 is a damaged take
FRAMES = [(1, 2, 1, 1), (1, 2, 1, 2), (9, 3, 1, 1), (9, 5, 2, 1)]


def write_toolbox(root: Path):
    """A toolbox-layout fixture (images and h36m_train.pkl) under ``root``: (root, the annotation file)."""
    records = []
    for s, a, sa, i in FRAMES:
        points = pose(i)
        for c in range(4):
            if (s, i, c) == (1, 2, 3):
                continue   # frame 2 of S1 misses camera 4: dropped
            name = f"s_{s:02d}_act_{a:02d}_subact_{sa:02d}_ca_{c + 1:02d}"
            image = f"{name}/{name}_{i:06d}.jpg"
            pixels = project_cv2(points, c)
            write_image(root / "images" / image, pixels[HEAD])
            centre, side = box(pixels)
            R, t, K, d = (RIG.R[c].numpy(), RIG.t[c].numpy(), RIG.K[c].numpy(), RIG.dist[c].numpy())
            camera = {"R": R, "T": (-R.T @ t)[:, None], "fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
                      "k": d[[0, 1, 4]][:, None], "p": d[[2, 3]][:, None], "name": CAMERA_NAMES[c]}
            records.append({"image": image, "joints_2d": pixels, "joints_3d": points, "joints_vis": np.ones((17, 3)),
                            "video_id": 0, "image_id": i, "subject": s, "action": a, "subaction": sa, "camera_id": c,
                            "source": "h36m", "camera": camera, "center": tuple(centre),
                            "scale": (side / 200, side / 200), "box": [0, 0, 1, 1]})
    path = root / "h36m_train.pkl"
    path.write_bytes(pickle.dumps(records, protocol=2))
    return root, path


def write_learnable(root: Path):
    """A learnable-triangulation-layout fixture (images and labels.npy) under ``root``: (root, the labels file)."""
    subjects, actions = ["S1", "S9"], ["Directions-1", "Discussion-1", "Greeting-2"]
    cameras = np.zeros((2, 4), dtype=[("R", np.float32, (3, 3)), ("t", np.float32, (3, 1)),
                                      ("K", np.float32, (3, 3)), ("dist", np.float32, 5)])
    for c in range(4):
        cameras[:, c] = (RIG.R[c].numpy(), RIG.t[c].numpy()[:, None], RIG.K[c].numpy(), RIG.dist[c].numpy())
    table = np.zeros(len(FRAMES), dtype=[("subject_idx", np.int8), ("action_idx", np.int8), ("frame_idx", np.int16),
                                         ("keypoints", np.float32, (17, 3)), ("bbox_by_camera_tlbr", np.int16, (4, 4))])
    inverse = joint_map(H36M17, H36M17_LEARNABLE_TRIANGULATION)
    for row, (s, a, sa, i) in enumerate(FRAMES):
        points = pose(i)
        subject, action = f"S{s}", actions[{2: 0, 3: 1, 5: 2}[a]]
        table[row]["subject_idx"], table[row]["action_idx"], table[row]["frame_idx"] = subjects.index(subject), \
            actions.index(action), i - 1
        table[row]["keypoints"] = points[inverse]
        for c in range(4):
            pixels = project_cv2(points, c)
            centre, side = box(pixels)
            if (s, i, c) != (1, 2, 3):
                table[row]["bbox_by_camera_tlbr"][c] = np.round([centre[1] - side / 2, centre[0] - side / 2,
                                                                 centre[1] + side / 2, centre[0] + side / 2])
            write_image(root / subject / action / "imageSequence" / CAMERA_NAMES[c] / f"img_{i:06d}.jpg", pixels[HEAD])
    path = root / "labels.npy"
    np.save(path, {"subject_names": subjects, "camera_names": CAMERA_NAMES, "action_names": actions,
                   "cameras": cameras, "table": table})
    return root, path


SYMMETRY = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]
TAKES = {"S1": {"Walking": 40, "Eating 2": 30}, "S9": {"Walking 1": 25}}


def write_cameras(path, rig, subjects):
    intrinsics = {cam: {"calibration_matrix": rig.K[v].tolist(), "distortion": rig.dist[v].tolist()}
                  for v, cam in enumerate(CAMERA_IDS)}
    extrinsics = {s: {cam: {"R": rig.R[v].tolist(), "t": rig.t[v].reshape(3, 1).tolist()}
                      for v, cam in enumerate(CAMERA_IDS)} for s in subjects}
    path.write_text(json.dumps({"intrinsics": intrinsics, "extrinsics": extrinsics}))


def walking_person(frames, seed):
    """(T, 32, 3) metres: a person near the origin, moving."""
    rng = np.random.default_rng(seed)
    base = np.column_stack([rng.uniform(-0.3, 0.3, 32), rng.uniform(-0.3, 0.3, 32), rng.uniform(0.1, 1.7, 32)])
    return base + np.linspace(0, 0.5, frames)[:, None, None] * np.array([1.0, 0.2, 0.0])


def write_dataset(root: Path, rig, cameras_file=None):
    positions_3d, positions_2d = {}, {}
    for s, (subject, takes) in enumerate(TAKES.items()):
        for a, (action, frames) in enumerate(takes.items()):
            metres = walking_person(frames, 10 * s + a)
            positions_3d.setdefault(subject, {})[action] = metres
            world = torch.from_numpy(metres[:, list(H36M_32_TO_17)] * 1000.0)
            pixels = rig.project(world.reshape(1, -1, 3).expand(4, -1, -1)).reshape(4, frames, H36M17.num_joints, 2)
            # two extra frames of 2D, as some Human3.6M videos have: trimmed by the reader
            positions_2d.setdefault(subject, {})[action] = [np.concatenate([p, p[-2:]]).astype(np.float32)
                                                            for p in pixels.numpy()]
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=positions_3d)
    np.savez_compressed(root / "data_2d_h36m_gt.npz", positions_2d=positions_2d,
                        metadata={"num_joints": 17, "keypoints_symmetry": SYMMETRY})
    if cameras_file is None:
        write_cameras(root / "camera-parameters.json", rig, TAKES)
