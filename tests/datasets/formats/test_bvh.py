"""Tests of datasets/formats/bvh.py: parsing, forward kinematics, Human3.6M conversion, errors."""

import numpy as np
import pytest

from core.skeleton import H36M17
from datasets.formats.bvh import (BVH_JOINT_MAPS, UNIT_CANDIDATES_MM, BvhFormatError, bvh_joint_positions, bvh_to_h36m,
                                  load_motion_file, read_bvh, resample)
from core.geometry.kinematics import euler_to_matrix, tree_forward_kinematics

CMU_FILES = {"01_01.bvh": ("cmu_cgspeed", "ToeBase"), "131_01.bvh": ("cmu_3dsmax", "Toe")}

TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
  JOINT Leg
  {
    OFFSET 2 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -8 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.1
1 2 3 0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 0 0 90 0 0
0 0 0 0 0 0 90 90 0 0 0 0
"""


def write(tmp_path, text, name="tiny.bvh"):
    path = tmp_path / name
    path.write_text(text)
    return path


def rot(axis, degrees):
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


# ----- parsing and kinematics on a file with known answers -----------------------------------------
def test_tiny_file_structure(tmp_path):
    motion = read_bvh(write(tmp_path, TINY_BVH))
    assert motion.joint_names == ("Hips", "Chest", "Chest_End", "Leg", "Leg_End")
    assert motion.parents == (-1, 0, 1, 0, 3)
    assert motion.end_sites == (False, False, True, False, True)
    assert motion.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    assert motion.channels[1] == ("Zrotation", "Xrotation", "Yrotation")
    assert motion.channel_starts == (0, 6, 9, 9, 12)
    assert motion.frames.shape == (3, 12) and motion.num_frames == 3
    assert motion.fps == pytest.approx(10.0)
    np.testing.assert_array_equal(motion.offsets[3], [2, 0, 0])


def test_tiny_file_forward_kinematics(tmp_path):
    positions = bvh_joint_positions(read_bvh(write(tmp_path, TINY_BVH)))
    expected = np.array([
        # rest pose translated to (1, 2, 3)
        [[1, 2, 3], [1, 12, 3], [1, 17, 3], [3, 2, 3], [3, -6, 3]],
        # root Zrotation 90: y -> -x; the leg's Xrotation 90 turns its -y bone to -z
        [[1, 2, 3], [-9, 2, 3], [-14, 2, 3], [1, 4, 3], [1, 4, -5]],
        # chest Zrotation 90 then Xrotation 90 (declared order): Rz @ Rx @ (0, 5, 0) = (0, 0, 5)
        [[0, 0, 0], [0, 10, 0], [0, 10, 5], [2, 0, 0], [2, -8, 0]],
    ], dtype=float)
    np.testing.assert_allclose(positions, expected, atol=1e-12)


def test_euler_to_matrix_composes_in_declared_order():
    angles = np.array([[30.0, -50.0, 70.0], [10.0, 20.0, -5.0]])
    for axes in ("ZYX", "XYZ", "ZXY"):
        result = euler_to_matrix(np.deg2rad(angles), axes)
        for frame, a in zip(result, angles):
            np.testing.assert_allclose(frame, rot(axes[0], a[0]) @ rot(axes[1], a[1]) @ rot(axes[2], a[2]), atol=1e-12)
    with pytest.raises(ValueError, match="axes"):
        euler_to_matrix(np.zeros(3), "ZY")
    with pytest.raises(ValueError, match="axes"):
        euler_to_matrix(np.zeros(2), "ZW")


def test_tree_forward_kinematics_vectorised_and_checked():
    rng = np.random.default_rng(0)
    parents = (-1, 0, 1, 1)
    offsets = rng.normal(size=(4, 3))
    rotations = euler_to_matrix(rng.uniform(-np.pi, np.pi, (5, 4, 3)), "ZYX")
    roots = rng.normal(size=(5, 3))
    batched = tree_forward_kinematics(parents, offsets, rotations, roots)
    for t in range(5):
        np.testing.assert_allclose(batched[t], tree_forward_kinematics(parents, offsets, rotations[t], roots[t]))
    lengths = np.linalg.norm(batched[:, 1:] - batched[:, [0, 1, 1]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.linalg.norm(offsets[1:], axis=-1), (5, 3)))
    with pytest.raises(ValueError, match="parents"):
        tree_forward_kinematics((-1, 2, 0, 1), offsets, rotations, roots)
    with pytest.raises(ValueError, match="expected offsets"):
        tree_forward_kinematics(parents, offsets[:3], rotations, roots)


def test_resample_is_linear_interpolation():
    times = np.arange(25) / 120.0
    positions = np.stack([3.0 * times, -times, 7.0 + 0 * times], -1)[:, None, :]  # (T, 1, 3)
    out = resample(positions, 120.0, 50.0)
    target_times = np.arange(out.shape[0]) / 50.0
    assert out.shape[0] == 11 and target_times[-1] <= times[-1]
    np.testing.assert_allclose(out[:, 0], np.stack([3.0 * target_times, -target_times, 7.0 + 0 * target_times], -1),
                               atol=1e-12)
    with pytest.raises(ValueError, match="fps"):
        resample(positions, 120.0, 0.0)


# ----- malformed files ---------------------------------------------------------------------------
@pytest.mark.parametrize("edit, line, message", [
    (lambda s: s.replace("HIERARCHY", "HIERARCH"), 1, "HIERARCHY"),
    (lambda s: s.replace("OFFSET 0 10 0", "OFFSET 0 ten 0"), 8, "number"),
    (lambda s: s.replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 3 Zrotation Xrotation Wrotation"),
     9, "unknown channel"),
    (lambda s: s.replace("Frames: 3", "Frames: three"), 26, "Frames"),
    (lambda s: s.replace("Frame Time: 0.1", "Frame Time: -0.1"), 27, "Frame Time"),
    (lambda s: s.replace("1 2 3 90 0 0 0 0 0 90 0 0", "1 2 3 90 0 0 0 0 0 90 0"), 29, "11 values"),
    (lambda s: s.replace("1 2 3 90 0 0 0 0 0 90 0 0", "1 2 3 90 0 0 0 0 0 90 x 0"), 29, "numbers"),
    (lambda s: s.replace("1 2 3 90 0 0 0 0 0 90 0 0", "1 2 3 90 0 0 0 0 0 90 nan 0"), 29, "finite"),
    (lambda s: s[:s.index("0 0 0 0 0 0 90 90")], 29, "truncated"),
    (lambda s: s[:s.index("MOTION")], 24, "MOTION"),
    (lambda s: s.replace("  JOINT Leg", "  JOINT Chest"), 15, "duplicate"),
    (lambda s: s.replace("      OFFSET 0 5 0", "      OFFSET 0 5 0\n      JOINT X"), 13, "expected '}'"),
])
def test_malformed_files_name_file_and_line(tmp_path, edit, line, message):
    path = write(tmp_path, edit(TINY_BVH), "broken.bvh")
    with pytest.raises(BvhFormatError, match=message) as error:
        read_bvh(path)
    assert f"broken.bvh:{line}:" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.bvh"):
        read_bvh(tmp_path / "nothere.bvh")
    with pytest.raises(BvhFormatError, match="empty.bvh"):
        read_bvh(write(tmp_path, "", "empty.bvh"))
    with pytest.raises(ValueError, match="only .bvh"):
        load_motion_file(write(tmp_path, TINY_BVH, "tiny.txt"))


def test_unknown_skeleton_needs_a_joint_map(tmp_path):
    motion = read_bvh(write(tmp_path, TINY_BVH))
    with pytest.raises(ValueError, match="no known BVH skeleton"):
        bvh_to_h36m(motion)
    with pytest.raises(ValueError, match="unknown BVH joint map"):
        bvh_to_h36m(motion, joint_map="nope")
    with pytest.raises(ValueError, match="lacks"):
        bvh_to_h36m(motion, joint_map={"r_hip": "Leg"})


# ----- the real CMU files ----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=sorted(CMU_FILES))
def cmu(request, shared_data):
    path = shared_data(f"cmu_mocap/{request.param}")
    motion = read_bvh(path)
    return request.param, motion, bvh_to_h36m(motion)


def test_cmu_file_parses(cmu):
    name, motion, joints = cmu
    assert motion.fps == pytest.approx(120.0, rel=1e-4)
    assert joints.shape == (motion.num_frames, 17, 3) and joints.dtype == np.float64
    assert np.isfinite(joints).all()
    if name == "131_01.bvh":  # 3ds Max skeleton: arm joints use a different Euler order
        assert motion.channels[motion.index("LeftElbow")] == ("Zrotation", "Xrotation", "Yrotation")


def test_cmu_scale_and_proportions_are_human(cmu):
    name, motion, joints = cmu
    mapping = BVH_JOINT_MAPS[CMU_FILES[name][0]]
    assert all(bvh.startswith("Left") for h36m, bvh in mapping.items() if h36m.startswith("l_"))
    assert all(bvh.startswith("Right") for h36m, bvh in mapping.items() if h36m.startswith("r_"))
    np.testing.assert_allclose(joints, bvh_to_h36m(motion, scale_mm_per_unit=UNIT_CANDIDATES_MM["cmu"]))
    # head top of an upright adult (CMU's fitted skeletons are on the short side: ~1.45-1.55 m)
    assert 1350 < np.median(joints[:, H36M17.joint_names.index("head"), 2]) < 1950
    lengths = np.linalg.norm(joints[:, [c for _, c in H36M17.bones]] - joints[:, [p for p, _ in H36M17.bones]], axis=-1)
    bone = {f"{H36M17.joint_names[p]}-{H36M17.joint_names[c]}": lengths[:, i] for i, (p, c) in enumerate(H36M17.bones)}
    for limb in ("r_hip-r_knee", "r_knee-r_ankle", "l_hip-l_knee", "l_knee-l_ankle"):
        assert 330 < bone[limb].mean() < 520 and bone[limb].std() < 1e-6  # rigid bones stay rigid
    for limb in ("l_shoulder-l_elbow", "r_shoulder-r_elbow"):
        assert 200 < bone[limb].mean() < 360
    assert 100 < bone["pelvis-l_hip"].mean() * 2 < 300  # hip width


def test_cmu_feet_on_the_ground(cmu):
    _, _, joints = cmu
    assert joints[..., 2].min() >= 0.0
    lowest_ankle = joints[:, [3, 6], 2].min(axis=1)
    assert 20 < np.median(lowest_ankle) < 200  # ankle joint height above the floor
    assert np.median(joints[:, 0, 2]) > 700  # pelvis up


def test_cmu_left_is_left(cmu):
    """The person's left (from the toes' facing direction and z up) holds the l_* joints."""
    name, motion, joints = cmu
    mapping, toe = BVH_JOINT_MAPS[CMU_FILES[name][0]], CMU_FILES[name][1]
    positions = bvh_joint_positions(motion)
    positions = np.stack([positions[..., 0], -positions[..., 2], positions[..., 1]], -1)  # same axes as joints
    forward = sum(positions[:, motion.index(f"{side}{toe}")] - positions[:, motion.index(mapping[f"{s}_ankle"])]
                  for side, s in (("Left", "l"), ("Right", "r")))
    left = np.cross([0.0, 0.0, 1.0], forward)
    for l_joint, r_joint in (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder")):
        across = joints[:, H36M17.joint_names.index(l_joint)] - joints[:, H36M17.joint_names.index(r_joint)]
        assert (np.einsum("ti,ti->t", across, left) > 0).mean() > 0.95


def test_load_motion_file_resamples_to_50_fps(shared_data):
    path = shared_data("cmu_mocap/131_01.bvh")
    motion = read_bvh(path)
    full = bvh_to_h36m(motion)
    joints = load_motion_file(path, target_fps=50)
    duration = (motion.num_frames - 1) / motion.fps
    assert joints.shape == (int(np.floor(duration * 50 + 1e-6)) + 1, 17, 3)
    # every 5th output frame falls on every 12th input frame (up to the file's rounded frame time)
    np.testing.assert_allclose(joints[::5], full[::12][:len(joints[::5])], atol=2.0)
