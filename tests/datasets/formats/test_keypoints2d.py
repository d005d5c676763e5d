import json

import numpy as np
import pytest

from core.skeleton import H36M17
from datasets.formats.keypoints2d import (KEYPOINT_NAMES, KeypointFormatError, approximated_joints, layout_of,
                                          read_coco_keypoints, read_openpose_folder, to_h36m)

J = {name: i for i, name in enumerate(H36M17.joint_names)}


def person(layout, seed=0):
    """Random keypoints of a layout (x, y, confidence), each keypoint with its own known position."""
    rng = np.random.default_rng(seed)
    count = len(KEYPOINT_NAMES[layout])
    return np.concatenate([rng.uniform(0, 1000, (count, 2)), rng.uniform(0.3, 1.0, (count, 1))], -1)


def write_openpose(folder, frames, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for t, people in enumerate(frames):
        data = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p.ravel().tolist(),
                                            "face_keypoints_2d": []} for p in people]}
        # unpadded numbers: as text, 10 would sort before 8
        (folder / f"cam_{start + t}_keypoints.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("layout", ["body25", "body25b", "coco18", "coco17"])
def test_direct_joints_are_copied_and_made_joints_average_their_sources(layout):
    kp = person(layout)
    names = KEYPOINT_NAMES[layout]
    at = {n: kp[i, :2] for i, n in enumerate(names)}
    conf = {n: kp[i, 2] for i, n in enumerate(names)}
    points, confidence = to_h36m(kp, layout)
    for joint in ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "l_shoulder", "l_elbow", "l_wrist",
                  "r_shoulder", "r_elbow", "r_wrist"):
        assert np.array_equal(points[J[joint]], at[joint]) and confidence[J[joint]] == conf[joint], joint
    pelvis = at["mid_hip"] if layout == "body25" else (at["l_hip"] + at["r_hip"]) / 2
    assert np.allclose(points[J["pelvis"]], pelvis)
    assert np.allclose(points[J["spine"]], (at["l_hip"] + at["r_hip"] + at["l_shoulder"] + at["r_shoulder"]) / 4)
    assert confidence[J["spine"]] == min(conf[n] for n in ("l_hip", "r_hip", "l_shoulder", "r_shoulder"))
    thorax = at["openpose_neck"] if layout in ("body25", "coco18") else (at["l_shoulder"] + at["r_shoulder"]) / 2
    assert np.allclose(points[J["thorax"]], thorax)
    assert np.array_equal(points[J["neck"]], at["nose"])
    head = at["head_top"] if layout == "body25b" else (at["l_ear"] + at["r_ear"]) / 2
    assert np.allclose(points[J["head"]], head)
    assert set(approximated_joints(layout)) == {"spine", "thorax", "neck", "head"} | (
        set() if layout == "body25" else {"pelvis"})


def test_missing_keypoints_make_nan_joints():
    kp = person("coco17")
    kp[KEYPOINT_NAMES["coco17"].index("l_hip"), 2] = 0.0
    points, confidence = to_h36m(kp, "coco17")
    for joint in ("l_hip", "pelvis", "spine"):
        assert np.isnan(points[J[joint]]).all() and confidence[J[joint]] == 0, joint
    assert np.isfinite(points[J["r_hip"]]).all()


def test_openpose_folder_reader_orders_frames_and_pads_people(tmp_path):
    frames = [[person("body25b", 1)], [person("body25b", 2), person("body25b", 3)], []]
    folder = write_openpose(tmp_path / "cam1", frames, start=8)  # frames 8, 9, 10
    keypoints, layout = read_openpose_folder(folder, "body25b")
    assert layout == "body25b" and keypoints.shape == (3, 2, 25, 3)
    assert np.allclose(keypoints[0, 0], frames[0][0]) and np.isnan(keypoints[0, 1]).all()
    assert np.allclose(keypoints[1, 1], frames[1][1]) and np.isnan(keypoints[2]).all()


def test_layouts_are_recognised_or_must_be_named(tmp_path):
    assert layout_of(18) == "coco18" and layout_of(17) == "coco17" and layout_of(17, "h36m") == "h36m"
    with pytest.raises(KeypointFormatError, match="fit the layouts body25 and body25b; name the layout"):
        read_openpose_folder(write_openpose(tmp_path / "a", [[person("body25")]]))
    with pytest.raises(KeypointFormatError, match="20 keypoints per person is not a known layout"):
        read_openpose_folder(write_openpose(tmp_path / "b", [[np.ones((20, 3))]]))
    with pytest.raises(KeypointFormatError, match="but layout 'coco18' has 18"):
        read_openpose_folder(write_openpose(tmp_path / "c", [[person("body25")]]), "coco18")
    with pytest.raises(KeypointFormatError, match="unknown keypoint layout 'mpii'"):
        to_h36m(person("coco17"), "mpii")


