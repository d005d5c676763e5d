"""Calibration file readers, converting to ``Cameras`` (world mm, ``X_cam = R X + t``, OpenCV model).

- Human3.6M JSON (the format of ``human36m-camera-parameters``): ``intrinsics[camera_id] =
  {calibration_matrix 3x3 px, distortion [k1, k2, p1, p2, k3]}`` and ``extrinsics[subject][camera_id]
  = {R 3x3 world->camera, t 3x1 mm}``. Image sizes are Human3.6M's own: 1000x1002 for cameras
  54138969 and 60457274, 1000x1000 for the others.

- aniposelib / Pose2Sim TOML: one table per camera with ``name``, ``size [w, h]``, ``matrix`` 3x3,
  ``distortions [k1, k2, p1, p2]``, ``rotation`` (Rodrigues vector, world->camera), ``translation`` and
  ``fisheye`` (only ``false`` is supported). Tables with none of these keys (``[metadata]``) are skipped; a
  camera table without ``size``, ``matrix``, ``rotation`` or ``translation`` is an error naming it. The
  translation is in the calibration board's units: metres for Pose2Sim (the default), often millimetres for
  anipose (``units="mm"``).
- CMU Panoptic JSON (``calibration_<sequence>.json``): ``cameras = [{name, type, resolution [w, h], K,
  distCoef [k1, k2, p1, p2, k3], R, t (centimetres)}]``.

``read_calibration`` picks the reader from the file's suffix and content. Every reader checks the file and
raises ``CalibrationError`` naming the file, the key and what was expected; rotations must be orthonormal
with determinant +1 and intrinsics invertible. ``check_rig`` rejects a rig of several cameras too small to
triangulate a person: centres all within ``MIN_RIG_FRACTION`` of the person's size (its 3D where the reader has
it, else ``PERSON_SIZE_MM``) or within ``MIN_BASELINE_MM``, saying when the translations look like metres
read as millimetres (a rig 1000 times too small); it warns about single pairs at one place and about centres so
far apart that the units are likely wrong the other way. The readers of rigs apply it.
"""
import difflib
import json
import logging
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import numpy as np
import torch

from core.geometry.cameras import Cameras

logger = logging.getLogger("epipose")

MIN_BASELINE_MM = 10.0       # camera centres closer than this add no depth to each other
MAX_BASELINE_MM = 200_000.0  # farther apart, the calibration's units are likely wrong
PERSON_SIZE_MM = 1700.0      # the size of the person filmed, for rigs read without its 3D
# The cameras of a rig that triangulates a person lie farther apart than this fraction of its size (a stereo camera:
# 6 cm for 1.7 m; Human3.6M: 11 m); a rig in metres read as millimetres is 1000 times too small.
MIN_RIG_FRACTION = 0.02
H36M_IMAGE_SIZES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
                    "60457274": (1000, 1002)}


class CalibrationError(ValueError):
    """A calibration file is missing, malformed, or describes impossible cameras."""


