import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.formats.calibration import CalibrationError, read_h36m_cameras



def write(tmp_path, data) -> Path:
    path = tmp_path / "cams.json"
    path.write_text(json.dumps(data))
    return path


def minimal(R=None, K=None):
    K = K if K is not None else [[1000, 0, 500], [0, 1000, 500], [0, 0, 1]]
    return {"intrinsics": {"1": {"calibration_matrix": K, "distortion": [0.1, 0, 0, 0, 0]}},
            "extrinsics": {"S1": {"1": {"R": R if R is not None else np.eye(3).tolist(), "t": [[0], [0], [4000]]}}}}


def test_reads_a_written_camera(tmp_path):
    cams, ids = read_h36m_cameras(write(tmp_path, minimal()), "S1")
    assert ids == ["1"] and cams.batch_shape == (1,) and cams.dtype == torch.float64
    assert torch.equal(cams.t[0], torch.tensor([0.0, 0.0, 4000.0], dtype=torch.float64))
    assert cams.image_size[0].tolist() == [1000.0, 1000.0] and cams.dist[0, 0] == 0.1


@pytest.mark.parametrize("data, message", [
    (minimal(R=[[1, 0, 0], [0, 1, 0], [0, 0, 2]]), "R is not a rotation"),
    (minimal(K=[[0, 0, 500], [0, 0, 500], [0, 0, 1]]), "K must be invertible"),
    (minimal(R=[[1, 0], [0, 1]]), "R: expected 9 numbers"),
    ({"intrinsics": {}}, "expected the objects 'intrinsics'"),
])
def test_bad_files_are_named(tmp_path, data, message):
    with pytest.raises(CalibrationError, match=message):
        read_h36m_cameras(write(tmp_path, data), "S1")


def test_missing_subject_file_and_json(tmp_path):
    with pytest.raises(CalibrationError, match="no extrinsics for subject 'S9'; subjects with cameras: S1"):
        read_h36m_cameras(write(tmp_path, minimal()), "S9")
    with pytest.raises(CalibrationError, match="does not exist"):
        read_h36m_cameras(tmp_path / "none.json", "S1")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CalibrationError, match="bad.json' is not valid JSON"):
        read_h36m_cameras(bad, "S1")


def test_real_human36m_cameras(shared_data):
    cams, ids = read_h36m_cameras(shared_data("h36m/camera-parameters.json"), "S9")
    assert ids == ["54138969", "55011271", "58860488", "60457274"]
    assert cams.image_size[:, 1].tolist() == [1002.0, 1000.0, 1000.0, 1002.0]
    distance = cams.centers.norm(dim=-1)
    assert ((distance > 3000) & (distance < 7000)).all()  # cameras a few metres from the capture centre


# ----- aniposelib / Pose2Sim TOML, CMU Panoptic JSON, and read_calibration ----------------------------------------
from datasets.formats.calibration import read_calibration, rodrigues_to_matrix  # noqa: E402

ROTATION_VECTOR = np.array([0.3, -1.2, 0.5])
CAMERA = {"K": [[1500.0, 0.0, 530.0], [0.0, 1498.0, 960.0], [0.0, 0.0, 1.0]], "R": rodrigues_to_matrix(ROTATION_VECTOR),
          "t_mm": np.array([320.0, -150.0, 4200.0]), "dist": [-0.12, 0.05, 0.001, -0.002, 0.0], "size": [1088, 1920]}


def _toml_list(values) -> str:
    return "[" + ", ".join(_toml_list(v) if isinstance(v, (list, np.ndarray)) else repr(float(v)) for v in values) + "]"


def write_all_formats(tmp_path):
    """One camera written as aniposelib TOML (metres, Rodrigues), Human3.6M JSON (mm) and Panoptic JSON (cm)."""
    c = CAMERA
    toml = tmp_path / "calib.toml"
    toml.write_text(f'[cam_a]\nname = "cam_a"\nsize = {_toml_list(c["size"])}\nmatrix = {_toml_list(c["K"])}\n'
                    f'distortions = {_toml_list(c["dist"][:4])}\nrotation = {_toml_list(ROTATION_VECTOR)}\n'
                    f'translation = {_toml_list(c["t_mm"] / 1000)}\nfisheye = false\n\n'
                    '[metadata]\nadjusted = false\nerror = 0.0\n')
    h36m = tmp_path / "h36m.json"
    h36m.write_text(json.dumps({"intrinsics": {"cam_a": {"calibration_matrix": c["K"], "distortion": c["dist"]}},
                                "extrinsics": {"S1": {"cam_a": {"R": c["R"].tolist(), "t": c["t_mm"].tolist()}}}}))
    panoptic = tmp_path / "calibration_seq.json"
    panoptic.write_text(json.dumps({"cameras": [
        {"name": "other", "type": "vga", "resolution": [640, 480], "K": np.eye(3).tolist(), "distCoef": [0] * 5,
         "R": np.eye(3).tolist(), "t": [[0], [0], [100]]},
        {"name": "cam_a", "type": "hd", "resolution": c["size"], "K": c["K"], "distCoef": c["dist"],
         "R": c["R"].tolist(), "t": (c["t_mm"] / 10).reshape(3, 1).tolist()}]}))
    return toml, h36m, panoptic