def test_bad_openpose_files_are_named(tmp_path):
    folder = write_openpose(tmp_path / "cam", [[person("coco18")]])
    (folder / "cam_1_keypoints.json").write_text("{not json")
    with pytest.raises(KeypointFormatError, match="cam_1_keypoints.json' is not valid JSON"):
        read_openpose_folder(folder)
    (folder / "cam_1_keypoints.json").write_text(json.dumps({"people": [{"pose": []}]}))
    with pytest.raises(KeypointFormatError, match="expected OpenPose output"):
        read_openpose_folder(folder)
    (folder / "cam_1_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": None}]}))
    with pytest.raises(KeypointFormatError, match=r"triplets per person, got people of \[None\] values"):
        read_openpose_folder(folder)                                 # found by the fuzz test
    with pytest.raises(KeypointFormatError, match="does not exist"):
        read_openpose_folder(tmp_path / "nowhere")


def test_coco_dataset_and_results_files(tmp_path):
    a, b = person("coco17", 4), person("coco17", 5)
    visibility = np.where(np.arange(17) % 5 == 0, 0, 2)
    dataset = {"images": [{"id": 7, "file_name": "frame_002.jpg"}, {"id": 3, "file_name": "frame_001.jpg"}],
               "annotations": [{"image_id": 7, "keypoints": np.c_[a[:, :2], visibility].ravel().tolist()},
                               {"image_id": 3, "keypoints": np.c_[b[:, :2], visibility].ravel().tolist()}]}
    (tmp_path / "gt.json").write_text(json.dumps(dataset))
    keypoints, layout = read_coco_keypoints(tmp_path / "gt.json")
    assert layout == "coco17" and keypoints.shape == (2, 1, 17, 3)
    assert np.allclose(keypoints[0, 0, :, :2], b[:, :2])          # frame_001 first
    assert np.array_equal(keypoints[1, 0, :, 2], (visibility > 0).astype(float))
    results = [{"image_id": 1, "keypoints": a.ravel().tolist(), "score": 0.9}]
    (tmp_path / "res.json").write_text(json.dumps(results))
    keypoints, _ = read_coco_keypoints(tmp_path / "res.json")
    assert np.allclose(keypoints[0, 0], a)
    results = [{"image_id": i, "keypoints": person("coco17", i).ravel().tolist(), "score": 0.9} for i in (10, 2, 1)]
    (tmp_path / "gap.json").write_text(json.dumps(results))
    with pytest.raises(KeypointFormatError, match="skips image ids between 1 and 10"):
        read_coco_keypoints(tmp_path / "gap.json")
    results = [{"image_id": i, "keypoints": person("coco17", i).ravel().tolist()} for i in (10, 9, 8)]
    (tmp_path / "numeric.json").write_text(json.dumps(results))
    keypoints, _ = read_coco_keypoints(tmp_path / "numeric.json")
    assert np.allclose(keypoints[:, 0], [person("coco17", i) for i in (8, 9, 10)])  # ids by value
    (tmp_path / "bad.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(KeypointFormatError, match="expected a COCO dataset"):
        read_coco_keypoints(tmp_path / "bad.json")


def test_openpose_files_of_the_wrong_structure_are_named_with_what_was_expected(tmp_path):
    folder = write_openpose(tmp_path / "mixed", [[person("body25")], [person("body25")], [person("coco18")]])
    with pytest.raises(KeypointFormatError, match=r"OpenPose folder '.*mixed': files disagree on the keypoints per "
                                                  r"person \(25 in 'cam_0_keypoints.json', 18 in "
                                                  r"'cam_2_keypoints.json'\); one layout per camera expected"):
        read_openpose_folder(folder, "body25")
    nested = write_openpose(tmp_path / "nested", [[person("coco18")]])
    (nested / "cam_1_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d":
                                                                         person("coco18").tolist()}]}))
    with pytest.raises(KeypointFormatError, match=r"cam_1_keypoints.json': expected a flat list \(x1, y1, "
                                                  r"confidence1, x2, ...\) per person, got nested lists of shape "
                                                  r"\(18, 3\)"):
        read_openpose_folder(nested)
    xy_only = write_openpose(tmp_path / "xy", [[person("coco18")[:, :2].reshape(-1, 3)]])   # 36 values: 12 "triplets"
    with pytest.raises(KeypointFormatError, match=r"cam_0_keypoints.json': 12 keypoints per person \(36 values read as "
                                                  r"x, y, confidence\), but layout 'coco18' has 18 \(54 values\)"):
        read_openpose_folder(xy_only, "coco18")
