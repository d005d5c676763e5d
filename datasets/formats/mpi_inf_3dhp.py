"""Readers of MPI-INF-3DHP (Mehta et al., 3DV 2017) in its public layouts, in the dataset's 17 test joints
(``core.skeleton.MPI_INF_3DHP17``: head top, neck, right arm, left arm, right leg, left leg, pelvis = the root,
spine, head centre) and millimetres.

- The official test set, ``mpi_inf_3dhp_test_set/TS<i>/annot_data.mat`` (i = 1..6): MATLAB v7.3, i.e. HDF5, read
  with h5py. MATLAB stores arrays column-major, so h5py sees every axis reversed: the README's 3 x 17 x 1 x N
  ``univ_annot3`` is read as (N, 1, 17, 3). Keys read: ``annot2`` (N, 1, 17, 2) pixels of the test video,
  ``annot3`` and ``univ_annot3`` (N, 1, 17, 3) camera-frame mm (``univ_``: the pose on the universal skeleton of
  Human3.6M's height, the one the protocol scores), ``valid_frame`` ((N, 1) or (1, N), 1 for the frames the protocol
  scores) and ``activity_annotation`` (same shape, 1..7: stand/walk, exercise, sit on chair, reach/crouch, on floor,
  sports, misc.).
- P-STMO's archives (``common/data_to_npz_3dhp.py`` and ``data_to_npz_3dhp_test.py`` of paTRICK-swk/P-STMO, which
  later 3DHP lifting code reads too): one member ``data``, a pickled dict (read with ``datasets.formats.safe_pickle``):
  ``data_test_3dhp.npz`` = {"TS1".."TS6": {"data_2d": (N, 17, 2) px (annot2), "data_3d": (N, 17, 3) mm
  (univ_annot3), "valid": (N,) (valid_frame)}}, without activity labels; ``data_train_3dhp.npz`` = {"S<s> Seq<q>":
  [{camera: {"data_2d": (T, 17, 2) px, "data_3d": (T, 17, 3) mm}}, fps]}, cameras "0", "1", "2", "4", "5", "6", "7",
  "8", each camera's univ_annot3 in its own camera frame (the training set's annot.mat cut to the sequence's length).
- The training set's ``S<s>/Seq<q>/camera.calibration`` (text; per camera ``name``, ``sensor``, ``size`` w h,
  ``animated``, ``intrinsic`` and ``extrinsic`` as 16 numbers of a row-major 4x4 matrix: K in its top-left 3x3,
  pixels; world -> camera [R | t], mm; ``radial``, no distortion model): the rig that puts the training file's
  views into one world frame.

Not read: the training set's ``annot.mat`` (MATLAB v5, which needs scipy, not a dependency) and the test videos.

Cameras without a calibration file. The test cameras are those of the test set's ``test_util/camera_calibration``
(``ts1-4cameras.calib``: studio camera 8, 2048 x 2048, no distortion; ``ts5-6cameras.calib``: outdoor, 1920 x 1080,
OpenCV distortion), given there as sensor size, focal length and centre offset in mm, pixel aspect (y / x), and the
camera's origin, up and right in the studio frame: fx = focal x width / sensor width, fy = fx x aspect, cx, cy = the
image centre plus the offset in pixels (for camera 8 these are the intrinsics of the training calibration);
R = (right; -up; right x -up) made orthonormal, t = -R origin. The training cameras 0-8 take the intrinsics of the
training calibration (as tabulated in wenwen12321/VideoPose3D, ``common/mpi_inf_3dhp_dataset.py``) and identity
extrinsics.
Files are checked as they are read (``MPIINF3DHPError`` names the file, the key and what was expected), including
the joint order: the pelvis must lie between the hips, so that a file in another joint order is refused.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import h5py
import numpy as np

from core.geometry.cameras import Cameras
from core.skeleton import MPI_INF_3DHP17
from datasets.formats.calibration import CalibrationError, check_camera, check_rig
from datasets.formats.safe_pickle import SafePickleError, load_npz

NUM_JOINTS = 17
PELVIS, RIGHT_HIP, LEFT_HIP = (MPI_INF_3DHP17.index(n) for n in ("pelvis", "r_hip", "l_hip"))   # 14, 8, 11
TEST_SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
TRAIN_CAMERAS = ("0", "1", "2", "4", "5", "6", "7", "8")     # the cameras of P-STMO's training archive
TRAIN_IMAGE_SIZE = (2048, 2048)
# fx, fy, cx, cy (pixels) of the training cameras
TRAIN_INTRINSICS = {"0": (1497.693, 1497.103, 1024.704, 1051.394), "1": (1495.217, 1495.52, 1030.519, 1052.626),
                    "2": (1495.587, 1497.828, 983.8873, 987.5902), "4": (1490.952, 1491.108, 987.6075, 1019.069),
                    "5": (1500.414, 1499.971, 1012.331, 998.5009), "6": (1498.471, 1498.8, 999.7319, 1010.251),
                    "7": (1498.831, 1499.674, 987.2716, 976.8773), "8": (1500.172, 1500.837, 1017.387, 1043.032)}
# the two .calib files of the test set: sensor (mm), image size (px), focal length (mm), pixel aspect, centre offset
# (mm, + = right / down), distortion [k1, k2, p1, p2, k3], and origin (mm), up and right in the studio frame
TEST_CALIBRATIONS = {
    "studio": dict(sensor=(10.0, 10.0), size=(2048, 2048), focal=7.32506, aspect=1.00044,
                   offset=(-0.0322884, 0.0929296), dist=(0.0, 0.0, 0.0, 0.0, 0.0), origin=(3427.28, 1387.86, 309.42),
                   up=(-0.208215, 0.976233, 0.06014), right=(0.000575281, 0.0616098, -0.9981)),
    "outdoor": dict(sensor=(10.0, 5.625), size=(1920, 1080), focal=8.770747185, aspect=0.993236423,
                    offset=(-0.104908645, 0.104899704),
                    dist=(-0.276859611, 0.131125256, -0.000360494, -0.001149441, -0.049318332),
                    origin=(-2104.3074, 1038.6707, -4596.6367), up=(0.025272345, 0.995038509, 0.096227370),
                    right=(-0.939647257, -0.009210289, 0.342020929)),
}
TEST_KEYS = ("annot2", "annot3", "univ_annot3", "valid_frame", "activity_annotation")


class MPIINF3DHPError(ValueError):
    """An MPI-INF-3DHP file that is missing, malformed or in another joint order."""


@dataclass
class TestAnnotations:
    keypoints_2d: np.ndarray         # (N, 17, 2) float32 px (annot2)
    keypoints_3d: np.ndarray         # (N, 17, 3) float32 camera-frame mm (annot3)
    keypoints_3d_univ: np.ndarray    # (N, 17, 3) float32 camera-frame mm, universal skeleton (univ_annot3)
    valid: np.ndarray                # (N,) bool: scored by the protocol (valid_frame)
    activity: np.ndarray             # (N,) int64 activity ids (activity_annotation)


@dataclass
class Take:
    keypoints_2d: np.ndarray         # (T, 17, 2) float32 px
    keypoints_3d: np.ndarray         # (T, 17, 3) float32 camera-frame mm
    valid: np.ndarray                # (T,) bool


# ----- cameras -------------------------------------------------------------------------------------
def sequence_camera(sequence: str) -> Cameras:
    """The camera (batch (1,)) of the test sequence TS1..TS6 (see the module docstring)."""
    if sequence not in TEST_SEQUENCES:
        raise MPIINF3DHPError(f"unknown test sequence '{sequence}'; expected one of {', '.join(TEST_SEQUENCES)}")
    c = TEST_CALIBRATIONS["studio" if sequence in TEST_SEQUENCES[:4] else "outdoor"]
    (width, height), (sensor_w, sensor_h) = c["size"], c["sensor"]
    fx = c["focal"] * width / sensor_w
    K = np.array([[fx, 0.0, width / 2 + c["offset"][0] * width / sensor_w],
                  [0.0, fx * c["aspect"], height / 2 + c["offset"][1] * height / sensor_h], [0.0, 0.0, 1.0]])
    right, up = np.array(c["right"]), np.array(c["up"])
    u, _, vh = np.linalg.svd(np.stack([right, -up, np.cross(right, -up)]))      # the nearest rotation: the file's
    R = u @ vh                                                                   # axes have 6 digits
    return Cameras.create(K[None], R[None], (-R @ np.array(c["origin"]))[None], np.array(c["dist"])[None],
                          np.array([c["size"]]))


def train_cameras(names: Sequence[str]) -> Cameras:
    """The training cameras ``names`` (batch (V,)) with their intrinsics and identity extrinsics (each camera's world
    is its own camera frame)."""
    unknown = [n for n in names if n not in TRAIN_INTRINSICS]
    if unknown:
        raise MPIINF3DHPError(f"no intrinsics for training camera(s) {', '.join(unknown)}; known: "
                              f"{', '.join(TRAIN_INTRINSICS)} (other cameras need a camera.calibration file)")
    fx, fy, cx, cy = np.array([TRAIN_INTRINSICS[n] for n in names]).T
    K = np.zeros((len(names), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
    return Cameras.create(K, np.broadcast_to(np.eye(3), K.shape).copy(), np.zeros((len(names), 3)),
                          np.zeros((len(names), 5)), np.tile(TRAIN_IMAGE_SIZE, (len(names), 1)))


CALIBRATION_FIELDS = {"sensor": 2, "size": 2, "animated": 1, "intrinsic": 16, "extrinsic": 16, "radial": 1}


def read_camera_calibration(path, names: Sequence[str] = ()) -> Tuple[Cameras, List[str]]:
    """The cameras of a training-set ``camera.calibration`` (world mm, no distortion) and their names, in the file's
    order or that of ``names``."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise MPIINF3DHPError(f"{path}: cannot read the camera calibration ({type(err).__name__}: {err})") from None
    cameras: Dict[str, Dict[str, np.ndarray]] = {}
    current = None
    for number, line in enumerate(lines[1:], start=2):            # the first line is the file's title
        key, *values = line.split() or [""]
        if key == "name":
            current = cameras.setdefault(" ".join(values), {})
        elif key in CALIBRATION_FIELDS:
            if current is None:
                raise MPIINF3DHPError(f"{path} line {number}: '{key}' before the first camera 'name'")
            current[key] = _numbers(values, CALIBRATION_FIELDS[key], f"{path} line {number} '{key}'")
    chosen = list(names) or list(cameras)
    missing = [n for n in chosen if n not in cameras]
    if not chosen or missing:
        raise MPIINF3DHPError(f"{path}: no camera named {', '.join(missing) or 'at all'}; cameras: "
                              f"{', '.join(cameras) or 'none'}")
    K, R, t, sizes = [], [], [], []
    for name in chosen:
        where = f"{path} camera {name}"
        lacking = [k for k in ("size", "intrinsic", "extrinsic") if k not in cameras[name]]
        if lacking:
            raise MPIINF3DHPError(f"{where}: no {', '.join(lacking)} (a camera needs size, intrinsic and extrinsic)")
        intrinsic, extrinsic = cameras[name]["intrinsic"].reshape(4, 4), cameras[name]["extrinsic"].reshape(4, 4)
        K.append(intrinsic[:3, :3])
        R.append(extrinsic[:3, :3])
        t.append(extrinsic[:3, 3])
        sizes.append(cameras[name]["size"])
        try:
            check_camera(K[-1], R[-1], where)
        except CalibrationError as err:
            raise MPIINF3DHPError(str(err)) from None
    rig = Cameras.create(np.stack(K), np.stack(R), np.stack(t), np.zeros((len(K), 5)), np.stack(sizes))
    try:
        check_rig(rig.centers.numpy(), chosen, str(path))
    except CalibrationError as err:
        raise MPIINF3DHPError(str(err)) from None
    return rig, chosen


