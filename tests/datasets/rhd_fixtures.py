"""A tiny made-up copy of the Rendered Hand Pose layout (never RHD's own data): random hands in front of a camera
whose focal length changes from image to image, their projections and visibility flags in the annotation pickle,
and per image a segmentation mask in which one hand is larger and a colour image with one white disc on the chosen
hand's thumb tip (at the projection of its 3D)."""
import pickle
from pathlib import Path

import cv2
import numpy as np

SETS = {"training": (0, 2, 3, 7, 8, 9), "evaluation": (0, 1, 4, 5)}   # sample ids (gaps on purpose)
DISC_JOINT = 1                                                         # thumb_tip in RHD's (and hand21's) order


def hand(rng, wrist) -> np.ndarray:
    """(21, 3) metres: a wrist and five fingers of four joints, tip first, each a chain of 1.5-3 cm bones."""
    fingers = []
    for finger in range(5):
        direction = np.array([np.cos(0.5 * finger - 1.2), -1.0, 0.1 * rng.standard_normal()])
        chain = wrist + np.cumsum(0.02 * direction * rng.uniform(0.8, 1.4, (4, 1)) + 0.003 * rng.standard_normal(
            (4, 3)), 0)                                                                   # mcp, pip, dip, tip
        fingers.append(chain[::-1])
    return np.concatenate([wrist[None], *fingers]).astype(np.float32)


def project(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = xyz @ K.T
    return uvw[:, :2] / uvw[:, 2:]


def make_record(rng):
    """One annotation (xyz (42, 3) m, uv_vis, K) and the hand (0 left, 1 right) with more mask pixels."""
    focal = rng.uniform(250.0, 350.0)
    K = np.array([[focal, 0.0, 160.0 + rng.uniform(-2, 2)], [0.0, focal, 160.0], [0.0, 0.0, 1.0]], np.float32)
    depth = rng.uniform(0.5, 0.7)
    wrists = [np.array([x, 0.06, depth]) for x in (-0.05, 0.05)]
    xyz = np.concatenate([hand(rng, w + 0.01 * rng.standard_normal(3)) for w in wrists])
    uv = project(xyz.astype(np.float64), K.astype(np.float64)) + rng.uniform(-0.3, 0.3, (42, 2))
    visible = (rng.random(42) < 0.75).astype(np.float32)
    visible[[1, 22]] = 1.0                                                 # the thumb tips carry the disc
    uv_vis = np.concatenate([uv, visible[:, None]], 1).astype(np.float32)
    return {"xyz": xyz, "uv_vis": uv_vis, "K": K}, int(rng.integers(2))


def write_images(folder: Path, sample_id: int, record, larger: int) -> None:
    mask = np.zeros((320, 320), np.uint8)
    mask[:, 300:] = 1                                                      # the person
    left, right = (30, 10) if larger == 0 else (10, 30)
    mask[:left, :40] = 17                                                  # the left palm (last left label)
    mask[100:100 + right, :40] = 18                                        # the right thumb (first right label)
    cv2.imwrite(str(folder / "mask" / f"{sample_id:05d}.png"), mask)
    color = np.zeros((320, 320, 3), np.uint8)
    u, v = project(record["xyz"][21 * larger + DISC_JOINT][None].astype(np.float64), record["K"].astype(np.float64))[0]
    cv2.circle(color, (int(round(u * 16)), int(round(v * 16))), 4 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    cv2.imwrite(str(folder / "color" / f"{sample_id:05d}.png"), color)


def write_rhd(root: Path, seed: int = 0):
    """Write ``root/<set>/anno_<set>.pickle``, ``mask/`` and ``color/``; returns {set: (records, larger hands)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for set_name, ids in SETS.items():
        folder = root / set_name
        for sub in ("mask", "color"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        records, larger = {}, {}
        for sample_id in ids[::-1]:                                        # the file need not be sorted
            records[sample_id], larger[sample_id] = make_record(rng)
            write_images(folder, sample_id, records[sample_id], larger[sample_id])
        with (folder / f"anno_{set_name}.pickle").open("wb") as stream:
            pickle.dump(records, stream, protocol=2)
        written[set_name] = (records, larger)
    return written
