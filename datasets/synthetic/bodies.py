"""The synthetic world's bodies on the Human3.6M 17-joint skeleton: shape, colours and forward kinematics.

World frame: millimetres, z up, ground plane z = 0 (EpiPose's convention); joints in the order of
``core.skeleton``. Nothing here comes from a dataset or a paper: the bodies are hand-made; their motion is
``datasets.synthetic.motion``'s.

- ``make_body(subject, seed)``: a subject model (deterministic from its name and the seed): stature
  1.5-1.95 m, adult proportions with per-bone variation, limb radii and a clothes-like colour
  palette, and ``parts``: the capsules a renderer draws (``BodyPart(joint_a, joint_b, radius_mm,
  colour)``, a sphere when ``joint_a == joint_b``; names in ``BODY_PART_NAMES``). Parts join the 17
  joints and ``LANDMARK_NAMES`` (indices 17..), surface points that ``Body.surface_points`` places
  from the joints: a nose and a hair cap on the head and the toes of both feet. Like a real person
  the body is left-right symmetric in shape and colour; these cues tell its front from its back,
  and so its left from its right, in a single image.
- ``with_front_print(body)``: the same body with a print on its shirt front (``DATASETS.SYNTHETIC.
  FRONT_PRINT``): a capsule of the shirt's contrasting colour on the chest, seen from the front and
  hidden from the back, as a face or a shirt's print is in a real image. At the crop sizes a CPU trains
  on (96 px: the nose is a pixel or two) it is what makes the front legible.
- ``make_sequence_body(name, seed)``: a body of its own for one sequence (``DATASETS.SYNTHETIC.
  BODY_PER_SEQUENCE``; named after the sequence, e.g. ``"S1/walk/0"``), from its own random streams
  and with a wider spread than the subjects' (bone proportions, girth, colours off the fixed lists);
  also the bodies of the occluding people of ``datasets.synthetic.occluders``.
- ``forward_kinematics(body, joint_angles_rad, root_positions_mm)``: local joint rotations -> joint
  positions, vectorised over frames (one step per joint of the tree, ``tree_forward_kinematics``).
Body frame and angles: a joint's rest offset from its parent is given in the body frame (x forward,
y to the body's left, z up), standing upright with the arms hanging. ``joint_angles_rad[..., j, :]``
= (roll, pitch, yaw) compose as ``Rx(roll) @ Ry(pitch) @ Rz(yaw)``: the yaw, applied first, twists a
bone about its own rest axis (limbs hang along -z), then the pitch flexes it about the lateral
axis and the roll abducts it about the forward axis. The root's rotation orients the pelvis; the
heading (a world rotation about z) is applied on top of it. Anatomical signs: flexion of hips,
shoulders and elbows is a negative pitch, knee flexion and forward bending of the trunk a positive
pitch, abduction and external rotation positive roll and yaw on the left, negative on the right.
"""
import colorsys
from dataclasses import dataclass, replace
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from core.geometry.kinematics import euler_to_matrix, tree_forward_kinematics
from core.skeleton import H36M17
from datasets.synthetic.seeding import check_seed, seeded_rng

SUBJECTS_TRAIN = ("S1", "S5", "S6", "S7", "S8")
SUBJECTS_TEST = ("S9", "S11")
SUBJECTS = SUBJECTS_TRAIN + SUBJECTS_TEST

STATURE_RANGE_MM = (1500.0, 1950.0)

Colour = Tuple[float, float, float]


class BodyPart(NamedTuple):
    """A capsule between two joints (a sphere when ``joint_a == joint_b``); colour is RGB in 0..1."""
    joint_a: int
    joint_b: int
    radius_mm: float
    colour: Colour


# Surface points placed from the joints (indices H36M17.num_joints + i in the parts).
LANDMARK_NAMES = ("nose", "hair", "r_toes", "l_toes")


def _point(name: str) -> int:
    """The index in ``Body.surface_points`` of an h36m17 joint or a landmark, by name."""
    return H36M17.index(name) if name in H36M17.joint_names else H36M17.num_joints + LANDMARK_NAMES.index(name)


