"""Procedural human motion on the Human3.6M 17-joint skeleton, for the embedded synthetic world.

World frame: millimetres, z up, ground plane z = 0 (EpiPose's convention); joints in the order of
``core.skeleton``. Nothing here comes from a dataset or a paper: actions are hand-made,
phase-based joint-angle trajectories, meant to give multi-view pipelines plausible, varied and
exactly known 3D poses.

- ``generate_sequence(body, action, num_frames, fps, seed)``: (T, 17, 3) joints for one of
  ``ACTIONS``, deterministic from body, action and seed; the bodies (``Body``, the joint angles' conventions
  and ``forward_kinematics``) are ``datasets.synthetic.bodies``'.

Sequences: per-subject style (tempo, amplitude) and per-sequence tempo, amplitude, phase, heading
and position; a small smooth random wobble on every joint; joint ranges clipped to ``JOINT_LIMITS_DEG``.
The root height keeps the lowest ankle at the body's ankle height (plus a ballistic lift while
jumping). The root's horizontal motion keeps the planted ankle where it was (the lower ankle; for
walking, the stance foot of the gait cycle), turning with the heading: walking moves forward along
the heading (on circles of 0.7-0.9 m radius, which fit the capture area), squats move the pelvis
back over the feet, jumps land where they took off. Walking smooths the root velocity over 0.12 s,
so the planted foot slides a few centimetres when the feet change (there is no foot to roll over).
Every joint stays inside a cylinder of radius ``CAPTURE_RADIUS_MM`` around the world origin and below
``CAPTURE_HEIGHT_MM`` (the rigs of ``datasets.synthetic.rigs`` see that whole volume).
"""
from typing import Callable, Dict, Tuple

import numpy as np

from core.skeleton import H36M17
from datasets.synthetic.bodies import Body, forward_kinematics
from datasets.synthetic.seeding import check_seed, seeded_rng

CAPTURE_RADIUS_MM = 1500.0
CAPTURE_HEIGHT_MM = 2300.0

# Joint ranges (degrees) on the raw angles (roll, pitch, yaw) of each joint; leaf joints (ankles,
# head, wrists) have no child to rotate and are held at zero.
_LEAF = [[0, 0], [0, 0], [0, 0]]
_JOINT_LIMITS_DEG = {
    "pelvis": [[-20, 20], [-30, 80], [-45, 45]],  # the local part; the heading is added on top
    "r_hip": [[-50, 25], [-130, 30], [-40, 40]], "r_knee": [[-5, 5], [0, 150], [-10, 10]], "r_ankle": _LEAF,
    "l_hip": [[-25, 50], [-130, 30], [-40, 40]], "l_knee": [[-5, 5], [0, 150], [-10, 10]], "l_ankle": _LEAF,
    "spine": [[-30, 30], [-30, 60], [-40, 40]], "thorax": [[-25, 25], [-25, 45], [-40, 40]],
    "neck": [[-40, 40], [-45, 60], [-70, 70]], "head": _LEAF,
    "l_shoulder": [[-30, 180], [-180, 60], [-100, 100]], "l_elbow": [[-5, 5], [-150, 0], [-10, 10]], "l_wrist": _LEAF,
    "r_shoulder": [[-180, 30], [-180, 60], [-100, 100]], "r_elbow": [[-5, 5], [-150, 0], [-10, 10]], "r_wrist": _LEAF,
}
JOINT_LIMITS_DEG = np.array([_JOINT_LIMITS_DEG[name] for name in H36M17.joint_names], dtype=np.float64)   # (17, 3, 2)
_PELVIS, _SPINE, _THORAX, _NECK = (H36M17.index(n) for n in ("pelvis", "spine", "thorax", "neck"))
_ANKLES = [H36M17.index("r_ankle"), H36M17.index("l_ankle")]        # right, left: the order of ``_Pose.stance``


