"""Tests of datasets/synthetic/bodies.py and motion.py: bodies, forward kinematics and procedural actions."""
import numpy as np
import pytest

from core.skeleton import H36M17
from datasets.synthetic.bodies import (BODY_PART_NAMES, LANDMARK_NAMES, STATURE_RANGE_MM, SUBJECTS, SUBJECTS_TEST,
                                       SUBJECTS_TRAIN, Body, forward_kinematics, make_body)
from datasets.synthetic.motion import ACTIONS, CAPTURE_HEIGHT_MM, CAPTURE_RADIUS_MM, JOINT_LIMITS_DEG, generate_sequence

J = {name: i for i, name in enumerate(H36M17.joint_names)}
FPS = 50.0


def bone_lengths(joints):
    return np.linalg.norm(joints[..., [c for _, c in H36M17.bones], :] - joints[..., [p for p, _ in H36M17.bones], :], axis=-1)


def facing(joints):
    """(T, 3) unit horizontal facing direction from the hips: forward = left x up."""
    left = joints[:, J["l_hip"]] - joints[:, J["r_hip"]]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    forward[:, 2] = 0.0
    return forward / np.linalg.norm(forward, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sequences():
    """One 4 s sequence per (action, subject) for two subjects."""
    bodies = [make_body("S1", 0), make_body("S9", 3)]
    return {(action, body.subject): (body, generate_sequence(body, action, 200, FPS, seed=7))
            for action in ACTIONS for body in bodies}


# ----- subjects and bodies -----------------------------------------------------------------------
def test_subject_split_and_actions():
    assert set(SUBJECTS_TRAIN).isdisjoint(SUBJECTS_TEST) and SUBJECTS == SUBJECTS_TRAIN + SUBJECTS_TEST
    assert len(SUBJECTS) == 7
    assert {"walk", "arm_swing", "squat", "bend_reach", "kick", "turn", "jump"} <= set(ACTIONS)


def test_make_body_is_deterministic_and_varied():
    a, b = make_body("S1", 0), make_body("S1", 0)
    assert isinstance(a, Body) and a.subject == "S1" and a.seed == 0
    np.testing.assert_array_equal(a.offsets_mm, b.offsets_mm)
    assert a.parts == b.parts and a.palette == b.palette and a.height_mm == b.height_mm
    others = [make_body("S5", 0), make_body("S1", 1)]
    for other in others:
        assert not np.allclose(other.offsets_mm, a.offsets_mm)
    heights = np.array([make_body(s, k).height_mm for s in SUBJECTS for k in range(6)])
    assert STATURE_RANGE_MM[0] <= heights.min() and heights.max() <= STATURE_RANGE_MM[1]
    assert heights.std() > 60  # really varied, not one template
    with pytest.raises(ValueError, match="subject"):
        make_body("", 0)
    with pytest.raises(ValueError, match="seed"):
        make_body("S1", -1)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_body_proportions_are_adult_and_symmetric(subject):
    body = make_body(subject, 0)
    lengths = dict(zip((f"{H36M17.joint_names[p]}-{H36M17.joint_names[c]}" for p, c in H36M17.bones), body.bone_lengths_mm))
    h = body.height_mm
    for side in "lr":
        assert 0.22 < lengths[f"{side}_hip-{side}_knee"] / h < 0.29
        assert 0.21 < lengths[f"{side}_knee-{side}_ankle"] / h < 0.28
        assert 0.14 < lengths[f"{side}_shoulder-{side}_elbow"] / h < 0.19
        assert 0.12 < lengths[f"{side}_elbow-{side}_wrist"] / h < 0.17
    for left, right in ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)):
        np.testing.assert_allclose(body.offsets_mm[left] * [1, -1, 1], body.offsets_mm[right])
    rest = body.rest_pose_mm
    assert rest[[3, 6], 2] == pytest.approx([body.ankle_height_mm] * 2)
    assert rest[J["head"], 2] + body.parts[BODY_PART_NAMES.index("head")].radius_mm == pytest.approx(h)
    assert 0.5 < rest[J["pelvis"], 2] / h < 0.6
    assert rest[J["l_hip"], 1] > 0 > rest[J["r_hip"], 1]  # body frame: y to the left


