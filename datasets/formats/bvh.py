"""BVH (Biovision Hierarchy) motion files: reader, forward kinematics, conversion to Human3.6M joints.

Format (Biovision / the de-facto spec used by the CMU "cgspeed" conversions and 3ds Max exports)::

    HIERARCHY
    ROOT Hips { OFFSET x y z  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
                JOINT Child { OFFSET ... CHANNELS 3 ... ... End Site { OFFSET x y z } } ... }
    MOTION
    Frames: N
    Frame Time: dt
    N lines of channel values (all joints' channels, in hierarchy order)

Kinematics follow the usual BVH reading: a joint's local rotation is the product of its rotation
channels in the order declared (``Zrotation Yrotation Xrotation`` -> ``Rz @ Ry @ Rx``, degrees), a
joint's local translation is ``OFFSET`` plus its position channels (if any), and
``p_child = p_parent + G_parent @ translation_child`` with ``G_child = G_parent @ R_child``.
End Sites become joints named ``<parent>_End`` without channels. A missing file raises
``FileNotFoundError``; anything unreadable raises ``BvhFormatError`` (a ValueError) naming the file
and line.

``bvh_to_h36m`` maps a BVH skeleton onto the 17 Human3.6M joints of ``core.skeleton`` by joint
name (see ``BVH_JOINT_MAPS``), converts file units to millimetres, turns the BVH's Y-up axes into
EpiPose's Z-up world (``(x, y, z) -> (x, -z, y)``, a proper rotation, so left stays left) and puts
the ground at z = 0 (the lowest point any joint reaches over the clip). Derived joints:

- ``pelvis`` = midpoint of the two hip joints (Human3.6M's pelvis sits between the hips);
- ``thorax`` = midpoint of the two shoulder (upper-arm root) joints;
- ``spine`` = the BVH spine joint about halfway between them (CMU ``Spine`` / ``Chest``);
- ``neck`` (Human3.6M's neck/nose point) = the BVH ``Head`` joint (base of the skull);
- ``head`` = the End Site above ``Head`` (top of the head).

Units: without an explicit ``scale_mm_per_unit`` the unit is chosen among millimetre, centimetre,
inch, CMU ASF unit (1/0.45 inch = 56.44 mm, the unit of the CMU BVH conversions) and metre as the one
that makes the rest pose's height closest to 1.7 m (in log ratio). This assumes a standing Y-up
rest pose; pass the scale explicitly for anything else.

Forward kinematics uses ``core.geometry.kinematics`` (shared with the synthetic motion).
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from core.geometry.kinematics import euler_to_matrix, tree_forward_kinematics
from core.skeleton import H36M17

_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
_ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
_CHANNEL_NAMES = {name.lower(): name for name in _POSITION_CHANNELS + _ROTATION_CHANNELS}

# Candidate units (mm per file unit) for the automatic scale, see the module docstring.
UNIT_CANDIDATES_MM = {"mm": 1.0, "cm": 10.0, "inch": 25.4, "cmu": 25.4 / 0.45, "m": 1000.0}
_NOMINAL_HEIGHT_MM = 1700.0

# Human3.6M joint -> BVH joint name, for the skeletons met so far. pelvis and thorax are derived
# (midpoints of the hips / shoulders) and need no entry.
BVH_JOINT_MAPS = {
    # CMU mocap converted by B. Hahne (cgspeed), MotionBuilder-style names.
    "cmu_cgspeed": {
        "r_hip": "RightUpLeg", "r_knee": "RightLeg", "r_ankle": "RightFoot",
        "l_hip": "LeftUpLeg", "l_knee": "LeftLeg", "l_ankle": "LeftFoot",
        "spine": "Spine", "neck": "Head", "head": "Head_End",
        "l_shoulder": "LeftArm", "l_elbow": "LeftForeArm", "l_wrist": "LeftHand",
        "r_shoulder": "RightArm", "r_elbow": "RightForeArm", "r_wrist": "RightHand",
    },
    # CMU mocap exported from 3ds Max (e.g. subject 131), anatomical names.
    "cmu_3dsmax": {
        "r_hip": "RightHip", "r_knee": "RightKnee", "r_ankle": "RightAnkle",
        "l_hip": "LeftHip", "l_knee": "LeftKnee", "l_ankle": "LeftAnkle",
        "spine": "Chest", "neck": "Head", "head": "Head_End",
        "l_shoulder": "LeftShoulder", "l_elbow": "LeftElbow", "l_wrist": "LeftWrist",
        "r_shoulder": "RightShoulder", "r_elbow": "RightElbow", "r_wrist": "RightWrist",
    },
}
_DERIVED = {"pelvis": ("l_hip", "r_hip"), "thorax": ("l_shoulder", "r_shoulder")}


class BvhFormatError(ValueError):
    """A BVH file that cannot be read: names the file and the line."""

    def __init__(self, path, line: Optional[int], message: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class BvhMotion:
    """A parsed BVH file. Joints are in hierarchy (depth-first) order, so ``parents[j] < j``.

    ``offsets`` (J, 3) and positions are in file units and file axes; ``channels[j]`` lists joint
    j's channel names (canonical spelling, e.g. ``"Zrotation"``; none for End Sites, which
    ``end_sites`` flags); ``frames`` (T, C) holds the raw
    channel values (rotations in degrees) with joint j's channels at columns
    ``channel_starts[j] : channel_starts[j] + len(channels[j])``.
    """
    path: str
    joint_names: Tuple[str, ...]
    parents: Tuple[int, ...]
    offsets: np.ndarray
    channels: Tuple[Tuple[str, ...], ...]
    end_sites: Tuple[bool, ...]
    frames: np.ndarray
    frame_time_s: float

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time_s

    @property
    def channel_starts(self) -> Tuple[int, ...]:
        return tuple(int(s) for s in np.cumsum([0] + [len(c) for c in self.channels[:-1]]))

    def index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"{self.path}: no joint named '{name}'") from None


# ----- reading -----------------------------------------------------------------------------------
class _Tokens:
    """Whitespace tokens of the HIERARCHY section with their line numbers."""

    def __init__(self, path: str, lines: Sequence[str], first_line: int):
        self.path = path
        self.items = [(tok, first_line + i) for i, line in enumerate(lines) for tok in line.split()]
        self.pos = 0
        self.last_line = first_line + max(len(lines) - 1, 0)

    def next(self, what: str) -> Tuple[str, int]:
        if self.pos >= len(self.items):
            raise BvhFormatError(self.path, self.last_line, f"unexpected end of HIERARCHY, expected {what}")
        self.pos += 1
        return self.items[self.pos - 1]

    def peek(self) -> Optional[str]:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def expect(self, keyword: str) -> int:
        token, line = self.next(f"'{keyword}'")
        if token != keyword:
            raise BvhFormatError(self.path, line, f"expected '{keyword}', got '{token}'")
        return line

    def number(self, what: str) -> float:
        token, line = self.next(what)
        try:
            value = float(token)
        except ValueError:
            raise BvhFormatError(self.path, line, f"expected a number for {what}, got '{token}'") from None
        if not math.isfinite(value):
            raise BvhFormatError(self.path, line, f"{what} must be finite, got '{token}'")
        return value


def _parse_joint(tokens: _Tokens, kind: str, parent: int, joints: list) -> None:
    """Parse one ROOT / JOINT / End Site block (its keyword already consumed) and its children."""
    if kind == "End":
        line = tokens.expect("Site")
        name = f"{joints[parent][0]}_End"
    else:
        name, line = tokens.next("a joint name")
    if any(name == joint[0] for joint in joints):
        raise BvhFormatError(tokens.path, line, f"duplicate joint name '{name}'")
    tokens.expect("{")
    tokens.expect("OFFSET")
    offset = [tokens.number(f"OFFSET of '{name}'") for _ in range(3)]
    channels = []
    if kind != "End":
        tokens.expect("CHANNELS")
        count, count_line = tokens.next(f"the channel count of '{name}'")
        if not count.isdigit():
            raise BvhFormatError(tokens.path, count_line, f"expected the channel count of '{name}', got '{count}'")
        for _ in range(int(count)):
            token, channel_line = tokens.next(f"a channel name of '{name}'")
            if token.lower() not in _CHANNEL_NAMES:
                raise BvhFormatError(tokens.path, channel_line, f"unknown channel '{token}' of joint '{name}'")
            channels.append(_CHANNEL_NAMES[token.lower()])
        if len(set(channels)) != len(channels):
            raise BvhFormatError(tokens.path, count_line, f"repeated channel in joint '{name}'")
    index = len(joints)
    joints.append((name, parent, offset, tuple(channels), kind == "End"))
    while True:
        token, line = tokens.next(f"'JOINT', 'End Site' or '}}' in '{name}'")
        if token == "}":
            return
        if kind == "End" or token not in ("JOINT", "End"):
            expected = "'}'" if kind == "End" else "'JOINT', 'End Site' or '}'"
            raise BvhFormatError(tokens.path, line, f"expected {expected} in '{name}', got '{token}'")
        _parse_joint(tokens, token, index, joints)


def _parse_hierarchy(tokens: _Tokens) -> list:
    """[(name, parent, offset, channels, is_end_site)] in depth-first order."""
    tokens.expect("ROOT")
    joints = []
    _parse_joint(tokens, "ROOT", -1, joints)
    if tokens.peek() is not None:
        _, line = tokens.next("")
        raise BvhFormatError(tokens.path, line, "unexpected content after the ROOT joint (one ROOT is supported)")
    return joints


def _header_value(path: str, line_text: Optional[str], line_no: int, key: str) -> float:
    if line_text is None or not line_text.strip().startswith(key):
        got = "end of file" if line_text is None else f"'{line_text.strip()[:40]}'"
        raise BvhFormatError(path, line_no, f"expected '{key} <value>', got {got}")
    text = line_text.strip()[len(key):].strip()
    try:
        return float(text)
    except ValueError:
        raise BvhFormatError(path, line_no, f"expected a number after '{key}', got '{text}'") from None


def read_bvh(path: Union[str, Path]) -> BvhMotion:
    """Parse a BVH file (one ROOT). Raises ``FileNotFoundError`` or ``BvhFormatError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BVH file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except UnicodeDecodeError as error:
        raise BvhFormatError(path, None, f"not a text file ({error})") from None
    name = str(path)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].strip() != "HIERARCHY":
        raise BvhFormatError(name, (first or 0) + 1, "a BVH file must start with 'HIERARCHY'")
    motion_at = next((i for i, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion_at is None:
        raise BvhFormatError(name, len(lines), "no 'MOTION' section (truncated file?)")
    tokens = _Tokens(name, lines[first + 1:motion_at], first_line=first + 2)
    names, parents, offsets, channels, end_sites = zip(*_parse_hierarchy(tokens))

    rest = [(i, line) for i, line in enumerate(lines[motion_at + 1:], start=motion_at + 2) if line.strip()]
    frames_line, frames_text = rest[0] if rest else (len(lines), None)
    num_frames = _header_value(name, frames_text, frames_line, "Frames:")
    time_line, time_text = rest[1] if len(rest) > 1 else (len(lines), None)
    frame_time = _header_value(name, time_text, time_line, "Frame Time:")
    if num_frames != int(num_frames) or num_frames < 1:
        raise BvhFormatError(name, frames_line, f"'Frames:' must be a positive integer, got {num_frames:g}")
    if not (frame_time > 0 and math.isfinite(frame_time)):
        raise BvhFormatError(name, time_line, f"'Frame Time:' must be positive, got {frame_time:g}")
    num_frames = int(num_frames)
    data = rest[2:]
    num_channels = sum(len(c) for c in channels)
    if len(data) < num_frames:
        raise BvhFormatError(name, len(lines), f"truncated: 'Frames: {num_frames}' but {len(data)} frame lines")
    if len(data) > num_frames:
        raise BvhFormatError(name, data[num_frames][0], f"{len(data) - num_frames} lines after the "
                                                        f"{num_frames} frames declared by 'Frames:'")
    rows = [line.split() for _, line in data]
    for (line_no, _), row in zip(data, rows):
        if len(row) != num_channels:
            raise BvhFormatError(name, line_no, f"frame has {len(row)} values, expected {num_channels} channels")
    try:
        frames = np.array(rows, dtype=np.float64).reshape(num_frames, num_channels)
    except ValueError:
        bad = next(line_no for (line_no, _), row in zip(data, rows) if not _all_floats(row))
        raise BvhFormatError(name, bad, "frame values must be numbers") from None
    if not np.isfinite(frames).all():
        bad_frame = int(np.argwhere(~np.isfinite(frames))[0, 0])
        raise BvhFormatError(name, data[bad_frame][0], "frame values must be finite")
    return BvhMotion(name, names, parents, np.array(offsets, dtype=np.float64), channels, end_sites, frames,
                     float(frame_time))


def _all_floats(tokens: Sequence[str]) -> bool:
    try:
        [float(tok) for tok in tokens]
    except ValueError:
        return False
    return True


# ----- kinematics of a BVH motion ----------------------------------------------------------------
def bvh_joint_positions(motion: BvhMotion, frames: Optional[np.ndarray] = None) -> np.ndarray:
    """(T, J, 3) joint positions in file units and file axes (``frames`` defaults to ``motion.frames``)."""
    frames = motion.frames if frames is None else np.asarray(frames, dtype=np.float64)
    num_joints = len(motion.joint_names)
    rotations = np.broadcast_to(np.eye(3), (frames.shape[0], num_joints, 3, 3)).copy()
    translations = np.broadcast_to(motion.offsets, (frames.shape[0], num_joints, 3)).copy()
    for j, (start, chans) in enumerate(zip(motion.channel_starts, motion.channels)):
        rot = [(c[0], start + k) for k, c in enumerate(chans) if c in _ROTATION_CHANNELS]
        pos = [("XYZ".index(c[0]), start + k) for k, c in enumerate(chans) if c in _POSITION_CHANNELS]
        if rot:
            axes = "".join(axis for axis, _ in rot)
            rotations[:, j] = euler_to_matrix(np.deg2rad(frames[:, [col for _, col in rot]]), axes)
        for axis, col in pos:
            translations[:, j, axis] += frames[:, col]
    return tree_forward_kinematics(motion.parents, translations, rotations, translations[:, 0])


def _resolve_joint_map(motion: BvhMotion, joint_map) -> Mapping[str, str]:
    if isinstance(joint_map, str):
        if joint_map not in BVH_JOINT_MAPS:
            raise ValueError(f"unknown BVH joint map '{joint_map}', known: {sorted(BVH_JOINT_MAPS)}")
        joint_map = BVH_JOINT_MAPS[joint_map]
    if joint_map is None:
        names = set(motion.joint_names)
        found = [m for m in BVH_JOINT_MAPS.values() if set(m.values()) <= names]
        if not found:
            raise ValueError(f"{motion.path}: no known BVH skeleton matches its joint names "
                             f"{motion.joint_names}; pass joint_map (known: {sorted(BVH_JOINT_MAPS)})")
        joint_map = found[0]
    needed = [n for n in H36M17.joint_names if n not in _DERIVED]
    missing = [n for n in needed if n not in joint_map]
    unknown = [v for v in joint_map.values() if v not in motion.joint_names]
    if missing or unknown:
        raise ValueError(f"{motion.path}: joint_map lacks Human3.6M joints {missing} or names BVH joints "
                         f"{unknown} that the file does not have")
    return joint_map


def estimate_scale_mm_per_unit(motion: BvhMotion) -> float:
    """The candidate unit (``UNIT_CANDIDATES_MM``) that makes the Y-up rest pose closest to 1.7 m tall."""
    identity = np.broadcast_to(np.eye(3), (len(motion.parents), 3, 3))
    rest = tree_forward_kinematics(motion.parents, motion.offsets, identity, np.zeros(3))
    height = float(np.ptp(rest[:, 1]))
    if not height > 0:
        raise ValueError(f"{motion.path}: the rest pose has no vertical extent; pass scale_mm_per_unit")
    units = np.array(list(UNIT_CANDIDATES_MM.values()))
    return float(units[np.argmin(np.abs(np.log(height * units / _NOMINAL_HEIGHT_MM)))])


def bvh_to_h36m(motion: BvhMotion, scale_mm_per_unit: Optional[float] = None,
                joint_map: Union[None, str, Mapping[str, str]] = None) -> np.ndarray:
    """(T, 17, 3) Human3.6M joints in the world frame: millimetres, z up, ground at z = 0.

    ``joint_map``: a key of ``BVH_JOINT_MAPS``, a mapping Human3.6M name -> BVH name for the 15
    non-derived joints, or None to pick the first known map whose names the file has.
    """
    joint_map = _resolve_joint_map(motion, joint_map)
    if scale_mm_per_unit is None:
        scale_mm_per_unit = estimate_scale_mm_per_unit(motion)
    if not (scale_mm_per_unit > 0 and math.isfinite(scale_mm_per_unit)):
        raise ValueError(f"scale_mm_per_unit must be positive and finite, got {scale_mm_per_unit}")
    positions = bvh_joint_positions(motion) * scale_mm_per_unit
    positions = np.stack([positions[..., 0], -positions[..., 2], positions[..., 1]], axis=-1)  # Y-up -> Z-up
    positions[..., 2] -= positions[..., 2].min()
    picked = {h36m: positions[:, motion.index(bvh)] for h36m, bvh in joint_map.items()}
    for h36m, (a, b) in _DERIVED.items():
        picked[h36m] = 0.5 * (picked[a] + picked[b])
    return np.stack([picked[name] for name in H36M17.joint_names], axis=1)


def resample(positions: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Linear-interpolation resampling of (T, ...) frames at ``source_fps`` to ``target_fps``."""
    positions = np.asarray(positions, dtype=np.float64)
    if not (source_fps > 0 and target_fps > 0 and math.isfinite(source_fps) and math.isfinite(target_fps)):
        raise ValueError(f"fps must be positive and finite, got source {source_fps} and target {target_fps}")
    duration = (positions.shape[0] - 1) / source_fps
    times = np.arange(int(math.floor(duration * target_fps + 1e-9)) + 1) / target_fps
    where = np.minimum(times * source_fps, positions.shape[0] - 1)
    lower = np.minimum(np.floor(where).astype(int), max(positions.shape[0] - 2, 0))
    upper = np.minimum(lower + 1, positions.shape[0] - 1)
    weight = (where - lower).reshape(-1, *([1] * (positions.ndim - 1)))
    return (1.0 - weight) * positions[lower] + weight * positions[upper]


def load_motion_file(path: Union[str, Path], target_fps: float = 50.0,
                     scale_mm_per_unit: Optional[float] = None,
                     joint_map: Union[None, str, Mapping[str, str]] = None) -> np.ndarray:
    """Read a motion file (BVH) as (T, 17, 3) Human3.6M joints, world mm, z up, at ``target_fps``.

    Joint positions (not angles) are resampled by linear interpolation; at 120 -> 50 fps the
    bone-length error this introduces is far below a millimetre for human motion.
    """
    path = Path(path)
    if path.suffix.lower() != ".bvh":
        raise ValueError(f"load_motion_file: unsupported motion file '{path}' (only .bvh is supported)")
    motion = read_bvh(path)
    return resample(bvh_to_h36m(motion, scale_mm_per_unit, joint_map), motion.fps, target_fps)

