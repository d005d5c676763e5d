"""Which way a body stands and faces (core/geometry/body_orientation.py), shared by the preview and the demo."""
import numpy as np

from core.geometry.body_orientation import HEAD, L_ANKLE, L_HIP, R_ANKLE, R_HIP, front_azimuth_deg, up_rotation


def pose(left_xy):
    points = np.zeros((17, 3))
    points[L_HIP, :2], points[R_HIP, :2] = np.asarray(left_xy) / 2, -np.asarray(left_xy) / 2
    return points


def test_one_pose_and_a_sequence_of_it_face_the_same_way():
    single = pose([0.3, 1.0])
    assert front_azimuth_deg(single) == front_azimuth_deg(np.stack([single] * 5))
    assert front_azimuth_deg(pose([0.0, 1.0])) == -90.0   # the left hip along +y: facing +x


def test_the_sequence_takes_the_median_hip_direction_and_skips_unknown_frames():
    frames = np.stack([pose([0.0, 1.0])] * 3 + [pose([1.0, 0.0])] + [np.full((17, 3), np.nan)])
    assert front_azimuth_deg(frames) == front_azimuth_deg(pose([0.0, 1.0]))


def test_without_hips_the_azimuth_is_zero():
    assert front_azimuth_deg(np.full((17, 3), np.nan)) == 0.0
    assert front_azimuth_deg(np.zeros((4, 17, 3))) == 0.0


def test_up_rotation_takes_the_ankles_to_head_direction_to_z():
    points = np.zeros((3, 17, 3))
    points[:, HEAD] = [0.0, -1700.0, 0.0]                     # a world whose "up" is -y
    points[:, [L_ANKLE, R_ANKLE]] = [[100.0, 0.0, 0.0], [-100.0, 0.0, 0.0]]
    rotation = up_rotation(points)
    np.testing.assert_allclose(rotation @ [0.0, -1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.array_equal(up_rotation(np.full((2, 17, 3), np.nan)), np.eye(3))