def test_body_parts_for_the_renderer():
    body = make_body("S7", 2)
    assert len(body.parts) == len(BODY_PART_NAMES)
    for name, part in zip(BODY_PART_NAMES, body.parts):
        joint_a, joint_b, radius, colour = part  # plain 4-tuples for the renderer
        assert 0 <= joint_a < H36M17.num_joints + len(LANDMARK_NAMES) and 0 <= joint_b < H36M17.num_joints + len(LANDMARK_NAMES)
        assert 15 < radius < 200, name
        assert len(colour) == 3 and all(0.0 <= c <= 1.0 for c in colour)
    pairs = {(p.joint_a, p.joint_b) for p in body.parts}
    assert set(H36M17.bones) <= pairs | {(b, a) for a, b in pairs} | {(8, 11), (8, 14), (0, 1), (0, 4)}  # limbs drawn
    assert (1, 14) in pairs and (4, 11) in pairs  # hip-to-shoulder torso fill
    assert any(a == b for a, b in pairs)  # spheres
    parts = dict(zip(BODY_PART_NAMES, body.parts))
    assert parts["r_thigh"].colour == body.palette["trousers"] and parts["chest"].colour == body.palette["shirt"]
    assert parts["head"].colour == body.palette["skin"]
    assert parts["hair"].colour == body.palette["hair"] and parts["r_foot"].colour == body.palette["shoes"]


def test_surface_points_tell_front_from_back():
    body = make_body("S5", 0)
    rest = body.rest_pose_mm                                        # facing +x, y to the left
    points = body.surface_points(rest)
    assert points.shape == (H36M17.num_joints + len(LANDMARK_NAMES), 3) and np.array_equal(points[:H36M17.num_joints], rest)
    at = dict(zip(LANDMARK_NAMES, points[H36M17.num_joints:]))
    head = rest[J["head"]]
    assert at["nose"][0] > head[0] + 50 and at["hair"][0] < head[0] - 20
    for side in "rl":
        ankle = rest[J[f"{side}_ankle"]]
        assert at[f"{side}_toes"][0] - ankle[0] == pytest.approx(0.1 * body.height_mm)
        assert 0 < at[f"{side}_toes"][2] < ankle[2]
    # a body turned by 90 degrees about z faces +y: its landmarks turn with it
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(body.surface_points(rest @ turn.T), points @ turn.T, atol=1e-9)


# ----- forward kinematics --------------------------------------------------------------------------
def test_forward_kinematics_rest_and_rigidity():
    body = make_body("S6", 0)
    rng = np.random.default_rng(0)
    angles = rng.uniform(-1.0, 1.0, (10, H36M17.num_joints, 3))
    roots = rng.normal(0, 500, (10, 3))
    joints = forward_kinematics(body, angles, roots)
    assert joints.shape == (10, H36M17.num_joints, 3)
    np.testing.assert_allclose(joints[:, 0], roots)
    np.testing.assert_allclose(bone_lengths(joints), np.broadcast_to(body.bone_lengths_mm, (10, 16)), rtol=1e-12)
    for t in (0, 7):  # vectorised over frames == frame by frame
        np.testing.assert_allclose(joints[t], forward_kinematics(body, angles[t:t + 1], roots[t:t + 1])[0])
    rest = forward_kinematics(body, np.zeros((1, H36M17.num_joints, 3)), np.zeros((1, 3)))[0]
    np.testing.assert_allclose(rest[1:] - rest[list(np.array([0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]))],
                               body.offsets_mm[1:])