# name, point_a, point_b, radius (fraction of stature, before girth; the head's is not scaled by girth,
# nor are the nose and hair, given as fractions of the head radius), palette entry
_PARTS = tuple((part, _point(a), _point(b), radius, colour) for part, a, b, radius, colour in (
    ("head", "neck", "head", 0.052, "skin"), ("nose", "nose", "nose", 0.30, "skin"),
    ("hair", "hair", "hair", 0.88, "hair"), ("neck", "thorax", "neck", 0.030, "skin"),
    ("chest", "spine", "thorax", 0.074, "shirt"), ("abdomen", "pelvis", "spine", 0.068, "shirt"),
    ("hips", "r_hip", "l_hip", 0.056, "trousers"), ("r_flank", "r_hip", "r_shoulder", 0.042, "shirt"),
    ("l_flank", "l_hip", "l_shoulder", 0.042, "shirt"), ("shoulders", "l_shoulder", "r_shoulder", 0.036, "shirt"),
    ("r_thigh", "r_hip", "r_knee", 0.043, "trousers"), ("r_shin", "r_knee", "r_ankle", 0.030, "trousers"),
    ("l_thigh", "l_hip", "l_knee", 0.043, "trousers"), ("l_shin", "l_knee", "l_ankle", 0.030, "trousers"),
    ("r_upper_arm", "r_shoulder", "r_elbow", 0.027, "shirt"), ("r_forearm", "r_elbow", "r_wrist", 0.022, "sleeve"),
    ("l_upper_arm", "l_shoulder", "l_elbow", 0.027, "shirt"), ("l_forearm", "l_elbow", "l_wrist", 0.022, "sleeve"),
    ("r_hand", "r_wrist", "r_wrist", 0.024, "skin"), ("l_hand", "l_wrist", "l_wrist", 0.024, "skin"),
    ("r_foot", "r_ankle", "r_toes", 0.026, "shoes"), ("l_foot", "l_ankle", "l_toes", 0.026, "shoes"),
))
_HEAD_PARTS = ("head", "nose", "hair")
# The front print's two surface points (after LANDMARK_NAMES, on a body with a print only), as fractions of the way
# from the spine joint to the thorax, and its radius and protrusion beyond the chest, as fractions of the chest's
# radius (so its centres lie (1 - radius + protrusion) chest radii in front of the chest's axis).
PRINT_LANDMARK_NAMES = ("print_top", "print_bottom")
_PRINT_AT, _PRINT_RADIUS, _PRINT_PROTRUSION = (0.85, 0.3), 0.5, 0.12
# Landmark placement: nose and hair centres from the head joint in head radii (forward, up); toes from
# the ankle in statures (forward, up).
_NOSE_AT, _HAIR_AT, _TOES_AT = (0.85, -0.1), (-0.3, 0.18), (0.1, -0.025)
BODY_PART_NAMES = tuple(p[0] for p in _PARTS)

_SKIN_TONES = ((0.96, 0.80, 0.69), (0.91, 0.72, 0.57), (0.80, 0.60, 0.45),
               (0.64, 0.45, 0.32), (0.45, 0.30, 0.20), (0.33, 0.22, 0.15))
_TROUSERS = ((0.18, 0.25, 0.42), (0.10, 0.10, 0.11), (0.40, 0.40, 0.42), (0.62, 0.56, 0.40),
             (0.30, 0.33, 0.20), (0.35, 0.24, 0.15), (0.12, 0.14, 0.28))
_SHOES = ((0.08, 0.08, 0.08), (0.22, 0.16, 0.10), (0.85, 0.85, 0.83), (0.30, 0.30, 0.32))
_HAIR_COLOURS = ((0.05, 0.04, 0.03), (0.20, 0.12, 0.06), (0.45, 0.30, 0.15), (0.80, 0.68, 0.42), (0.55, 0.55, 0.55))

