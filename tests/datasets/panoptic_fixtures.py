"""Tiny CMU Panoptic fixtures that the tests write (never Panoptic data): a calibration JSON with the four HD cameras
of ``DATASETS.PANOPTIC.CAMERAS`` around the capture space and a VGA camera, ``body3DScene`` files of synthetic
19-joint people in the studio's frame (centimetres, y down), with some joints below the confidence threshold, and
HD frames (JPEG, ``hdImgs/<cam>/<cam>_<frame:08d>.jpg``): a dark image with a white disc where OpenCV projects each
person's left wrist."""
import json
from pathlib import Path
from typing import Dict, Sequence

import cv2
import numpy as np

from core.skeleton import PANOPTIC19
from datasets.synthetic.rigs import look_at

HD_CAMERAS = ["00_06", "00_12", "00_13", "00_23"]
# a standing person, cm, y down (the studio's floor at y = 0), in the order of core.skeleton.PANOPTIC19
TEMPLATE_CM = np.array([
    [0, -150, 0], [0, -165, 10], [0, -95, 0],                      # neck, nose, body centre
    [18, -148, 0], [22, -120, 2], [24, -95, 6],                    # left arm
    [10, -95, 0], [11, -50, 3], [11, -8, 0],                       # left leg
    [-18, -148, 0], [-22, -120, 2], [-24, -95, 6],                 # right arm
    [-10, -95, 0], [-11, -50, 3], [-11, -8, 0],                    # right leg
    [3, -168, 8], [7, -166, 0], [-3, -168, 8], [-7, -166, 0]])     # eyes and ears
LOW = {(0, 2): 16, (0, 3): 17}   # (body id, frame index) -> a joint below the threshold (l_ear 0.05, r_eye -1)
DISC_JOINT = PANOPTIC19.index("l_wrist")   # the joint at the centre of the disc in the HD frames
DISC_RADIUS_PX, BACKGROUND = 24, 40


def calibration(name: str) -> dict:
    """A Panoptic calibration object: the HD cameras on a ring of radius 3 m, 1.2 to 1.8 m high, and a VGA camera."""
    cameras = []
    for i, (camera, azimuth) in enumerate(zip(HD_CAMERAS + ["01_01"], np.radians([10, 100, 190, 280, 45]))):
        eye = np.array([300 * np.cos(azimuth), -120 - 15 * i, 300 * np.sin(azimuth)])
        R, t = look_at(eye, (0.0, -100.0, 0.0), up=(0.0, -1.0, 0.0))
        hd = i < len(HD_CAMERAS)
        width, height, focal = (1920, 1080, 1400.0 + 20 * i) if hd else (640, 480, 600.0)
        cameras.append({"name": camera, "type": "hd" if hd else "vga", "resolution": [width, height],
                        "panel": int(camera[:2]), "node": int(camera[3:]),
                        "K": [[focal, 0, width / 2 + 3 * i], [0, focal, height / 2 - 2 * i], [0, 0, 1]],
                        "distCoef": [-0.05 + 0.01 * i, 0.01, 5e-4, -3e-4, 0.0],
                        "R": R.tolist(), "t": t.reshape(3, 1).tolist()})
    return {"calibDataSource": name, "cameras": cameras}


def person_cm(body_id: int, frame: int) -> np.ndarray:
    """(19, 4) one person's joints19 in a frame: cm (moving along x, each body elsewhere) and confidences."""
    rng = np.random.default_rng(100 * body_id + frame)
    points = TEMPLATE_CM + rng.uniform(-1.5, 1.5, TEMPLATE_CM.shape) + [5.0 * frame - 20 * body_id, 0, 15 * body_id]
    confidence = rng.uniform(0.3, 0.9, len(TEMPLATE_CM))
    if (body_id, frame) in LOW:
        confidence[LOW[(body_id, frame)]] = 0.05 if frame == 2 else -1.0
    return np.column_stack([points, confidence])


def write_sequence(root: Path, name: str, people: Dict[int, Sequence[int]], first_frame: int = 100,
                   images: bool = False) -> Path:
    """``root/name`` with its calibration and a body file per frame index in any of ``people`` ({body id: frame
    indices}); frame ``first_frame + i`` holds the bodies listed with ``i``. With ``images``, the HD frames too."""
    folder = root / name
    poses = folder / "hdPose3d_stage1_coco19"
    poses.mkdir(parents=True, exist_ok=True)
    calib = calibration(name)
    (folder / f"calibration_{name}.json").write_text(json.dumps(calib))
    for i in sorted({i for frames in people.values() for i in frames}):
        joints = [person_cm(body_id, i) for body_id, frames in people.items() if i in frames]
        ids = [body_id for body_id, frames in people.items() if i in frames]
        bodies = [{"id": body_id, "joints19": person.ravel().round(4).tolist()} for body_id, person in zip(ids, joints)]
        document = {"version": 0.7, "univTime": 1000.0 + i / 29.97, "fpsType": "hd_29_97", "bodies": bodies}
        (poses / f"body3DScene_{first_frame + i:08d}.json").write_text(json.dumps(document))
        if images:
            write_hd_frame(folder, calib, first_frame + i, np.stack(joints)[:, DISC_JOINT, :3].round(4))
    return folder


def write_hd_frame(folder: Path, calib: dict, frame: int, discs_cm: np.ndarray) -> None:
    """Every HD camera's image of ``frame``: white discs at the projections of ``discs_cm`` (N, 3) on a dark ground."""
    for camera in calib["cameras"][:len(HD_CAMERAS)]:
        width, height = camera["resolution"]
        image = np.full((height, width, 3), BACKGROUND, np.uint8)
        for x, y in project_cv2(discs_cm, camera):   # sub-pixel centres: 4 fractional bits
            cv2.circle(image, (round(16 * x), round(16 * y)), 16 * DISC_RADIUS_PX, (255, 255, 255), -1, cv2.LINE_AA,
                       shift=4)
        path = folder / "hdImgs" / camera["name"] / f"{camera['name']}_{frame:08d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)


def write_panoptic(root: Path) -> Path:
    """Three sequences: 171204_pose1 (training; body 0 in 5 frames), 171204_pose5 (body 0 in frames 0-4, body 1 in
    frames 1-2) and 171204_pose6 (body 3 in frames 0-1 and 3-4: two tracks), with their HD frames."""
    write_sequence(root, "171204_pose1", {0: range(5)}, images=True)
    write_sequence(root, "171204_pose5", {0: range(5), 1: [1, 2]}, images=True)
    write_sequence(root, "171204_pose6", {3: [0, 1, 3, 4]}, first_frame=2000, images=True)
    return root


def project_cv2(points_cm: np.ndarray, camera: dict) -> np.ndarray:
    """(N, 2) pixels of (N, 3) studio points through one calibration camera, by OpenCV (an independent path)."""
    rvec, _ = cv2.Rodrigues(np.array(camera["R"], dtype=np.float64))
    pixels, _ = cv2.projectPoints(np.ascontiguousarray(points_cm, np.float64), rvec, np.array(camera["t"], np.float64),
                                  np.array(camera["K"], np.float64), np.array(camera["distCoef"], np.float64))
    return pixels[:, 0]