def test_the_three_formats_agree_on_one_camera(tmp_path):
    toml, h36m, panoptic = write_all_formats(tmp_path)
    readings = [read_calibration(toml), read_calibration(h36m, subject="S1"), read_calibration(panoptic, ["cam_a"])]
    points = torch.tensor([[100.0, 200.0, 300.0], [-400.0, 50.0, -20.0], [0.0, 900.0, 100.0]], dtype=torch.float64)
    reference = readings[0][0]
    assert torch.allclose(reference.R[0], torch.from_numpy(CAMERA["R"]), atol=1e-12)
    assert torch.allclose(reference.t[0], torch.from_numpy(CAMERA["t_mm"]), atol=1e-9)
    for cameras, names in readings:
        assert names == ["cam_a"]
        for field in ("K", "R", "t", "dist"):
            assert torch.allclose(getattr(cameras, field), getattr(reference, field), atol=1e-9), field
        assert torch.allclose(cameras.project(points), reference.project(points), atol=1e-9)
    assert reference.image_size[0].tolist() == [1088.0, 1920.0]


def test_toml_translation_units(tmp_path):
    toml = write_all_formats(tmp_path)[0]
    metres = read_calibration(toml)[0]
    toml.write_text(toml.read_text().replace(_toml_list(CAMERA["t_mm"] / 1000), _toml_list(CAMERA["t_mm"])))
    assert torch.allclose(read_calibration(toml, toml_units="mm")[0].t, metres.t)
    with pytest.raises(CalibrationError, match="units must be one of m, cm, mm"):
        read_calibration(toml, toml_units="inch")


def test_rodrigues_matches_opencv():
    import cv2
    for vector in (ROTATION_VECTOR, np.array([1e-14, 0.0, 0.0]), np.array([0.0, np.pi, 0.0])):
        assert np.allclose(rodrigues_to_matrix(vector), cv2.Rodrigues(vector)[0], atol=1e-12)


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("fisheye = false", "fisheye = true"), "fisheye cameras are not supported"),
    (lambda text: text.replace("rotation = [", "rotation = [0.1, "), r"rotation: expected 3 numbers"),
    (lambda text: text.replace("name = ", "name == "), "is not valid TOML"),
    (lambda text: text.replace("distortions = [", "distortions = [0.0, 0.0, "), "distortions: expected"),
])
def test_bad_toml_files_are_named(tmp_path, edit, message):
    toml = write_all_formats(tmp_path)[0]
    toml.write_text(edit(toml.read_text()))
    with pytest.raises(CalibrationError, match=message) as err:
        read_calibration(toml)
    assert str(toml) in str(err.value)


def test_read_calibration_dispatch_errors(tmp_path):
    toml, h36m, panoptic = write_all_formats(tmp_path)
    with pytest.raises(CalibrationError, match="name the subject"):
        read_calibration(h36m)
    with pytest.raises(CalibrationError, match="no camera named cam_z; cameras: other, cam_a"):
        read_calibration(panoptic, ["cam_z"])
    (tmp_path / "calib.yml").write_text("x: 1")
    with pytest.raises(CalibrationError, match="unknown format"):
        read_calibration(tmp_path / "calib.yml")
    (tmp_path / "other.json").write_text("{\"a\": 1}")
    with pytest.raises(CalibrationError, match="neither a CMU Panoptic"):
        read_calibration(tmp_path / "other.json")
    with pytest.raises(CalibrationError, match="does not exist"):
        read_calibration(tmp_path / "missing.toml")


def test_reads_the_pose2sim_calibration(shared_data):
    cameras, names = read_calibration(shared_data("pose2sim/calibration/Calib_qualisys.toml"))
    assert names == ["cam_01", "cam_02", "cam_03", "cam_04"]
    # the four cameras stand 2 to 5 m from the origin, where the person is, and look at it
    distances = cameras.centers.norm(dim=-1)
    assert torch.all((distances > 2000) & (distances < 5500))
    assert torch.all(cameras.world_to_camera(torch.zeros(4, 1, 3, dtype=torch.float64))[:, 0, 2] > 1000)


