"""The Ski-Pose readers on a fixture in the public layout (``tests.datasets.ski_fixtures``): units and conventions,
both row shapes, and malformed files (random bytes, cut files, wrong keys, shapes and values), each one error line
naming the file and the key or line."""
import h5py
import numpy as np
import pytest
from hypothesis import given

from datasets.formats.ski_pose import IMAGE_SIDE_PX, SkiPoseError, read_ski_centres, read_ski_labels
from tests.datasets.formats.test_fuzz_readers import FUZZ, mutations
from tests.datasets.ski_fixtures import rows_of_split, write_labels, write_ski


@pytest.fixture(scope="module")
def rows():
    return rows_of_split("test")[0]


def small(rows, count=12):
    return {key: value[:count] for key, value in rows.items()}


def test_labels_are_read_in_millimetres_pixels_and_world_to_camera_rotations(tmp_path, rows):
    labels = read_ski_labels(write_labels(tmp_path / "labels.h5", rows))
    n = len(rows["seq"])
    assert labels.pose_3d_cam.shape == (n, 17, 3) and labels.keypoints_2d.shape == (n, 17, 2)
    assert labels.seq.dtype == np.int64 and set(labels.camera) == set(range(6)) and set(labels.subject) == {3}
    np.testing.assert_allclose(labels.pose_3d_cam, rows["3D"].reshape(n, 17, 3) * 1000.0, rtol=1e-6)
    np.testing.assert_allclose(labels.keypoints_2d, rows["2D"].reshape(n, 17, 2) * IMAGE_SIDE_PX, rtol=1e-6)
    np.testing.assert_allclose(labels.K[:, :2], rows["cam_intrinsic"][:, :2] * IMAGE_SIDE_PX)
    np.testing.assert_array_equal(labels.K[:, 2], np.tile([0.0, 0.0, 1.0], (n, 1)))
    np.testing.assert_allclose(labels.R, rows["R_cam_2_world"].transpose(0, 2, 1))
    # the camera centre -R^T t is the file's position, in mm
    centres = -np.einsum("nji,nj->ni", labels.R, labels.t)
    np.testing.assert_allclose(centres, rows["cam_position"] * 1000.0, atol=1e-6)


def test_flat_and_matrix_rows_read_alike(tmp_path, rows):
    reshaped = dict(rows, **{"3D": rows["3D"].reshape(-1, 17, 3), "2D": rows["2D"].reshape(-1, 17, 2),
                             "cam_intrinsic": rows["cam_intrinsic"].reshape(-1, 9), "subj": rows["subj"][:, None],
                             "R_cam_2_world": rows["R_cam_2_world"].reshape(-1, 9), "frame": rows["frame"] * 1.0})
    one, other = (read_ski_labels(write_labels(tmp_path / f"{name}.h5", r)) for name, r in (("a", rows),
                                                                                          ("b", reshaped)))
    for key in ("seq", "subject", "camera", "frame", "pose_3d_cam", "keypoints_2d", "K", "R", "t"):
        np.testing.assert_allclose(getattr(one, key), getattr(other, key))


def test_centres_are_read_per_run_and_frame_in_millimetres(tmp_path):
    root = write_ski(tmp_path)
    keys, centres = read_ski_centres(root / "ski_centers.csv")
    assert keys.dtype == np.int64 and len(keys) == 30 + 20 + 25 and keys[0].tolist() == [101, 0]
    np.testing.assert_allclose(centres[1], rows_of_split("train")[1][(101, 1)] * 1000.0)


def _without(rows, key):
    return {k: v for k, v in rows.items() if k != key}