# Rest offsets from the parent in the body frame, as fractions of stature (before per-bone
# variation): roughly Human3.6M's mean bone lengths for a 1.7 m adult. Group names index the
# per-bone variation factors (left and right share them).
_ANKLE_HEIGHT = 0.045
_REST_OFFSETS = {  # h36m17 joint: (group, (x, y, z))
    "r_hip": ("hip_width", (0.0, -0.075, -0.012)), "r_knee": ("thigh", (0.0, 0.0, -0.250)),
    "r_ankle": ("shin", (0.0, 0.0, -0.245)),
    "l_hip": ("hip_width", (0.0, 0.075, -0.012)), "l_knee": ("thigh", (0.0, 0.0, -0.250)),
    "l_ankle": ("shin", (0.0, 0.0, -0.245)),
    "spine": ("spine", (-0.004, 0.0, 0.132)), "thorax": ("chest", (0.0, 0.0, 0.146)),
    "neck": ("neck", (0.022, 0.0, 0.066)), "head": ("head", (-0.008, 0.0, 0.064)),
    "l_shoulder": ("shoulder_width", (0.0, 0.090, -0.024)), "l_elbow": ("upper_arm", (0.0, 0.0, -0.165)),
    "l_wrist": ("forearm", (0.0, 0.0, -0.148)),
    "r_shoulder": ("shoulder_width", (0.0, -0.090, -0.024)), "r_elbow": ("upper_arm", (0.0, 0.0, -0.165)),
    "r_wrist": ("forearm", (0.0, 0.0, -0.148)),
}
# the h36m17 joints that the body's landmarks and measures are placed from
_R_HIP, _R_KNEE, _R_ANKLE, _L_HIP, _L_ANKLE, _SPINE, _THORAX, _NECK, _HEAD, _L_SHOULDER, _R_SHOULDER = (
    H36M17.index(n) for n in ("r_hip", "r_knee", "r_ankle", "l_hip", "l_ankle", "spine", "thorax", "neck", "head",
                              "l_shoulder", "r_shoulder"))
_ANKLES = [_R_ANKLE, _L_ANKLE]                     # right, left (the order of the toes and of motion's stance)
_GROUPS = tuple(sorted({g for g, _ in _REST_OFFSETS.values()}))

