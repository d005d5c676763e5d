"""The reader of Panoptic's hdPose3d_stage1_coco19 files, on the fixtures of ``panoptic_fixtures`` (synthetic people),
and malformed files: each ends in one PanopticFormatError line naming the file and the key."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from core.skeleton import PANOPTIC19
from datasets.formats.calibration import read_panoptic_cameras
from datasets.formats.panoptic import MIN_CONFIDENCE, PanopticFormatError, body_tracks, read_body_scene, \
    read_panoptic_bodies, to_z_up
from tests.datasets.formats.test_fuzz_readers import FUZZ, json_documents, mutations
from tests.datasets.panoptic_fixtures import HD_CAMERAS, person_cm, write_sequence

POSES = "hdPose3d_stage1_coco19"
VALID = json.dumps({"version": 0.7, "univTime": 1.0, "fpsType": "hd_29_97",
                    "bodies": [{"id": 0, "joints19": person_cm(0, 1).ravel().round(3).tolist()},
                               {"id": 1, "joints19": person_cm(1, 1).ravel().round(3).tolist()}]}).encode()


def test_bodies_in_millimetres_with_the_low_confidence_joints_missing(tmp_path):
    folder = write_sequence(tmp_path, "seq", {0: range(5), 1: [1, 2]}) / POSES
    (folder / "notes.txt").write_text("not an annotation")                   # other files are not read
    bodies = read_panoptic_bodies(folder)
    assert bodies.frames.tolist() == [100, 101, 101, 102, 102, 103, 104]
    assert bodies.body_ids.tolist() == [0, 0, 1, 0, 1, 0, 0]
    expected = person_cm(1, 2)
    np.testing.assert_allclose(bodies.points_mm[4], expected[:, :3] * 10, atol=1e-3)
    np.testing.assert_allclose(bodies.confidence[4], expected[:, 3], atol=1e-4)
    missing = np.isnan(bodies.keypoints_3d).all(-1)
    assert np.argwhere(missing).tolist() == [[3, PANOPTIC19.index("l_ear")], [5, PANOPTIC19.index("r_eye")]]
    assert not np.isnan(bodies.keypoints_3d).any(-1)[~missing].any()
    assert np.isfinite(bodies.points_mm).all() and MIN_CONFIDENCE == 0.1
    stricter = read_panoptic_bodies(folder, min_confidence=0.95)
    assert np.isnan(stricter.keypoints_3d).all()


def test_tracks_follow_one_body_over_consecutive_frames(tmp_path):
    folder = write_sequence(tmp_path, "seq", {3: [0, 1, 3, 4], 1: [1, 2]}) / POSES
    tracks = body_tracks(read_panoptic_bodies(folder))
    assert [(t.body_ids.tolist(), t.frames.tolist()) for t in tracks] == \
        [([1, 1], [101, 102]), ([3, 3], [100, 101]), ([3, 3], [103, 104])]
    assert all(t.points_mm.shape == (2, 19, 3) for t in tracks)


def test_the_z_up_world_keeps_every_projection_and_puts_the_head_above_the_feet(tmp_path):
    folder = write_sequence(tmp_path, "seq", {0: [0]})
    cameras, _ = read_panoptic_cameras(folder / "calibration_seq.json", HD_CAMERAS)
    points = read_panoptic_bodies(folder / POSES).points_mm[0]
    turned_points, turned = to_z_up(points, cameras)
    before = cameras.project(torch.from_numpy(points).double().expand(4, -1, -1))
    after = turned.project(torch.from_numpy(turned_points).double().expand(4, -1, -1))
    assert torch.allclose(before, after, atol=1e-6)
    assert torch.allclose(torch.linalg.det(turned.R), torch.ones(4, dtype=torch.float64))
    assert turned_points[PANOPTIC19.index("nose"), 2] - turned_points[PANOPTIC19.index("l_ankle"), 2] > 1500


def body(**changes):
    record = {"id": 0, "joints19": person_cm(0, 0).ravel().tolist()}
    record.update(changes)
    return [{key: value for key, value in record.items() if value is not None}]


@pytest.mark.parametrize("content, key", [
    (b"\xff\xfe{", "not valid JSON"),
    (VALID[:-40], "not valid JSON"),
    (json.dumps({"people": []}).encode(), "'bodies'"),
    (json.dumps({"bodies": [[1, 2]]}).encode(), "bodies[0]"),
    (json.dumps({"bodies": body(joints19=None)}).encode(), "bodies[0]: no key 'joints19'"),
    (json.dumps({"bodies": body(joints19=None, joints15=[0.0] * 60)}).encode(), "mpi15"),
    (json.dumps({"bodies": body(id="0")}).encode(), "bodies[0].id"),
    (json.dumps({"bodies": body(id=None)}).encode(), "bodies[0].id"),
    (json.dumps({"bodies": body(joints19=[0.0] * 75)}).encode(), "bodies[0].joints19: expected 76 numbers"),
    (json.dumps({"bodies": body(joints19=[[0.0] * 4] * 19)}).encode(), "bodies[0].joints19: expected 76"),
    (json.dumps({"bodies": body(joints19=["x"] * 76)}).encode(), "bodies[0].joints19"),
    (json.dumps({"bodies": body(joints19=[float("nan")] * 76)}).encode(), "bodies[0].joints19 has NaN"),
    (json.dumps({"bodies": body() + body()}).encode(), "repeats a body id"),
])
def test_malformed_files_are_named_with_their_key(tmp_path, content, key):
    path = tmp_path / "body3DScene_00000001.json"
    path.write_bytes(content)
    with pytest.raises(PanopticFormatError) as error:
        read_panoptic_bodies(tmp_path)
    message = str(error.value)
    assert str(path) in message and key in message and "\n" not in message


def test_folders_without_annotations_are_named(tmp_path):
    with pytest.raises(PanopticFormatError, match="not a folder"):
        read_panoptic_bodies(tmp_path / "absent")
    with pytest.raises(PanopticFormatError, match="no body3DScene"):
        read_panoptic_bodies(tmp_path)


def test_a_frame_without_bodies_has_no_record(tmp_path):
    (tmp_path / "body3DScene_00000007.json").write_text(json.dumps({"bodies": []}))
    bodies = read_panoptic_bodies(tmp_path)
    assert bodies.frames.shape == (0,) and bodies.keypoints_3d.shape == (0, 19, 3) and body_tracks(bodies) == []


@FUZZ
@given(data=st.one_of(mutations(VALID), json_documents(VALID)))
def test_fuzzed_files_are_read_or_refused_in_one_line(tmp_path, data):
    path = tmp_path / "body3DScene_00000001.json"
    path.write_bytes(data)
    try:
        ids, joints = read_body_scene(path)
    except PanopticFormatError as err:
        assert str(path) in str(err) and "\n" not in str(err)
    else:
        assert joints.shape == (len(ids), 19, 4) and np.isfinite(joints).all()


def test_the_skeleton_has_the_toolbox_body_bones():
    toolbox = [("neck", "nose"), ("neck", "l_shoulder"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
               ("neck", "body_centre"), ("body_centre", "l_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
               ("body_centre", "r_hip"), ("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("neck", "r_shoulder"),
               ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist")]       # the Panoptic toolbox's 14 body edges, by name
    bones = {frozenset(PANOPTIC19.joint_names[j] for j in bone) for bone in PANOPTIC19.bones}
    assert {frozenset(edge) for edge in toolbox} <= bones and len(bones) == 18