def _matrix(value, shape: Tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: expected numbers of shape {shape}, got {value!r:.80}") from None
    if array.size != int(np.prod(shape)):
        raise CalibrationError(f"{where}: expected {int(np.prod(shape))} numbers (shape {shape}), got shape {array.shape}")
    array = array.reshape(shape)
    if not np.isfinite(array).all():
        raise CalibrationError(f"{where}: contains NaN or infinite values")
    return array


def check_camera(K: np.ndarray, R: np.ndarray, where: str) -> None:
    """Reject non-orthonormal rotations and singular intrinsics."""
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise CalibrationError(f"{where}: R is not a rotation (R R^T = I and det R = +1 expected)")
    if abs(np.linalg.det(K[:2, :2])) < 1e-9 or np.abs(K[2] - [0, 0, 1]).max() > 1e-9:
        raise CalibrationError(f"{where}: K must be invertible with last row (0, 0, 1)")


def check_rig(centres: np.ndarray, names: Sequence[str], where: str, person_mm: float = PERSON_SIZE_MM,
              units: str = "millimetres") -> None:
    """(V, 3) camera centres, mm: with V >= 2, the farthest pair must lie ``MIN_RIG_FRACTION`` x ``person_mm``
    (and ``MIN_BASELINE_MM``) apart, else no person can be triangulated; the error says the translations look like
    metres when they would be far enough apart in metres and ``units`` (what the reader took them for) are not
    metres. Pairs closer than ``MIN_BASELINE_MM``, and centres ``MAX_BASELINE_MM`` apart, are logged as warnings."""
    centres = np.asarray(centres, dtype=np.float64)
    if len(centres) < 2:
        return
    first, second = np.triu_indices(len(centres), k=1)
    baselines = np.linalg.norm(centres[first] - centres[second], axis=-1)
    needed = max(MIN_BASELINE_MM, MIN_RIG_FRACTION * person_mm)
    if baselines.max() < needed:
        raise CalibrationError(_small_rig(len(centres), baselines.max(), needed, person_mm, where, units))
    if baselines.max() > MAX_BASELINE_MM:
        logger.warning("%s: cameras %.0f m apart; are the calibration's units right (TOML files: the translation "
                       "units, --toml-units in the demo)?", where, baselines.max() / 1000)
    for a, b, baseline in zip(first[baselines < MIN_BASELINE_MM], second[baselines < MIN_BASELINE_MM],
                              baselines[baselines < MIN_BASELINE_MM]):
        logger.warning("%s: cameras %s and %s are %.1f mm apart; they add no depth to each other", where, names[a],
                       names[b], baseline)


def _small_rig(count: int, spread: float, needed: float, person_mm: float, where: str, units: str) -> str:
    message = (f"{where}: the {count} cameras cannot triangulate a person of {person_mm:.0f} mm: their centres lie "
               f"within {spread:.3g} mm of each other, {needed:.0f} mm or more expected")
    metre = 100 if units.startswith("centimetres") else 1000  # what a metre read in these units became, mm
    if spread * metre >= needed and not units.startswith("metres"):
        message += f"; the translations look like metres where {units} are expected"
    return message


def _checked_rig(K, R, t, dist, sizes, names: Sequence[str], where: str, units: str,
                 person_mm: float = PERSON_SIZE_MM) -> Cameras:
    """``Cameras`` (batch (V,)) from lists of per-camera arrays, after ``check_rig``."""
    cameras = Cameras.create(np.stack(K), np.stack(R), np.stack(t), np.stack(dist), sizes)
    check_rig(cameras.centers.numpy(), names, where, person_mm, units)
    return cameras


def read_h36m_cameras(path, subject: str, camera_ids: Sequence[str] = (),
                      person_mm: float = PERSON_SIZE_MM) -> Tuple[Cameras, List[str]]:
    """The cameras of ``subject`` (float64, batch (V,)) and their ids, in ``camera_ids`` order (default: sorted);
    ``person_mm``: the size of the person they film (``check_rig``)."""
    path = Path(path)
    data = _read_json(path, "Human3.6M camera JSON")
    if not isinstance(data, dict) or not {"intrinsics", "extrinsics"} <= set(data) or \
            not isinstance(data["intrinsics"], dict) or not isinstance(data["extrinsics"], dict):
        raise CalibrationError(f"'{path}': expected the objects 'intrinsics' {{camera: ...}} and 'extrinsics' "
                               "{subject: {camera: ...}}")
    extrinsics = data["extrinsics"].get(subject)
    if not extrinsics or not isinstance(extrinsics, dict):
        known = ", ".join(k for k, v in data["extrinsics"].items() if v)
        raise CalibrationError(f"'{path}': no extrinsics for subject '{subject}'; subjects with cameras: {known}")
    ids = list(camera_ids) or sorted(data["intrinsics"])
    if not ids:
        raise CalibrationError(f"'{path}': 'intrinsics' lists no camera")
    K, R, t, dist, sizes = [], [], [], [], []
    for cam in ids:
        where = f"'{path}' camera {cam}"
        if cam not in data["intrinsics"] or cam not in extrinsics:
            raise CalibrationError(f"{where}: missing from intrinsics or from extrinsics of {subject}")
        intr, extr = data["intrinsics"][cam], extrinsics[cam]
        if not isinstance(intr, dict) or not isinstance(extr, dict):
            raise CalibrationError(f"{where}: intrinsics and extrinsics must be objects")
        K.append(_matrix(intr.get("calibration_matrix"), (3, 3), f"{where} calibration_matrix"))
        R.append(_matrix(extr.get("R"), (3, 3), f"{where} R"))
        t.append(_matrix(extr.get("t"), (3,), f"{where} t"))
        dist.append(_matrix(intr.get("distortion"), (5,), f"{where} distortion"))
        check_camera(K[-1], R[-1], where)
        sizes.append(H36M_IMAGE_SIZES.get(cam, tuple(2 * K[-1][:2, 2])))
    return _checked_rig(K, R, t, dist, torch.tensor(sizes), ids, f"'{path}' cameras of {subject}",
                        "millimetres (extrinsics t)", person_mm), ids


def _read_json(path: Path, expected: str):
    if not path.is_file():
        raise CalibrationError(f"calibration file '{path}' does not exist ({expected} expected)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CalibrationError(f"calibration file '{path}' is not valid JSON: {err}") from None


def rodrigues_to_matrix(rvec: np.ndarray) -> np.ndarray:
    """(3,) axis-angle vector -> (3, 3) rotation matrix (OpenCV's ``Rodrigues``)."""
    angle = float(np.linalg.norm(rvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rvec / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def _selected(names: List[str], wanted: Sequence[str], path: Path) -> List[int]:
    if not names:
        raise CalibrationError(f"'{path}': no cameras found")
    if not wanted:
        return list(range(len(names)))
    missing = [w for w in wanted if w not in names]
    if missing:
        raise CalibrationError(f"'{path}': no camera named {', '.join(missing)}; cameras: {', '.join(names)}")
    return [names.index(w) for w in wanted]


TOML_UNITS_MM = {"m": 1000.0, "cm": 10.0, "mm": 1.0}
TOML_UNIT_NAMES = {"m": "metres", "cm": "centimetres (toml_units cm)", "mm": "millimetres (toml_units mm)"}
TOML_REQUIRED = {"size": "[width, height]", "matrix": "the 3x3 intrinsic matrix", "rotation": "a Rodrigues vector",
                 "translation": "3 numbers"}
TOML_CAMERA_KEYS = set(TOML_REQUIRED) | {"distortions", "fisheye"}


def _toml_cameras(data: dict, path: Path) -> List[Tuple[str, dict]]:
    """(section, table) of every camera of a TOML calibration: the tables with a camera key, each of which must
    have all of ``TOML_REQUIRED``."""
    tables = [(key, value) for key, value in data.items() if isinstance(value, dict) and TOML_CAMERA_KEYS & set(value)]
    for section, table in tables:
        missing = [key for key in TOML_REQUIRED if key not in table]
        if missing:
            raise CalibrationError(_missing_toml_key(path, section, table, missing[0]))
    return tables


def _missing_toml_key(path: Path, section: str, table: dict, key: str) -> str:
    close = difflib.get_close_matches(key, [k for k in table if k not in TOML_CAMERA_KEYS], n=1)
    hint = f" ('{close[0]}' misspelt?)" if close else ""
    return (f"'{path}' [{section}]: no key '{key}' ({TOML_REQUIRED[key]}){hint}; a camera section needs "
            f"{', '.join(TOML_REQUIRED)}")


def read_toml_cameras(path, camera_names: Sequence[str] = (), units: str = "m") -> Tuple[Cameras, List[str]]:
    """The cameras of an aniposelib / Pose2Sim TOML file and their names, in the file's order (or
    ``camera_names``'); translations converted from ``units`` (m, cm or mm) to millimetres."""
    if units not in TOML_UNITS_MM:
        raise CalibrationError(f"TOML translation units must be one of {', '.join(TOML_UNITS_MM)}, got '{units}'")
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file '{path}' does not exist (aniposelib / Pose2Sim TOML expected)")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CalibrationError(f"calibration file '{path}' is not valid TOML: {err}") from None
    tables = _toml_cameras(data, path)
    names = [str(value.get("name", key)) for key, value in tables]
    K, R, t, dist, sizes = [], [], [], [], []
    indices = _selected(names, camera_names, path)
    for index in indices:
        key, camera = tables[index]
        where = f"'{path}' [{key}]"
        if camera.get("fisheye", False):
            raise CalibrationError(f"{where}: fisheye cameras are not supported (pinhole with OpenCV distortion "
                                   "expected)")
        K.append(_matrix(camera["matrix"], (3, 3), f"{where} matrix"))
        R.append(rodrigues_to_matrix(_matrix(camera["rotation"], (3,), f"{where} rotation")))
        t.append(_matrix(camera["translation"], (3,), f"{where} translation") * TOML_UNITS_MM[units])
        distortions = camera.get("distortions", [0.0] * 4)
        if not isinstance(distortions, list) or len(distortions) not in (4, 5):
            raise CalibrationError(f"{where} distortions: expected [k1, k2, p1, p2] or [k1, k2, p1, p2, k3], got "
                                   f"{distortions!r:.80}")
        dist.append(np.pad(_matrix(distortions, (len(distortions),), f"{where} distortions"),
                           (0, 5 - len(distortions))))
        sizes.append(_matrix(camera["size"], (2,), f"{where} size"))
        check_camera(K[-1], R[-1], where)
    selected = [names[i] for i in indices]
    return _checked_rig(K, R, t, dist, np.stack(sizes), selected, f"'{path}'", TOML_UNIT_NAMES[units]), selected


def read_panoptic_cameras(path, camera_names: Sequence[str] = ()) -> Tuple[Cameras, List[str]]:
    """The cameras of a CMU Panoptic calibration JSON and their names, in the file's order (or
    ``camera_names``'); translations converted from centimetres to millimetres."""
    path = Path(path)
    data = _read_json(path, "CMU Panoptic calibration JSON")
    cameras = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cameras, list) or not all(isinstance(c, dict) for c in cameras):
        raise CalibrationError(f"'{path}': expected a key 'cameras' holding a list of camera objects")
    names = [str(c.get("name", i)) for i, c in enumerate(cameras)]
    K, R, t, dist, sizes = [], [], [], [], []
    indices = _selected(names, camera_names, path)
    for index in indices:
        camera, where = cameras[index], f"'{path}' camera {names[index]}"
        K.append(_matrix(camera.get("K"), (3, 3), f"{where} K"))
        R.append(_matrix(camera.get("R"), (3, 3), f"{where} R"))
        t.append(_matrix(camera.get("t"), (3,), f"{where} t") * 10.0)
        dist.append(_matrix(camera.get("distCoef", [0.0] * 5), (5,), f"{where} distCoef"))
        sizes.append(_matrix(camera.get("resolution"), (2,), f"{where} resolution"))
        check_camera(K[-1], R[-1], where)
    selected = [names[i] for i in indices]
    return _checked_rig(K, R, t, dist, np.stack(sizes), selected, f"'{path}'", "centimetres"), selected


def read_calibration(path, camera_names: Sequence[str] = (), subject: str = "",
                     toml_units: str = "m") -> Tuple[Cameras, List[str]]:
    """Any supported calibration file: ``.toml`` (aniposelib / Pose2Sim, translations in ``toml_units``), or
    ``.json`` (Human3.6M, which needs ``subject``, or CMU Panoptic), told apart by their keys."""
    path = Path(path)
    if path.suffix.lower() == ".toml":
        return read_toml_cameras(path, camera_names, toml_units)
    if path.suffix.lower() != ".json":
        raise CalibrationError(f"calibration file '{path}': unknown format (expected .toml for aniposelib / "
                               "Pose2Sim, or .json for Human3.6M or CMU Panoptic)")
    data = _read_json(path, "Human3.6M or CMU Panoptic calibration JSON")
    if isinstance(data, dict) and "cameras" in data:
        return read_panoptic_cameras(path, camera_names)
    if isinstance(data, dict) and {"intrinsics", "extrinsics"} <= set(data):
        if not subject:
            raise CalibrationError(f"'{path}' is a Human3.6M camera file: name the subject whose extrinsics to use")
        return read_h36m_cameras(path, subject, camera_names)
    raise CalibrationError(f"'{path}': neither a CMU Panoptic ('cameras') nor a Human3.6M ('intrinsics', "
                           "'extrinsics') calibration")