@dataclass(frozen=True, eq=False)
class Body:
    """A synthetic subject. ``offsets_mm`` (17, 3): rest offset of each joint from its parent in the
    body frame (row 0 is zero); ``height_mm``: stature, floor to the top of the drawn head in the
    rest pose; ``ankle_height_mm``: ankle joint above the floor when standing; ``tempo`` and
    ``amplitude``: the subject's motion style (multipliers near 1)."""
    subject: str
    seed: int
    height_mm: float
    offsets_mm: np.ndarray
    ankle_height_mm: float
    parts: Tuple[BodyPart, ...]
    palette: Mapping[str, Colour]
    tempo: float
    amplitude: float
    front_print: bool = False

    @property
    def num_points(self) -> int:
        """How many points ``surface_points`` gives: the joints, the landmarks, the print's (when it has one)."""
        return H36M17.num_joints + len(LANDMARK_NAMES) + (len(PRINT_LANDMARK_NAMES) if self.front_print else 0)

    def surface_points(self, joints_mm: np.ndarray) -> np.ndarray:
        """(..., num_points, 3): the joints (..., 17, 3) followed by the ``LANDMARK_NAMES`` points (and the
        ``PRINT_LANDMARK_NAMES`` points of a body with a front print), the point set that ``part_arrays``
        indexes. The head's forward direction is normal to the shoulder line and the thorax-to-head axis,
        the chest's normal to the shoulder line and the spine-to-thorax axis; the feet point forward
        horizontally, normal to the hip line."""
        joints = np.asarray(joints_mm, dtype=np.float64)
        head, ankles = joints[..., _HEAD, :], joints[..., _ANKLES, :]
        head_up = _unit(head - joints[..., _THORAX, :])
        shoulder_line = joints[..., _L_SHOULDER, :] - joints[..., _R_SHOULDER, :]
        head_forward = _unit(np.cross(shoulder_line, head_up))
        feet_forward = _unit(np.cross(joints[..., _L_HIP, :] - joints[..., _R_HIP, :], [0.0, 0.0, 1.0]))
        head_radius = self.parts[BODY_PART_NAMES.index("head")].radius_mm

        def on_head(forward, up):
            return head + head_radius * (forward * head_forward + up * head_up)
        toes = ankles + self.height_mm * (_TOES_AT[0] * feet_forward[..., None, :] + [0.0, 0.0, _TOES_AT[1]])
        landmarks = [on_head(*_NOSE_AT), on_head(*_HAIR_AT), toes[..., 0, :], toes[..., 1, :]]
        if self.front_print:
            spine, thorax = joints[..., _SPINE, :], joints[..., _THORAX, :]
            chest_forward = _unit(np.cross(shoulder_line, thorax - spine))
            chest_radius = self.parts[BODY_PART_NAMES.index("chest")].radius_mm
            out = chest_radius * (1.0 - _PRINT_RADIUS + _PRINT_PROTRUSION) * chest_forward
            landmarks += [spine + f * (thorax - spine) + out for f in _PRINT_AT]
        return np.concatenate([joints, np.stack(landmarks, axis=-2)], axis=-2)

    def part_arrays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The parts as the renderer takes them: point pairs (P, 2) int64 into ``surface_points``, radii
        (P,) mm and RGB colours (P, 3) in 0..1, float32."""
        return (np.array([(p.joint_a, p.joint_b) for p in self.parts], dtype=np.int64),
                np.array([p.radius_mm for p in self.parts], dtype=np.float32),
                np.array([p.colour for p in self.parts], dtype=np.float32))

    @property
    def bone_lengths_mm(self) -> np.ndarray:
        """(16,) bone lengths in ``core.skeleton.H36M17.bones`` order."""
        return np.linalg.norm(self.offsets_mm[[c for _, c in H36M17.bones]], axis=-1)

    @property
    def rest_pose_mm(self) -> np.ndarray:
        """(17, 3) joints standing at the origin facing +x, feet on the ground."""
        joints = forward_kinematics(self, np.zeros((1, H36M17.num_joints, 3)), np.zeros((1, 3)))[0]
        joints[:, 2] += self.ankle_height_mm - joints[_ANKLES, 2].min()
        return joints


class _Variation(NamedTuple):
    """How widely a body's draws spread: (low, high) ranges of uniform factors, the std and clip range of the
    per-bone-group length factors, the per-channel colour jitter and whether colours leave the fixed lists."""
    bone_std: float
    bone_clip: Tuple[float, float]
    ankle: Tuple[float, float]
    head: Tuple[float, float]
    girth: Tuple[float, float]
    style: Tuple[float, float]
    colour_jitter: float
    free_colours: bool


# make_body's subjects (their numbers are pinned by tests and results: do not change them) and the wider
# spread of make_sequence_body's one-sequence bodies.
_SUBJECT_VARIATION = _Variation(0.035, (0.92, 1.08), (0.92, 1.08), (0.95, 1.05), (0.85, 1.2), (0.9, 1.1), 0.03, False)
_SEQUENCE_VARIATION = _Variation(0.05, (0.88, 1.12), (0.88, 1.12), (0.92, 1.08), (0.75, 1.35), (0.85, 1.15), 0.06,
                                 True)


def make_body(subject: str, seed: int = 0) -> Body:
    """A subject model, deterministic from ``subject`` (any non-empty name, e.g. ``"S1"``) and ``seed``."""
    if not isinstance(subject, str) or not subject:
        raise ValueError(f"subject must be a non-empty string, got {subject!r}")
    seed = check_seed(seed)
    return _make_body(subject, seed, seeded_rng("body", subject, seed), seeded_rng("hair", subject, seed),
                      _SUBJECT_VARIATION)


def make_sequence_body(name: str, seed: int = 0) -> Body:
    """A body of its own for one sequence (``DATASETS.SYNTHETIC.BODY_PER_SEQUENCE``), deterministic from the
    sequence's ``name`` (e.g. ``"S1/walk/0"``, which becomes ``Body.subject``) and ``seed``. Its own random
    streams (not ``make_body(name)``'s) and a wider spread than the subjects': bone-group factors N(1, 0.05)
    clipped to 0.88-1.12, girth 0.75-1.35, and colours off the fixed lists (skin tones between neighbouring
    tones, trousers and shoes of any colour half of the time, sleeves of their own colour, dyed hair)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    seed = check_seed(seed)
    return _make_body(name, seed, seeded_rng("sequence_body", name, seed), seeded_rng("sequence_hair", name, seed),
                      _SEQUENCE_VARIATION)


def with_front_print(body: Body) -> Body:
    """``body`` with a print on its shirt front: a capsule between the ``PRINT_LANDMARK_NAMES`` points of half the
    chest's radius, protruding a little beyond it, in the shirt's complementary hue with the opposite lightness (dark
    on a light shirt, light on a dark one). No random draw: every other part and colour stays as it was."""
    if body.front_print:
        return body
    hue, saturation, value = colorsys.rgb_to_hsv(*body.palette["shirt"])
    colour = colorsys.hsv_to_rgb((hue + 0.5) % 1.0, max(saturation, 0.6), 0.15 if value > 0.55 else 0.92)
    chest = body.parts[BODY_PART_NAMES.index("chest")]
    first = H36M17.num_joints + len(LANDMARK_NAMES)
    part = BodyPart(first, first + 1, _PRINT_RADIUS * chest.radius_mm, tuple(float(c) for c in colour))
    return replace(body, parts=body.parts + (part,), front_print=True)


def _make_body(subject: str, seed: int, rng: np.random.Generator, hair_rng: np.random.Generator,
               v: _Variation) -> Body:
    stature = rng.uniform(*STATURE_RANGE_MM)
    factors = dict(zip(_GROUPS, np.clip(rng.normal(1.0, v.bone_std, len(_GROUPS)), *v.bone_clip)))
    offsets = np.zeros((H36M17.num_joints, 3))
    for joint, (group, offset) in _REST_OFFSETS.items():
        offsets[H36M17.index(joint)] = np.asarray(offset) * factors[group]
    ankle_height = _ANKLE_HEIGHT * rng.uniform(*v.ankle)
    head_radius = _PARTS[0][3] * rng.uniform(*v.head)
    # scale so that ankle height + ankle-to-head-joint height + head radius is the stature
    head_height = ankle_height - offsets[[_R_KNEE, _R_ANKLE], 2].sum() - offsets[_R_HIP, 2] + \
        offsets[[_SPINE, _THORAX, _NECK, _HEAD], 2].sum()
    scale = stature / (head_height + head_radius)
    girth = rng.uniform(*v.girth)
    palette = _make_palette(rng, v.colour_jitter, v.free_colours)
    # the hair has its own stream: the older draws keep their values
    hair = np.asarray(_HAIR_COLOURS[hair_rng.integers(len(_HAIR_COLOURS))])
    if v.free_colours and hair_rng.uniform() < 0.1:  # dyed
        hair = np.asarray(colorsys.hsv_to_rgb(hair_rng.uniform(), hair_rng.uniform(0.4, 0.9),
                                              hair_rng.uniform(0.3, 0.8)))
    palette["hair"] = tuple(float(c) for c in np.clip(
        hair + hair_rng.uniform(-v.colour_jitter, v.colour_jitter, 3), 0, 1))
    head_mm = scale * head_radius
    parts = tuple(
        BodyPart(a, b, float(head_mm if name == "head" else radius * head_mm if name in _HEAD_PARTS
                             else scale * radius * girth), palette[colour])
        for name, a, b, radius, colour in _PARTS)
    return Body(subject=subject, seed=seed, height_mm=float(stature), offsets_mm=offsets * scale,
                ankle_height_mm=float(ankle_height * scale), parts=parts, palette=palette,
                tempo=float(rng.uniform(*v.style)), amplitude=float(rng.uniform(*v.style)))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)