class _Pose:
    """Joint angles in degrees (T, 17, 3) set through anatomical names, plus the root's extras."""
    _LEGS = {s: (H36M17.index(f"{s}_hip"), H36M17.index(f"{s}_knee"), sign)       # hip, knee, sign of abduction
             for s, sign in (("l", 1.0), ("r", -1.0))}                              # and twist
    _ARMS = {s: (H36M17.index(f"{s}_shoulder"), H36M17.index(f"{s}_elbow"), sign)  # shoulder, elbow, sign
             for s, sign in (("l", 1.0), ("r", -1.0))}

    def __init__(self, num_frames: int):
        self.deg = np.zeros((num_frames, H36M17.num_joints, 3))
        self.lift_mm = np.zeros(num_frames)         # height above the grounded pose (jump flight)
        self.turn_rate = np.zeros(num_frames)       # heading change, rad/s
        self.curvature_per_mm = 0.0                 # heading change per mm walked
        self.root_smoothing_s = 0.0                 # moving average of the foot-locked root velocity
        self.stance = None                          # (T,) planted foot, 0: right, 1: left; None: the lower

    def leg(self, side, flex=0.0, abduct=0.0, knee=0.0, twist=0.0):
        """Hip flexion is relative to the world vertical: ``pelvis_tilt`` compensates it."""
        hip, knee_joint, sign = self._LEGS[side]
        self.deg[:, hip] += np.stack(np.broadcast_arrays(sign * abduct, -flex, sign * twist), -1)
        self.deg[:, knee_joint, 1] += knee

    def arm(self, side, flex=0.0, abduct=0.0, twist=0.0, elbow=0.0):
        shoulder, elbow_joint, sign = self._ARMS[side]
        self.deg[:, shoulder] += np.stack(np.broadcast_arrays(sign * abduct, -flex, sign * twist), -1)
        self.deg[:, elbow_joint, 1] -= elbow

    def trunk(self, joint, bend=0.0, side=0.0, twist=0.0):
        self.deg[:, joint] += np.stack(np.broadcast_arrays(side, bend, twist), -1)

    def pelvis_tilt(self, bend):
        """Tilt the pelvis forward, keeping the thighs' world orientation (the hips flex with it)."""
        self.trunk(_PELVIS, bend=bend)
        for hip, _, _ in self._LEGS.values():
            self.deg[:, hip, 1] -= bend