def _numbers(values: Sequence[str], count: int, where: str) -> np.ndarray:
    try:
        array = np.array([float(v) for v in values])
    except ValueError:
        raise MPIINF3DHPError(f"{where}: expected {count} numbers, got {' '.join(values)!r:.80}") from None
    if array.shape != (count,) or not np.isfinite(array).all():
        raise MPIINF3DHPError(f"{where}: expected {count} finite numbers, got {len(array)}")
    return array


# ----- annotations ---------------------------------------------------------------------------------
def check_joint_order(points: np.ndarray, where: str) -> None:
    """Refuse 3D (..., 17, 3) whose joint 14 is not the pelvis between the hips 8 and 11 (a file in another joint
    order): the median over frames of its distance to the hips' midpoint must be under the hip width (a generous
    bound: in the Human3.6M-like orders of other tools' files, joint 14 is a shoulder, about 1.4 widths away)."""
    flat = points.reshape(-1, NUM_JOINTS, 3)
    off_centre = np.linalg.norm(flat[:, PELVIS] - (flat[:, RIGHT_HIP] + flat[:, LEFT_HIP]) / 2, axis=-1)
    hip_width = np.linalg.norm(flat[:, RIGHT_HIP] - flat[:, LEFT_HIP], axis=-1)
    usable = np.isfinite(off_centre) & np.isfinite(hip_width)
    if usable.any() and not np.median(off_centre[usable]) < np.median(hip_width[usable]):
        raise MPIINF3DHPError(f"{where}: joint 14 is not the pelvis between the hips (joints 8 and 11): not the 3DHP "
                              "joint order (head top, neck, right arm, left arm, right leg, left leg, pelvis, spine, "
                              "head) EpiPose reads")