LABEL_CASES = {
    "a key missing": (lambda r: _without(r, "R_cam_2_world"), r"no dataset 'R_cam_2_world'"),
    "a row too many": (lambda r: dict(r, cam_position=np.concatenate([r["cam_position"], r["cam_position"][:1]])),
                       r"'cam_position' has shape \(13, 3\), expected \(12, 3\)"),
    "joints missing": (lambda r: dict(r, **{"3D": r["3D"][:, :48]}),
                       r"'3D' has shape \(12, 48\), expected \(12, 17, 3\)"),
    "a NaN": (lambda r: dict(r, **{"2D": np.where(np.arange(34) == 5, np.nan, r["2D"])}),
              r"'2D' has NaN or infinite values in 12 rows \(the first: row 0\)"),
    "text": (lambda r: dict(r, seq=np.array([b"seq"] * 12)), r"'seq' must be a numeric array"),
    "fractional ids": (lambda r: dict(r, frame=r["frame"] + 0.5), r"'frame' must hold integers, got 0.5"),
    "a reflection": (lambda r: dict(r, R_cam_2_world=r["R_cam_2_world"] * [1, 1, -1]),
                     r"'R_cam_2_world' of row 0 is not a rotation \(12 rows\)"),
    "a bad K": (lambda r: dict(r, cam_intrinsic=r["cam_intrinsic"] * [[1], [1], [2]]),
                r"'cam_intrinsic' of row 0 is not a camera matrix"),
    "millimetres": (lambda r: dict(r, **{"3D": r["3D"] * 1000}), r"'3D': the skier's median extent is 1\d{3}, "
                                                                 r"expected metres"),
    "no rows": (lambda r: {k: v[:0] for k, v in r.items()}, r"'seq' is empty or a scalar"),
}


@pytest.mark.parametrize("case", LABEL_CASES)
def test_malformed_labels_are_one_line_naming_the_file_and_key(tmp_path, rows, case):
    edit, message = LABEL_CASES[case]
    path = write_labels(tmp_path / "labels.h5", edit(small(rows)))
    with pytest.raises(SkiPoseError, match=f"^{path}: {message}") as info:
        read_ski_labels(path)
    assert "\n" not in str(info.value)


def test_a_group_in_place_of_a_dataset_and_a_missing_file(tmp_path, rows):
    path = write_labels(tmp_path / "labels.h5", _without(small(rows), "cam"))
    with h5py.File(path, "a") as handle:
        handle.create_group("cam")
    with pytest.raises(SkiPoseError, match=f"^{path}: no dataset 'cam'"):
        read_ski_labels(path)
    with pytest.raises(SkiPoseError, match="nowhere.h5: not a readable HDF5 file"):
        read_ski_labels(tmp_path / "nowhere.h5")


CENTRE_CASES = {
    "too few fields": ("101 0 1.0 2.0\n", "line 1 is not 'seq frame x y z'"),
    "a word": ("101 0 1.0 2.0 3.0\n\n101 1 1.0 two 3.0\n", "line 3 is not 'seq frame x y z'"),
    "a NaN": ("101 0 1.0 nan 3.0\n", "line 1 is not"),
    "a fractional frame": ("101 0.5 1.0 2.0 3.0\n", "line 1 is not"),
    "a repeated frame": ("101 0 1.0 2.0 3.0\n101 0 1.0 2.0 3.0\n", "seq 101 frame 0 has 2 lines, expected one"),
    "nothing": ("\n  \n", "no lines"),
}


@pytest.mark.parametrize("case", CENTRE_CASES)
def test_malformed_centres_are_one_line_naming_the_file_and_line(tmp_path, case):
    text, message = CENTRE_CASES[case]
    path = tmp_path / "ski_centers.csv"
    path.write_text(text)
    with pytest.raises(SkiPoseError, match=f"^{path}: {message}"):
        read_ski_centres(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SkiPoseError, match=f"^{path}: cannot be read as text"):
        read_ski_centres(path)


def check(read, data: bytes, path) -> None:
    """``read`` of ``data`` either succeeds or raises one SkiPoseError line that names ``path``."""
    path.write_bytes(data)
    try:
        read(path)
    except SkiPoseError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err)


def label_bytes() -> bytes:
    """A valid labels.h5 of 4 rows, as bytes."""
    with h5py.File("seed.h5", "w", driver="core", backing_store=False) as handle:
        for key, value in small(rows_of_split("test")[0], 4).items():
            handle[key] = value
        handle.flush()
        return handle.id.get_file_image()


@FUZZ
@given(data=mutations(label_bytes()))
def test_fuzzed_labels(tmp_path, data):
    check(read_ski_labels, data, tmp_path / "labels.h5")


@FUZZ
@given(data=mutations(b"101 0 0.5 1.25 2.0\n101 1 0.75 1.5 1.875\n"))
def test_fuzzed_centres(tmp_path, data):
    check(read_ski_centres, data, tmp_path / "ski_centers.csv")