def _make_palette(rng: np.random.Generator, jitter_range: float = 0.03, free: bool = False) -> Dict[str, Colour]:
    """Clothes, skin and shoes: from the fixed lists, jittered; ``free`` (one-sequence bodies) also blends skin
    tones, and draws trousers, shoes and sleeves of any colour part of the time (extra draws after the others)."""
    def jitter(colour) -> Colour:
        return tuple(float(c) for c in np.clip(np.asarray(colour) + rng.uniform(-jitter_range, jitter_range, 3),
                                               0.0, 1.0))

    shirt = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 0.85), rng.uniform(0.35, 0.95))
    tone = rng.integers(len(_SKIN_TONES))
    skin = np.asarray(_SKIN_TONES[tone])
    palette = {
        "skin": jitter(skin),
        "shirt": jitter(shirt),
        "trousers": jitter(_TROUSERS[rng.integers(len(_TROUSERS))]),
        "shoes": jitter(_SHOES[rng.integers(len(_SHOES))]),
    }
    palette["sleeve"] = palette["shirt"] if rng.uniform() < 0.5 else palette["skin"]
    if free:
        neighbour = np.asarray(_SKIN_TONES[min(tone + 1, len(_SKIN_TONES) - 1)])
        palette["skin"] = jitter(skin + rng.uniform() * (neighbour - skin))
        for key, saturation, value in (("trousers", (0.1, 0.8), (0.15, 0.75)), ("shoes", (0.0, 0.9), (0.1, 0.9))):
            if rng.uniform() < 0.5:
                palette[key] = jitter(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value)))
        sleeve = rng.uniform()
        palette["sleeve"] = palette["shirt"] if sleeve < 0.45 else palette["skin"] if sleeve < 0.9 else \
            jitter(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 0.85), rng.uniform(0.3, 0.9)))
    return palette