def _array(value, shape: Tuple, where: str, finite: bool) -> np.ndarray:
    """``value`` as float32 of ``shape`` (None: any length), refusing infinite values (and NaN with ``finite``)."""
    expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    try:
        with np.errstate(over="ignore"):                         # values beyond float32 become inf, refused below
            array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise MPIINF3DHPError(f"{where}: expected numbers of shape {expected}, got {type(value).__name__}") from None
    if array.ndim != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape)):
        raise MPIINF3DHPError(f"{where}: expected shape {expected}, got {array.shape}")
    if np.isinf(array).any() or (finite and np.isnan(array).any()):
        raise MPIINF3DHPError(f"{where}: {'NaN or ' if finite else ''}infinite values"
                              f"{'' if finite else ' (a missing joint is NaN)'}")
    return array


def _take(data_2d, data_3d, valid, where: str) -> Take:
    keypoints_2d = _array(data_2d, (None, NUM_JOINTS, 2), f"{where} data_2d", finite=True)
    keypoints_3d = _array(data_3d, (len(keypoints_2d), NUM_JOINTS, 3), f"{where} data_3d", finite=False)
    check_joint_order(keypoints_3d, f"{where} data_3d")
    return Take(keypoints_2d, keypoints_3d, _flags(valid, len(keypoints_2d), f"{where} valid"))


