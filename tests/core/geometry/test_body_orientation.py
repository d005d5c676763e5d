"""Which way a body stands and faces (core/geometry/body_orientation.py), shared by the preview and the demo."""
import numpy as np
import pytest

from core.geometry.body_orientation import front_azimuth_deg, up_rotation
from core.skeleton import H36M17, HAND21, MPI_INF_3DHP17

S = H36M17


def pose(left_xy, skeleton=S):
    points = np.zeros((skeleton.num_joints, 3))
    points[skeleton.index("l_hip"), :2] = np.asarray(left_xy) / 2
    points[skeleton.index("r_hip"), :2] = -np.asarray(left_xy) / 2
    return points


def test_one_pose_and_a_sequence_of_it_face_the_same_way():
    single = pose([0.3, 1.0])
    assert front_azimuth_deg(single, S) == front_azimuth_deg(np.stack([single] * 5), S)
    assert front_azimuth_deg(pose([0.0, 1.0]), S) == -90.0   # the left hip along +y: facing +x
    assert front_azimuth_deg(pose([0.0, 1.0], MPI_INF_3DHP17), MPI_INF_3DHP17) == -90.0   # its hips, its order


def test_the_sequence_takes_the_median_hip_direction_and_skips_unknown_frames():
    frames = np.stack([pose([0.0, 1.0])] * 3 + [pose([1.0, 0.0])] + [np.full((17, 3), np.nan)])
    assert front_azimuth_deg(frames, S) == front_azimuth_deg(pose([0.0, 1.0]), S)


def test_without_hips_the_azimuth_is_zero():
    assert front_azimuth_deg(np.full((17, 3), np.nan), S) == 0.0
    assert front_azimuth_deg(np.zeros((4, 17, 3)), S) == 0.0
    assert front_azimuth_deg(np.ones((21, 3)), HAND21) == 0.0          # a layout without hips


@pytest.mark.parametrize("skeleton", [H36M17, MPI_INF_3DHP17])
def test_up_rotation_takes_the_ankles_to_head_direction_to_z(skeleton):
    points = np.zeros((3, skeleton.num_joints, 3))
    head = skeleton.common_names().index("head")                       # 3DHP's head top
    points[:, head] = [0.0, -1700.0, 0.0]                     # a world whose "up" is -y
    points[:, [skeleton.index("l_ankle"), skeleton.index("r_ankle")]] = [[100.0, 0.0, 0.0], [-100.0, 0.0, 0.0]]
    rotation = up_rotation(points, skeleton)
    np.testing.assert_allclose(rotation @ [0.0, -1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.array_equal(up_rotation(np.full((2, skeleton.num_joints, 3), np.nan), skeleton), np.eye(3))
    assert np.array_equal(up_rotation(np.ones((2, 21, 3)), HAND21), np.eye(3))