def forward_kinematics(body: Body, joint_angles_rad: np.ndarray, root_positions_mm: np.ndarray,
                       heading_rad: Optional[np.ndarray] = None) -> np.ndarray:
    """Joint positions (T, 17, 3) mm from local angles (T, 17, 3) (roll, pitch, yaw; see the module
    docstring), the root (pelvis) positions (T, 3) mm and the heading (T,) rad about world z (0: facing +x)."""
    joint_angles_rad = np.asarray(joint_angles_rad, dtype=np.float64)
    root_positions_mm = np.asarray(root_positions_mm, dtype=np.float64)
    heading_rad = np.zeros(joint_angles_rad.shape[:-2]) if heading_rad is None else np.asarray(heading_rad, np.float64)
    if joint_angles_rad.ndim != 3 or joint_angles_rad.shape[1:] != (H36M17.num_joints, 3) \
            or root_positions_mm.shape != (len(joint_angles_rad), 3) or heading_rad.shape != (len(joint_angles_rad),):
        raise ValueError(f"forward_kinematics: expected joint_angles_rad (T, {H36M17.num_joints}, 3), "
                         f"root_positions_mm (T, 3) and heading_rad (T,), got {joint_angles_rad.shape}, {root_positions_mm.shape} and "
                         f"{heading_rad.shape}")
    if not (np.isfinite(joint_angles_rad).all() and np.isfinite(root_positions_mm).all()
            and np.isfinite(heading_rad).all()):
        raise ValueError("forward_kinematics: angles, root positions and heading must be finite")
    rotations = euler_to_matrix(joint_angles_rad, "XYZ")
    rotations[:, 0] = euler_to_matrix(heading_rad[:, None], "Z") @ rotations[:, 0]
    return tree_forward_kinematics(H36M17.parents, body.offsets_mm, rotations, root_positions_mm)
