"""Tiny MPI-INF-3DHP fixtures that the tests write (never real 3DHP data): a walking stick person in the 3DHP joint
order, the test set's annot_data.mat (HDF5 with MATLAB's reversed axes and a v7.3 header block), P-STMO's
data_test_3dhp.npz / data_train_3dhp.npz and the training set's camera.calibration text files, all consistent with
each other through the cameras of ``datasets.formats.mpi_inf_3dhp`` and a ring of training cameras."""
from pathlib import Path

import h5py
import numpy as np
import torch

from core.geometry.cameras import Cameras
from datasets.formats.mpi_inf_3dhp import TEST_SEQUENCES, TRAIN_CAMERAS, TRAIN_INTRINSICS, sequence_camera
from datasets.synthetic.rigs import look_at

UNIVERSAL_SCALE = 0.9          # univ_annot3 = annot3 scaled about the pelvis
# a standing person in 3DHP order (head top, neck, right arm, left arm, right leg, left leg, pelvis, spine, head),
# x to its left, y forward, z up, mm
BODY = np.array([[0, 0, 1750], [0, 0, 1500], [-180, 0, 1450], [-200, 0, 1180], [-210, 50, 930], [180, 0, 1450],
                 [200, 0, 1180], [210, 50, 930], [-120, 0, 950], [-120, 20, 520], [-120, 0, 90], [120, 0, 950],
                 [120, 20, 520], [120, 0, 90], [0, 0, 950], [0, 0, 1200], [0, 0, 1620]], dtype=np.float64)


def walking_person(frames: int, y_up: bool = False) -> np.ndarray:
    """(T, 17, 3) world mm: BODY moving along x and swinging its wrists; with ``y_up``, y is up (3DHP's studio)."""
    t = np.arange(frames, dtype=np.float64)[:, None]
    points = np.repeat(BODY[None], frames, axis=0)
    points[..., 0] += 15.0 * t
    points[:, [4, 7], 1] += 120.0 * np.sin(t / 4.0) * np.array([1.0, -1.0])
    return points[..., [0, 2, 1]] * np.array([1.0, 1.0, -1.0]) if y_up else points


def universal(points_cam: np.ndarray) -> np.ndarray:
    pelvis = points_cam[..., 14:15, :]
    return pelvis + UNIVERSAL_SCALE * (points_cam - pelvis)


def to_camera(points_world: np.ndarray, cameras: Cameras):
    """(V, T, 17, 3) camera-frame mm and (V, T, 17, 2) pixels of world points (T, 17, 3) seen by ``cameras``."""
    world = torch.from_numpy(points_world).double()
    cam = cameras.unsqueeze(1).world_to_camera(world.expand(len(cameras), -1, -1, -1))
    pixels = cameras.project(world.flatten(0, 1).expand(len(cameras), -1, -1)).reshape(*cam.shape[:-1], 2)
    return cam.numpy(), pixels.numpy()


def sequence_take(sequence: str, frames: int = 12):
    """(annot2 (N, 17, 2), annot3 (N, 17, 3), univ_annot3, valid (N,), activity (N,)) of a test sequence: the person
    seen by the sequence's test camera; frame 3 is not valid."""
    cam, pixels = to_camera(walking_person(frames, y_up=True), sequence_camera(sequence))
    valid = np.ones(frames, bool)
    valid[3] = False
    return pixels[0], cam[0], universal(cam[0]), valid, 1 + np.arange(frames) % 7