def _flags(value, count: int, where: str) -> np.ndarray:
    """(count,) bool from an array of 0 and 1 of ``count`` entries (any singleton axes)."""
    array = _array(np.reshape(value, -1) if np.size(value) == count else value, (count,), where, finite=True)
    if not np.isin(array, (0.0, 1.0)).all():
        raise MPIINF3DHPError(f"{where}: expected 0 or 1 per frame")
    return array.astype(bool)


def _archive(path) -> dict:
    try:
        data = load_npz(path).get("data")
    except SafePickleError as err:
        raise MPIINF3DHPError(str(err)) from None
    if not isinstance(data, dict) or not data:
        raise MPIINF3DHPError(f"{path}: expected a member 'data' holding a non-empty dict of sequences (P-STMO's "
                              "data_train_3dhp.npz / data_test_3dhp.npz)")
    return data


def _member(mapping, key: str, where: str):
    if not isinstance(mapping, dict) or key not in mapping:
        found = sorted(map(str, mapping)) if isinstance(mapping, dict) else type(mapping).__name__
        raise MPIINF3DHPError(f"{where}: expected a dict with '{key}', found {found}")
    return mapping[key]


def read_processed_test(path) -> Dict[str, Take]:
    """{"TS1".."TS6": Take} of P-STMO's ``data_test_3dhp.npz`` (univ_annot3, camera frame)."""
    takes = {}
    for sequence, entry in _archive(path).items():
        where = f"{path} data['{sequence}']"
        if sequence not in TEST_SEQUENCES:
            raise MPIINF3DHPError(f"{where}: not a test sequence ({', '.join(TEST_SEQUENCES)})")
        takes[sequence] = _take(*(_member(entry, k, where) for k in ("data_2d", "data_3d", "valid")), where)
    return takes