def rig(centres):
    """A Human3.6M camera file of cameras at ``centres`` (mm), all looking along the world's y axis."""
    R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    K = [[1000, 0, 500], [0, 1000, 500], [0, 0, 1]]
    return {"intrinsics": {str(i): {"calibration_matrix": K, "distortion": [0] * 5} for i in range(len(centres))},
            "extrinsics": {"S1": {str(i): {"R": R.tolist(), "t": (-R @ np.asarray(c, float)).tolist()}
                                  for i, c in enumerate(centres)}}}


def test_degenerate_rigs_are_reported(tmp_path, epipose_log):
    with pytest.raises(CalibrationError, match=r"cams.json' cameras of S1: the 2 cameras cannot triangulate"):
        read_h36m_cameras(write(tmp_path, rig([[0, -3000, 0], [3, -3000, 0]])), "S1")
    cameras, _ = read_h36m_cameras(write(tmp_path, rig([[0, -3000, 0], [1, -3000, 0], [2000, -3000, 0]])), "S1")
    assert len(cameras) == 3
    assert "cameras 0 and 1 are 1.0 mm apart; they add no depth to each other" in epipose_log.text
    epipose_log.clear()
    read_h36m_cameras(write(tmp_path, rig([[0, -3000, 0], [300_000, -3000, 0]])), "S1")
    assert "cameras 300 m apart; are the calibration's units right" in epipose_log.text
    assert len(read_h36m_cameras(write(tmp_path, minimal()), "S1")[0]) == 1    # one camera: nothing to check


H36M_LIKE_CENTRES = [[1841, 4955, 1563], [1761, -5078, 1606], [-1847, 5215, 1492], [-1795, -3723, 1575]]  # mm


def test_translations_in_metres_are_refused_naming_the_units(tmp_path):
    metres = (np.array(H36M_LIKE_CENTRES) / 1000).tolist()
    with pytest.raises(CalibrationError) as err:
        read_h36m_cameras(write(tmp_path, rig(metres)), "S1")
    message = str(err.value)
    assert "cams.json' cameras of S1: the 4 cameras cannot triangulate a person of 1700 mm: their centres lie within " \
           "10.9 mm of each other, 34 mm or more expected; the translations look like metres where millimetres " \
           "(extrinsics t) are expected" in message and "\n" not in message
    # the same rig in millimetres, and a stereo camera 6 cm wide, are fine; the person's size sets the scale
    assert len(read_h36m_cameras(write(tmp_path, rig(H36M_LIKE_CENTRES)), "S1")[0]) == 4
    assert len(read_h36m_cameras(write(tmp_path, rig([[0, -3000, 0], [60, -3000, 0]])), "S1")[0]) == 2
    with pytest.raises(CalibrationError, match="a person of 5000 mm: .* 100 mm or more expected"):
        read_h36m_cameras(write(tmp_path, rig([[0, -3000, 0], [60, -3000, 0]])), "S1", person_mm=5000.0)


def test_toml_translation_units_too_small_for_a_person_are_named(tmp_path):
    toml = tmp_path / "rig.toml"
    tables = []
    for i, centre in enumerate(H36M_LIKE_CENTRES):
        R = rodrigues_to_matrix(np.array([0.1 * i, 0.2, 0.0]))
        tables.append(f'[cam_{i}]\nname = "cam_{i}"\nsize = [1000.0, 1000.0]\nmatrix = {_toml_list(CAMERA["K"])}\n'
                      f'rotation = [{0.1 * i}, 0.2, 0.0]\n'
                      f'translation = {_toml_list(-R @ np.array(centre, float) / 1000)}\n')
    toml.write_text("\n".join(tables))
    assert len(read_calibration(toml)[0]) == 4                                # metres, Pose2Sim's default
    with pytest.raises(CalibrationError, match=r"look like metres where millimetres \(toml_units mm\) are expected"):
        read_calibration(toml, toml_units="mm")


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("matrix = ", "matrx = "),
     r"\[cam_a\]: no key 'matrix' \(the 3x3 intrinsic matrix\) \('matrx' misspelt\?\); a camera section needs size, "
     r"matrix, rotation, translation"),
    (lambda text: text.replace("size = ", "# size = "), r"\[cam_a\]: no key 'size' \(\[width, height\]\); a camera"),
])
def test_a_toml_camera_without_a_required_key_is_named(tmp_path, edit, message):
    toml = write_all_formats(tmp_path)[0]
    toml.write_text(edit(toml.read_text()))
    with pytest.raises(CalibrationError, match=message) as err:
        read_calibration(toml)
    assert str(err.value).startswith(f"'{toml}' [cam_a]")