def write_test_mat(path: Path, sequence: str, frames: int = 12, **replace) -> Path:
    """A test sequence's annot_data.mat: MATLAB 7.3's 512-byte text header, then the arrays with reversed axes."""
    annot2, annot3, univ, valid, activity = sequence_take(sequence, frames)
    arrays = {"annot2": annot2[:, None], "annot3": annot3[:, None], "univ_annot3": univ[:, None],
              "valid_frame": valid[:, None].astype(np.float64), "activity_annotation": activity[:, None].astype(float)}
    arrays.update(replace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as mat:
        for key, value in arrays.items():
            if value is not None:
                mat.create_dataset(key, data=value)
    with path.open("r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: fixture HDF5 schema 1.00 .".ljust(116))
    return path


def write_test_set(folder: Path, sequences=("TS1", "TS5"), frames: int = 12) -> Path:
    for sequence in sequences:
        write_test_mat(folder / sequence / "annot_data.mat", sequence, frames)
    return folder


def write_test_npz(path: Path, sequences=("TS1", "TS5"), frames: int = 12) -> Path:
    data = {}
    for sequence in sequences:
        annot2, _, univ, valid, _ = sequence_take(sequence, frames)
        data[sequence] = {"data_2d": annot2.astype(np.float32), "data_3d": univ.astype(np.float32),
                          "valid": valid.astype(np.float64)}
    np.savez_compressed(path, data=data)
    return path


def train_rig(names=TRAIN_CAMERAS) -> Cameras:
    """Training cameras ``names`` on a ring 4 m around the person, 1.2 m high, camera n at n x 40 degrees, with
    their intrinsics (camera 3, which has none in the table, camera 0's)."""
    angles = np.radians(40.0 * np.array([int(n) for n in names]))
    eyes = np.stack([4000 * np.cos(angles), 4000 * np.sin(angles), np.full(len(names), 1200.0)], -1)
    R, t = look_at(eyes, np.array([0.0, 0.0, 900.0]))
    fx, fy, cx, cy = np.array([TRAIN_INTRINSICS.get(n, TRAIN_INTRINSICS["0"]) for n in names]).T
    K = np.zeros((len(names), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
    return Cameras.create(K, R, t, np.zeros((len(names), 5)), np.tile([2048, 2048], (len(names), 1)))


def write_train_npz(path: Path, subjects=("S1", "S2"), frames: int = 10, names=TRAIN_CAMERAS) -> Path:
    """P-STMO's training archive: Seq1 and Seq2 of each subject, every camera's univ_annot3 in its own frame."""
    cam, pixels = to_camera(walking_person(frames), train_rig(names))
    views = {n: {"data_2d": pixels[v].astype(np.float32), "data_3d": universal(cam[v]).astype(np.float32)}
             for v, n in enumerate(names)}
    data = {f"{s} Seq{q}": [views, 25] for s in subjects for q in (1, 2)}
    np.savez_compressed(path, data=data)
    return path


def calibration_text(cameras: Cameras, names) -> str:
    lines = ["Skeletool Camera Calibration File V1.0"]
    for name, K, R, t in zip(names, cameras.K.numpy(), cameras.R.numpy(), cameras.t.numpy()):
        intrinsic, extrinsic = np.eye(4), np.eye(4)
        intrinsic[:3, :3], extrinsic[:3, :3], extrinsic[:3, 3] = K, R, t
        lines += [f"name          {name}", "  sensor      10 10", "  size        2048 2048", "  animated    0",
                  "  intrinsic   " + " ".join(f"{v:.9g}" for v in intrinsic.ravel()),
                  "  extrinsic   " + " ".join(f"{v:.9g}" for v in extrinsic.ravel()), "  radial      0"]
    return "\n".join(lines) + "\n"


def write_calibrations(root: Path, subjects=("S1", "S2")) -> Path:
    """The training set's S<s>/Seq<q>/camera.calibration of ``train_rig`` under ``root``, listing cameras 0-8 (3, absent
    from P-STMO's archive, too)."""
    names = tuple(str(n) for n in range(9))
    text = calibration_text(train_rig(names), names)
    for subject in subjects:
        for seq in ("Seq1", "Seq2"):
            (root / subject / seq).mkdir(parents=True, exist_ok=True)
            (root / subject / seq / "camera.calibration").write_text(text)
    return root


def write_root(root: Path) -> Path:
    """A DATASETS.MPI_INF_3DHP.ROOT: both archives (S1, S2, S7, S8; TS1-TS6), the official test set's folder (TS1,
    TS3, TS5) and the training set's calibration files (``training_set``)."""
    root.mkdir(parents=True, exist_ok=True)
    write_train_npz(root / "data_train_3dhp.npz", subjects=("S1", "S2", "S7", "S8"), frames=10)
    write_test_npz(root / "data_test_3dhp.npz", sequences=TEST_SEQUENCES)
    write_test_set(root / "mpi_inf_3dhp_test_set", sequences=("TS1", "TS3", "TS5"))
    write_calibrations(root / "training_set", subjects=("S1", "S2", "S7", "S8"))
    return root