def read_processed_train(path) -> Dict[Tuple[str, str], Dict[str, Take]]:
    """{(subject, sequence): {camera: Take}} of P-STMO's ``data_train_3dhp.npz`` (every frame valid)."""
    takes = {}
    for name, entry in _archive(path).items():
        where = f"{path} data['{name}']"
        parts = str(name).split(" ")
        if len(parts) != 2 or not isinstance(entry, (list, tuple)) or len(entry) != 2 or \
                not isinstance(entry[0], dict) or not entry[0]:
            raise MPIINF3DHPError(f"{where}: expected a key 'S<s> Seq<q>' holding [{{camera: {{data_2d, data_3d}}}}, "
                                  "fps]")
        views = {}
        for camera, arrays in entry[0].items():
            at = f"{where}[0]['{camera}']"
            data_2d = _member(arrays, "data_2d", at)
            views[str(camera)] = _take(data_2d, _member(arrays, "data_3d", at), np.ones(np.shape(data_2d)[:1]), at)
        takes[(parts[0], parts[1])] = views
    return takes


def read_test_annotations(path) -> TestAnnotations:
    """The annotations of a test sequence's ``annot_data.mat`` (MATLAB v7.3; see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise MPIINF3DHPError(f"{path}: file not found (the test set's TS<i>/annot_data.mat expected)")
    with path.open("rb") as stream:
        if stream.read(10) == b"MATLAB 5.0":
            raise MPIINF3DHPError(f"{path}: a MATLAB v5 file (the training set's annot.mat needs scipy, which EpiPose "
                                  "does not use); the test set's annot_data.mat files are v7.3 (HDF5)")
    try:
        with h5py.File(path, "r") as mat:
            nodes = {key: mat.get(key) for key in TEST_KEYS}
            lacking = [k for k, node in nodes.items() if not isinstance(node, h5py.Dataset)]
            if lacking:
                raise MPIINF3DHPError(f"{path}: no array {', '.join(lacking)}; the file has {', '.join(sorted(mat))}")
            arrays = {key: node[()] for key, node in nodes.items()}
    except MPIINF3DHPError:
        raise
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:     # h5py's errors on damaged files
        raise MPIINF3DHPError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({type(err).__name__}: {err})") from None
    keypoints_2d = _array(arrays["annot2"], (None, 1, NUM_JOINTS, 2), f"{path} annot2", finite=True)[:, 0]
    count = len(keypoints_2d)
    points = {key: _array(arrays[key], (count, 1, NUM_JOINTS, 3), f"{path} {key}", finite=False)[:, 0]
              for key in ("annot3", "univ_annot3")}
    for key, value in points.items():
        check_joint_order(value, f"{path} {key}")
    activity = _array(np.reshape(arrays["activity_annotation"], -1), (count,), f"{path} activity_annotation", True)
    if (activity != np.round(activity)).any():
        raise MPIINF3DHPError(f"{path} activity_annotation: expected integer activity ids")
    return TestAnnotations(keypoints_2d, points["annot3"], points["univ_annot3"],
                           _flags(arrays["valid_frame"], count, f"{path} valid_frame"), activity.astype(np.int64))