def _bump(u, centre, width):
    """Periodic Gaussian bump on the cycle fraction ``u`` (0..1)."""
    d = (u - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def _walk(pose, t, ph, amp, rng, cycle_hz):
    u_right = (ph / (2 * np.pi)) % 1.0
    pose.stance = np.where((u_right >= 0.05) & (u_right < 0.55), 0, 1)  # switch mid double support
    for side, u in (("r", u_right), ("l", (u_right + 0.5) % 1.0)):
        # gait cycle u: heel strike at 0, stance until toe-off at 0.6 (the hip extends linearly and
        # the knee stays nearly straight, so the pelvis moves at a steady speed over the planted
        # ankle), swing back to flexion with the knee bending up to ~55 deg
        stance = u < 0.6
        hip = np.where(stance, 1 - 2 * u / 0.6, -np.cos(np.pi * np.clip((u - 0.6) / 0.4, 0, 1) ** 0.6))
        knee = 55 * _bump(u, 0.76, 0.075)
        pose.leg(side, flex=4 + 22 * amp * hip, knee=4 + amp * knee, abduct=2)
        pose.arm(side, flex=-18 * amp * hip, elbow=15 + 10 * np.maximum(0, -hip))
    pose.trunk(_PELVIS, twist=5 * amp * np.sin(ph), side=2 * np.sin(2 * ph))
    pose.trunk(_THORAX, twist=-8 * amp * np.sin(ph))
    pose.trunk(_SPINE, bend=4)
    pose.curvature_per_mm = rng.choice([-1.0, 1.0]) / rng.uniform(700.0, 900.0)  # circles that fit the area
    pose.root_smoothing_s = 0.12  # spreads the change of pivot foot over a few frames


def _arm_swing(pose, t, ph, amp, rng, cycle_hz):
    style = rng.integers(3)
    if style == 0:  # alternating, like exaggerated walking arms
        pose.arm("r", flex=45 * amp * np.sin(ph), elbow=15)
        pose.arm("l", flex=-45 * amp * np.sin(ph), elbow=15)
        pose.trunk(_THORAX, twist=10 * np.sin(ph))
    elif style == 1:  # both arms forward and back together
        for side in "lr":
            pose.arm(side, flex=40 + 70 * amp * np.sin(ph), elbow=10)
    else:  # lateral raises
        for side in "lr":
            pose.arm(side, abduct=50 + 45 * amp * np.sin(ph), elbow=10)
    bounce = 6 * (1 - np.cos(2 * ph)) / 2
    for side in "lr":
        pose.leg(side, flex=bounce / 2, knee=4 + bounce)


def _squat(pose, t, ph, amp, rng, cycle_hz):
    depth = amp * rng.uniform(0.7, 1.0)
    s = depth * (1 - np.cos(ph)) / 2
    pose.pelvis_tilt(25 * s)
    for side in "lr":
        pose.leg(side, flex=85 * s, knee=5 + 115 * s, abduct=6 + 10 * s)
        pose.arm(side, flex=85 * s, abduct=6, elbow=10 + 10 * s)
    pose.trunk(_SPINE, bend=15 * s)
    pose.trunk(_NECK, bend=-30 * s)


def _bend_reach(pose, t, ph, amp, rng, cycle_hz):
    down = np.maximum(0.0, np.sin(ph)) ** 1.5 * min(amp, 1.0)
    up = np.maximum(0.0, -np.sin(ph)) ** 1.5 * min(amp, 1.0)
    reaching = ("l", "r", "lr")[rng.integers(3)]
    pose.pelvis_tilt(55 * down)
    for side in "lr":
        pose.leg(side, flex=-6 * down, knee=4 + 18 * down)
        pose.arm(side, flex=85 * down + (150 * up if side in reaching else 0), abduct=8, elbow=10)
    pose.trunk(_SPINE, bend=22 * down - 6 * up)
    pose.trunk(_THORAX, bend=10 * down, side=(8 if reaching == "r" else -8 if reaching == "l" else 0) * up)
    pose.trunk(_NECK, bend=-15 * down - 10 * up)


def _kick(pose, t, ph, amp, rng, cycle_hz):
    kicking = ("l", "r")[rng.integers(2)]
    standing = "r" if kicking == "l" else "l"
    u = (ph / (2 * np.pi)) % 1.0
    kick, windup, recoil = _bump(u, 0.47, 0.06), _bump(u, 0.30, 0.07), _bump(u, 0.60, 0.06)
    pose.leg(kicking, flex=-18 * windup + 75 * amp * kick, knee=5 + 70 * windup + 35 * recoil + 5 * kick)
    pose.leg(standing, knee=8 + 10 * (windup + kick))
    pose.arm(kicking, flex=30 * kick, abduct=20 + 15 * kick, elbow=25)
    pose.arm(standing, flex=-20 * kick, abduct=25 + 20 * kick, elbow=25)
    pose.trunk(_SPINE, bend=-8 * kick)


def _turn(pose, t, ph, amp, rng, cycle_hz):
    for side, phi in (("r", ph), ("l", ph + np.pi)):
        step = np.maximum(0.0, np.sin(phi))
        pose.leg(side, flex=20 * amp * step, knee=5 + 40 * amp * step)
        pose.arm(side, abduct=12, elbow=20)
    sweep = np.deg2rad(rng.uniform(90.0, 180.0))  # heading swings back and forth by +-sweep/2
    frequency = rng.uniform(0.15, 0.25)
    rate = np.pi * frequency * sweep * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
    pose.turn_rate = rate
    pose.trunk(_NECK, twist=20 * rate / (np.pi * frequency * sweep))


def _jump(pose, t, ph, amp, rng, cycle_hz):
    height = 150.0 + 150.0 * min(amp, 1.1) / 1.1 * rng.uniform(0.6, 1.0)  # mm, apex of the flight
    takeoff, flight = 0.40, np.sqrt(8 * height / 9810.0) * cycle_hz  # flight time as a cycle fraction
    u = (ph / (2 * np.pi)) % 1.0
    v = (u - takeoff) % 1.0 / flight
    airborne = v < 1.0
    pose.lift_mm = np.where(airborne, 4 * height * v * (1 - v), 0.0)
    crouch = _bump(u, 0.25, 0.07) + 0.6 * _bump(u, takeoff + flight + 0.06, 0.05)
    reach = _bump(u, takeoff + 0.05, 0.13)
    pose.pelvis_tilt(20 * crouch)
    for side in "lr":
        pose.leg(side, flex=55 * crouch, knee=5 + 85 * crouch, abduct=4)
        pose.arm(side, flex=-35 * _bump(u, 0.25, 0.1) + 90 * reach, abduct=10, elbow=15)
    pose.trunk(_SPINE, bend=15 * crouch)


def _wave(pose, t, ph, amp, rng, cycle_hz):
    side = ("l", "r")[rng.integers(2)]
    other = "r" if side == "l" else "l"
    raised = np.clip(1.6 * (0.5 - 0.5 * np.cos(ph / 3.0)), 0.0, 1.0)  # raise, wave a while, lower
    waving = 20 * amp * np.sin(2 * np.pi * rng.uniform(1.8, 2.6) * t)
    pose.arm(side, abduct=90 * raised, flex=10 * raised, twist=(90 + waving) * raised, elbow=15 + 75 * raised)
    pose.arm(other, abduct=8, elbow=10)
    pose.trunk(_THORAX, side=(-6 if side == "l" else 6) * raised)


def _sit(pose, t, ph, amp, rng, cycle_hz):
    s = np.clip(0.5 - 0.75 * np.cos(ph), 0.0, 1.0)  # down, hold, up, hold
    moving = 4 * s * (1 - s)  # while going down or up
    pose.pelvis_tilt(10 * s + 25 * moving)
    for side in "lr":
        pose.leg(side, flex=88 * s, knee=4 + 88 * s, abduct=6)
        pose.arm(side, flex=30 * s + 20 * moving, abduct=8, elbow=10 + 35 * s)
    pose.trunk(_SPINE, bend=10 * moving)
    pose.trunk(_NECK, bend=-10 * moving)


# action: (function, cycle frequency in Hz before tempo)
_ACTIONS: Dict[str, Tuple[Callable, float]] = {
    "walk": (_walk, 0.9), "arm_swing": (_arm_swing, 0.6), "squat": (_squat, 0.3),
    "bend_reach": (_bend_reach, 0.22), "kick": (_kick, 0.55), "turn": (_turn, 1.0),
    "jump": (_jump, 0.75), "wave": (_wave, 0.6), "sit": (_sit, 0.18),
}
ACTIONS = tuple(_ACTIONS)


def _smooth_wobble(rng, t, num_components=2, amplitude_deg=1.5):
    """(T, 17, 3) degrees: a few slow random sinusoids per joint angle (natural variability)."""
    shape = (num_components, H36M17.num_joints, 3)
    frequency, phase = rng.uniform(0.1, 0.7, shape), rng.uniform(0, 2 * np.pi, shape)
    amplitude = rng.normal(0.0, amplitude_deg, shape)
    return (amplitude * np.sin(2 * np.pi * frequency * t[:, None, None, None] + phase)).sum(axis=1)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` frames along axis 0 (edges padded with the end values)."""
    if window <= 1:
        return values
    padded = np.pad(values, ((window // 2, window - 1 - window // 2), (0, 0)), mode="edge")
    sums = np.cumsum(np.concatenate([np.zeros((1, values.shape[1])), padded]), axis=0)
    return (sums[window:] - sums[:-window]) / window


def _rotate_z(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (T, ..., 3) points about the world z axis by (T,) angles."""
    c, s = np.cos(angle), np.sin(angle)
    c, s = c.reshape(-1, *([1] * (points.ndim - 2))), s.reshape(-1, *([1] * (points.ndim - 2)))
    x, y = points[..., 0], points[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, points[..., 2]], axis=-1)


def generate_sequence(body: Body, action: str, num_frames: int, fps: float = 50.0, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) float64 world joints in mm for ``action``; deterministic from body, action and seed."""
    if not isinstance(body, Body):
        raise TypeError(f"body must be a Body (see make_body), got {type(body).__name__}")
    if action not in _ACTIONS:
        raise ValueError(f"unknown action {action!r}, expected one of {ACTIONS}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    if not (isinstance(fps, (int, float, np.floating)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    seed = check_seed(seed)
    rng = seeded_rng("sequence", body.subject, body.seed, action, seed)
    t = np.arange(num_frames) / float(fps)
    function, frequency = _ACTIONS[action]
    amplitude = body.amplitude * rng.uniform(0.85, 1.1)
    cycle_hz = frequency * body.tempo * rng.uniform(0.88, 1.12)
    phase = 2 * np.pi * cycle_hz * t + rng.uniform(0, 2 * np.pi)

    pose = _Pose(num_frames)
    for side in "lr":  # relaxed stance: arms slightly away from the body, knees soft
        pose.arm(side, abduct=8, elbow=8)
        pose.leg(side, flex=2, knee=3)
    function(pose, t, phase, amplitude, rng, cycle_hz)
    degrees = pose.deg + _smooth_wobble(rng, t)
    angles = np.deg2rad(np.clip(degrees, JOINT_LIMITS_DEG[:, :, 0], JOINT_LIMITS_DEG[:, :, 1]))

    joints_body = forward_kinematics(body, angles, np.zeros((num_frames, 3)))  # root at origin, heading 0
    ankles = joints_body[:, _ANKLES]
    stance = np.argmin(ankles[:, :, 2], axis=1) if pose.stance is None else pose.stance
    stance_ankle = ankles[np.arange(num_frames), stance]
    previous_ankle = ankles[np.maximum(np.arange(num_frames) - 1, 0), stance]
    step_mm = np.linalg.norm((stance_ankle - previous_ankle)[:, :2], axis=1)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(pose.turn_rate / fps + pose.curvature_per_mm * step_mm)

    # root motion that keeps the stance ankle in place horizontally (also in flight: jumps land where
    # they took off), optionally smoothed
    previous_heading = np.concatenate([heading[:1], heading[:-1]])
    delta = _rotate_z(previous_ankle, previous_heading) - _rotate_z(stance_ankle, heading)
    delta[0] = delta[min(1, num_frames - 1)]  # the first frame has no predecessor
    root = np.cumsum(_moving_average(delta, int(round(pose.root_smoothing_s * fps))), axis=0)
    root[:, 2] = body.ankle_height_mm - ankles[:, :, 2].min(axis=1) + pose.lift_mm
    joints = _rotate_z(joints_body, heading) + root[:, None, :]

    # place the whole sequence in the capture area at a random spot
    xy = joints[..., :2].reshape(-1, 2)
    centre = 0.5 * (xy.min(axis=0) + xy.max(axis=0))
    room = max(CAPTURE_RADIUS_MM - np.linalg.norm(xy - centre, axis=1).max(), 0.0)
    angle, radius = rng.uniform(0, 2 * np.pi), room * np.sqrt(rng.uniform())
    joints[..., :2] += radius * np.array([np.cos(angle), np.sin(angle)]) - centre
    return joints