def test_forward_kinematics_anatomical_signs():
    body = make_body("S8", 0)

    def pose(**set_degrees):
        angles = np.zeros((1, H36M17.num_joints, 3))
        for key, value in set_degrees.items():
            joint, axis = key.rsplit("_", 1)
            angles[0, J[joint], "xyz".index(axis)] = np.deg2rad(value)
        return forward_kinematics(body, angles, np.zeros((1, 3)))[0]

    rest = pose()
    assert pose(r_hip_y=-90)[J["r_knee"], 0] > rest[J["r_knee"], 0] + 300  # hip flexion: knee forward (+x)
    assert pose(r_knee_y=90)[J["r_ankle"], 0] < rest[J["r_ankle"], 0] - 300  # knee flexion: foot back
    assert pose(l_elbow_y=-90)[J["l_wrist"], 0] > rest[J["l_wrist"], 0] + 200  # elbow flexion: hand forward
    assert pose(l_shoulder_x=90)[J["l_wrist"], 1] > rest[J["l_wrist"], 1] + 300  # left abduction: outwards (+y)
    assert pose(r_shoulder_x=-90)[J["r_wrist"], 1] < rest[J["r_wrist"], 1] - 300  # right abduction: outwards (-y)
    assert pose(spine_y=60)[J["head"], 0] > rest[J["head"], 0] + 300  # trunk flexion: head forward
    # external rotation of the abducted right arm turns the flexed elbow's forearm upwards (waving)
    raised = pose(r_shoulder_x=-90, r_shoulder_z=-90, r_elbow_y=-90)
    assert raised[J["r_wrist"], 2] > raised[J["r_elbow"], 2] + 200
    turned = forward_kinematics(body, np.zeros((1, H36M17.num_joints, 3)), np.zeros((1, 3)), heading_rad=np.array([np.pi / 2]))
    np.testing.assert_allclose(facing(turned)[0], [0.0, 1.0, 0.0], atol=1e-12)  # heading pi/2: facing +y


