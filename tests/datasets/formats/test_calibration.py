import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.formats.calibration import CalibrationError, read_h36m_cameras

H36M = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "h36m" / "camera-parameters.json"


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
    ({"intrinsics": {}}, "expected the keys 'intrinsics' and 'extrinsics'"),
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


def test_real_human36m_cameras():
    if not H36M.is_file():
        pytest.skip(f"shared Human3.6M calibration not found at {H36M}")
    cams, ids = read_h36m_cameras(H36M, "S9")
    assert ids == ["54138969", "55011271", "58860488", "60457274"]
    assert cams.image_size[:, 1].tolist() == [1002.0, 1000.0, 1000.0, 1002.0]
    distance = cams.centers.norm(dim=-1)
    assert ((distance > 3000) & (distance < 7000)).all()  # cameras a few metres from the capture centre
