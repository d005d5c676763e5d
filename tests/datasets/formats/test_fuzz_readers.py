"""Malformed files end in the toolbox's own error types: every reader is fed random bytes, random JSON and
valid files cut short or with bytes overwritten (hypothesis), and may only raise its format error."""
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.formats.bvh import BvhFormatError, read_bvh
from datasets.formats.calibration import CalibrationError, read_calibration
from datasets.formats.keypoints2d import KeypointFormatError, read_coco_keypoints, read_openpose_folder
from datasets.formats.safe_pickle import SafePickleError, load_npz
from datasets.formats.videopose3d import VideoPose3DError, read_positions_2d, read_positions_3d

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TOML = (b'[cam_a]\nname = "cam_a"\nsize = [ 1088.0, 1920.0]\nmatrix = [ [ 1681.2, 0.0, 532.9], [ 0.0, 1681.0, 948.1],'
        b' [ 0.0, 0.0, 1.0]]\ndistortions = [ -0.0007, 0.0021, 9.5e-06, 1.0e-05]\nrotation = [ 1.68, 1.04, -0.41]\n'
        b'translation = [ 0.32, 0.95, 2.89]\nfisheye = false\n\n[metadata]\nadjusted = false\n')
H36M = json.dumps({"intrinsics": {"1": {"calibration_matrix": [[1000, 0, 500], [0, 1000, 500], [0, 0, 1]],
                                        "distortion": [0.1, 0, 0, 0, 0]}},
                   "extrinsics": {"S1": {"1": {"R": np.eye(3).tolist(), "t": [[0], [0], [4000]]}}}}).encode()
PANOPTIC = json.dumps({"cameras": [{"name": "00_00", "resolution": [1920, 1080], "K": np.eye(3).tolist(),
                                    "distCoef": [0] * 5, "R": np.eye(3).tolist(), "t": [[0], [0], [300]]}]}).encode()
OPENPOSE = json.dumps({"people": [{"pose_keypoints_2d": list(np.arange(54, dtype=float))}]}).encode()
COCO = json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                   "annotations": [{"image_id": 1, "keypoints": [1.0, 2.0, 2] * 17}]}).encode()
BVH = (b"HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
       b"Yrotation\n End Site\n {\n  OFFSET 0 10 0\n }\n}\nMOTION\nFrames: 2\nFrame Time: 0.01\n"
       b"0 0 0 0 0 0\n1 1 1 10 10 10\n")


def npz_bytes(**arrays) -> bytes:
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


VP3D = npz_bytes(positions_3d=np.array({"S1": {"Walk": np.zeros((3, 17, 3))}}, dtype=object))


def mutations(valid: bytes):
    """Random bytes, the valid file cut short, or with a slice overwritten by random bytes."""
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    overwrite = st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=16)).map(
        lambda p: valid[:p[0]] + p[1] + valid[p[0] + len(p[1]):])
    return st.one_of(st.binary(max_size=256), cut, overwrite)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)


def json_documents(valid: bytes):
    """Random JSON, and the valid document with one value replaced by random JSON."""
    document = json.loads(valid)

    def replace_one(data, value, path):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return data

    def paths(node, prefix=()):
        out = [prefix] if prefix else []
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            out += paths(child, prefix + (key,))
        return out

    all_paths = paths(document)
    edited = st.tuples(st.sampled_from(all_paths), JSON_VALUES).map(
        lambda p: json.dumps(replace_one(json.loads(valid), p[1], p[0])).encode())
    return st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), edited)


def check(read, data: bytes, path: Path, allowed) -> None:
    path.write_bytes(data)
    try:
        read(path)
    except allowed:
        pass


def test_the_valid_seeds_are_read(tmp_path):
    for name, data in (("c.toml", TOML), ("h.json", H36M), ("p.json", PANOPTIC)):
        (tmp_path / name).write_bytes(data)
    assert read_calibration(tmp_path / "c.toml")[1] == ["cam_a"]
    assert read_calibration(tmp_path / "h.json", subject="S1")[1] == ["1"]
    assert read_calibration(tmp_path / "p.json")[1] == ["00_00"]
    (tmp_path / "op").mkdir()
    (tmp_path / "op" / "f_0.json").write_bytes(OPENPOSE)
    assert read_openpose_folder(tmp_path / "op")[1] == "coco18"
    (tmp_path / "coco.json").write_bytes(COCO)
    assert read_coco_keypoints(tmp_path / "coco.json")[1] == "coco17"
    (tmp_path / "m.bvh").write_bytes(BVH)
    assert read_bvh(tmp_path / "m.bvh").num_frames == 2
    (tmp_path / "v.npz").write_bytes(VP3D)
    assert list(read_positions_3d(tmp_path / "v.npz")) == ["S1"]


@FUZZ
@given(data=mutations(TOML))
def test_toml_calibration(tmp_path, data):
    check(read_calibration, data, tmp_path / "c.toml", CalibrationError)


@FUZZ
@given(data=st.one_of(mutations(H36M), json_documents(H36M)))
def test_h36m_calibration(tmp_path, data):
    check(lambda p: read_calibration(p, subject="S1"), data, tmp_path / "h.json", CalibrationError)


@FUZZ
@given(data=st.one_of(mutations(PANOPTIC), json_documents(PANOPTIC)))
def test_panoptic_calibration(tmp_path, data):
    check(read_calibration, data, tmp_path / "p.json", CalibrationError)


@FUZZ
@given(data=st.one_of(mutations(OPENPOSE), json_documents(OPENPOSE)))
def test_openpose_folder(tmp_path, data):
    folder = tmp_path / "openpose"
    folder.mkdir(exist_ok=True)
    check(lambda p: read_openpose_folder(folder), data, folder / "cam_0.json", KeypointFormatError)


@FUZZ
@given(data=st.one_of(mutations(COCO), json_documents(COCO)))
def test_coco_keypoints(tmp_path, data):
    check(read_coco_keypoints, data, tmp_path / "coco.json", KeypointFormatError)


@FUZZ
@given(data=mutations(BVH))
def test_bvh(tmp_path, data):
    check(read_bvh, data, tmp_path / "m.bvh", BvhFormatError)


@FUZZ
@given(data=mutations(VP3D))
def test_videopose3d_archives(tmp_path, data):
    check(read_positions_3d, data, tmp_path / "d3.npz", VideoPose3DError)
    check(read_positions_2d, data, tmp_path / "d2.npz", VideoPose3DError)
    check(load_npz, data, tmp_path / "a.npz", SafePickleError)