def test_forward_kinematics_checks_inputs():
    body = make_body("S1", 0)
    with pytest.raises(ValueError, match="joint_angles_rad"):
        forward_kinematics(body, np.zeros((2, 16, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="root_positions_mm"):
        forward_kinematics(body, np.zeros((2, H36M17.num_joints, 3)), np.zeros((3, 3)))
    angles = np.zeros((2, H36M17.num_joints, 3))
    angles[1, 5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        forward_kinematics(body, angles, np.zeros((2, 3)))


# ----- sequences --------------------------------------------------------------------------------------
def test_sequences_are_deterministic_and_seeded():
    body = make_body("S5", 0)
    a = generate_sequence(body, "walk", 60, seed=3)
    assert a.shape == (60, H36M17.num_joints, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, generate_sequence(make_body("S5", 0), "walk", 60, seed=3))
    assert not np.allclose(a, generate_sequence(body, "walk", 60, seed=4))
    assert not np.allclose(a, generate_sequence(make_body("S6", 0), "walk", 60, seed=3))
    assert generate_sequence(body, "jump", 1).shape == (1, H36M17.num_joints, 3)


def test_sequences_check_arguments():
    body = make_body("S5", 0)
    with pytest.raises(ValueError, match="unknown action"):
        generate_sequence(body, "dance", 10)
    with pytest.raises(ValueError, match="num_frames"):
        generate_sequence(body, "walk", 0)
    with pytest.raises(ValueError, match="fps"):
        generate_sequence(body, "walk", 10, fps=0.0)
    with pytest.raises(ValueError, match="seed"):
        generate_sequence(body, "walk", 10, seed=-2)
    with pytest.raises(TypeError, match="Body"):
        generate_sequence("S5", "walk", 10)


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_is_a_valid_moving_body_in_the_capture_volume(sequences, action):
    for subject in ("S1", "S9"):
        body, joints = sequences[(action, subject)]
        assert np.isfinite(joints).all()
        np.testing.assert_allclose(bone_lengths(joints), np.broadcast_to(body.bone_lengths_mm, (len(joints), 16)),
                                   rtol=1e-9)
        assert np.linalg.norm(joints[..., :2], axis=-1).max() <= CAPTURE_RADIUS_MM + 1e-6
        assert joints[..., 2].max() <= CAPTURE_HEIGHT_MM
        assert joints[..., 2].min() >= body.ankle_height_mm - 1e-6  # nothing goes below the ankles
        lowest_ankle = joints[:, [3, 6], 2].min(axis=1)
        if action != "jump":  # a foot is always on the ground
            np.testing.assert_allclose(lowest_ankle, body.ankle_height_mm)
        assert np.ptp(joints - joints[:, :1], axis=0).max() > 150  # the pose changes, not just drifts
        # smooth: no joint accelerates beyond 200 m/s^2 (a hard landing), i.e. no jumps between frames
        acceleration = np.linalg.norm(np.diff(joints, n=2, axis=0), axis=-1).max() * FPS ** 2
        assert acceleration < 200e3, f"{action}: a joint accelerates at {acceleration / 1e3:.0f} m/s^2"


def test_joint_angles_respect_limits():
    assert JOINT_LIMITS_DEG.shape == (H36M17.num_joints, 3, 2)
    assert (JOINT_LIMITS_DEG[..., 0] <= JOINT_LIMITS_DEG[..., 1]).all()
    # knees and elbows never hyper-extend: the hip-knee-ankle and shoulder-elbow-wrist angles stay <= 180
    body = make_body("S11", 0)
    for action in ("walk", "kick", "squat"):
        joints = generate_sequence(body, action, 150, seed=1)
        thigh, shin = joints[:, J["r_knee"]] - joints[:, J["r_hip"]], joints[:, J["r_ankle"]] - joints[:, J["r_knee"]]
        forward = facing(joints)
        # knee flexion moves the ankle backwards relative to the thigh's line: never forwards by much
        bend = np.einsum("ti,ti->t", np.cross(thigh, shin), np.cross([0.0, 0.0, 1.0], forward))
        assert (bend > -0.05 * np.linalg.norm(thigh, axis=1) * np.linalg.norm(shin, axis=1)).all()


def test_walk_moves_forward_on_a_curve(sequences):
    for subject in ("S1", "S9"):
        body, joints = sequences[("walk", subject)]
        velocity = np.diff(joints[:, 0], axis=0) * FPS
        forward = facing(joints)[1:]
        forward_speed = np.einsum("ti,ti->t", velocity, forward)
        assert 700 < forward_speed.mean() < 1800  # ~1 m/s along the heading
        assert forward_speed.min() > 0  # never backwards
        heading = np.unwrap(np.arctan2(forward[:, 1], forward[:, 0]))
        assert abs(heading[-1] - heading[0]) > 1.0  # it walks a circle within the capture area
        # the stance (lower) ankle barely slides
        ankles = joints[:, [3, 6]]
        stance = np.argmin(ankles[1:, :, 2], axis=1)
        slide = np.linalg.norm(np.diff(ankles, axis=0)[np.arange(len(stance)), stance, :2], axis=1)
        assert np.median(slide) * FPS < 100


def test_action_specific_motion(sequences):
    body, squat = sequences[("squat", "S1")]
    standing = body.rest_pose_mm[J["pelvis"], 2]
    assert squat[:, 0, 2].min() < 0.7 * standing and squat[:, 0, 2].max() > 0.95 * standing
    body, jump = sequences[("jump", "S1")]
    assert jump[:, [3, 6], 2].min(axis=1).max() > body.ankle_height_mm + 100  # airborne
    assert np.isclose(jump[:, [3, 6], 2].min(axis=1), body.ankle_height_mm).mean() > 0.3  # and landed
    _, turn = sequences[("turn", "S9")]
    heading = np.unwrap(np.arctan2(facing(turn)[:, 1], facing(turn)[:, 0]))
    assert np.ptp(heading) > np.deg2rad(60)
    assert np.ptp(turn[:, 0, :2], axis=0).max() < 500  # turning on the spot
    _, bend = sequences[("bend_reach", "S1")]
    trunk = bend[:, J["thorax"]] - bend[:, J["pelvis"]]
    assert (trunk[:, 2] / np.linalg.norm(trunk, axis=1)).min() < np.cos(np.deg2rad(50))  # bends over
    assert bend[:, [13, 16], 2].max() > bend[:, J["head"], 2].max()  # and reaches up
    _, kick = sequences[("kick", "S9")]
    assert (kick[:, [3, 6], 2].max(axis=0) > 400).any()  # a foot rises high
    _, wave = sequences[("wave", "S1")]
    assert wave[:, [13, 16], 2].max() > wave[:, J["head"], 2].min() - 100  # a hand up by the head
    body, sit = sequences[("sit", "S9")]
    assert sit[:, 0, 2].min() < 0.65 * body.rest_pose_mm[0, 2]


def test_positions_and_headings_vary_across_sequences():
    body = make_body("S7", 0)
    starts = np.array([generate_sequence(body, "arm_swing", 2, seed=s)[0] for s in range(12)])
    assert np.ptp(starts[:, 0, :2], axis=0).min() > 500  # spread over the capture area
    directions = facing(starts)
    assert np.ptp(np.arctan2(directions[:, 1], directions[:, 0])) > np.pi  # and facing all ways
