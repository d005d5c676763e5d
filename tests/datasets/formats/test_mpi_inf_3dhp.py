"""MPI-INF-3DHP readers on fixtures written here (``tests.datasets.mpi_inf_3dhp_fixtures``): the test cameras against
the figures of the references, each layout read back, and malformed files (wrong keys, shapes, values, joint order,
random bytes, cut or overwritten files) refused in one line that names the file."""
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.formats import mpi_inf_3dhp as hp
from datasets.formats.mpi_inf_3dhp import MPIINF3DHPError
from tests.datasets.mpi_inf_3dhp_fixtures import (BODY, calibration_text, sequence_take, train_rig, universal,
                                                  walking_person, write_calibrations, write_test_mat, write_test_npz,
                                                  write_train_npz)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
H36M_ORDER = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]      # 3DHP -> Human3.6M (other tools' files)


def refused(read, path, match: str):
    """``read(path)`` raises MPIINF3DHPError matching ``match``, in one line naming the file."""
    with pytest.raises(MPIINF3DHPError, match=match) as info:
        read(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_test_cameras_have_the_published_intrinsics():
    studio, outdoor = hp.sequence_camera("TS2"), hp.sequence_camera("TS6")
    # TS1-TS4: studio camera 8, whose training calibration has these intrinsics (to the .calib's 6 digits)
    np.testing.assert_allclose(studio.K[0, [0, 1, 0, 1], [0, 1, 2, 2]].numpy(),
                               [1500.172, 1500.837, 1017.387, 1043.032], atol=5e-3)
    # TS5-TS6 as tabulated in VideoPose3D-derived 3DHP code
    np.testing.assert_allclose(outdoor.K[0, [0, 1, 0, 1], [0, 1, 2, 2]].numpy(),
                               [1683.98345952, 1672.59370772, 939.85754016, 560.140743168], atol=1e-4)
    assert studio.image_size.tolist() == [[2048, 2048]] and outdoor.image_size.tolist() == [[1920, 1080]]
    assert studio.dist.abs().max() == 0 and outdoor.dist[0, 0] == pytest.approx(-0.276859611)
    # the camera sits at the .calib's origin with its y axis along -up
    np.testing.assert_allclose(studio.centers[0].numpy(), [3427.28, 1387.86, 309.42], atol=0.05)
    np.testing.assert_allclose(studio.R[0, 1].numpy(), [0.208215, -0.976233, -0.06014], atol=1e-4)
    np.testing.assert_allclose((outdoor.R[0] @ outdoor.R[0].T).numpy(), np.eye(3), atol=1e-12)
    with pytest.raises(MPIINF3DHPError, match="unknown test sequence 'TS7'"):
        hp.sequence_camera("TS7")


def test_annot_data_mat_is_read_with_matlab_axes(tmp_path):
    path = write_test_mat(tmp_path / "TS1" / "annot_data.mat", "TS1")
    annotations = hp.read_test_annotations(path)
    annot2, annot3, univ, valid, activity = sequence_take("TS1")
    np.testing.assert_allclose(annotations.keypoints_2d, annot2, rtol=1e-6)
    np.testing.assert_allclose(annotations.keypoints_3d, annot3, rtol=1e-6)
    np.testing.assert_allclose(annotations.keypoints_3d_univ, univ, rtol=1e-6)
    assert annotations.valid.tolist() == valid.tolist() and annotations.activity.tolist() == activity.tolist()
    # valid_frame and activity_annotation may be stored 1 x N as well as N x 1
    flat = write_test_mat(tmp_path / "flat.mat", "TS1", valid_frame=valid[None].astype(float))
    assert hp.read_test_annotations(flat).valid.tolist() == valid.tolist()


def test_malformed_annot_data_is_refused(tmp_path):
    annot2, annot3, _, valid, _ = sequence_take("TS1")
    cases = [({"univ_annot3": None}, "no array univ_annot3"),
             ({"annot2": annot2}, r"annot2: expected shape \(N, 1, 17, 2\), got \(12, 17, 2\)"),
             ({"annot3": annot3[:5, None]}, r"annot3: expected shape \(12, 1, 17, 3\)"),
             ({"annot2": np.where(np.arange(17)[:, None] == 3, np.nan, annot2)[:, None]}, "annot2: NaN or infinite"),
             ({"univ_annot3": np.full((12, 1, 17, 3), np.inf)}, "univ_annot3: infinite values"),
             ({"valid_frame": 2 * valid[:, None].astype(float)}, "valid_frame: expected 0 or 1"),
             ({"valid_frame": valid[:7, None].astype(float)}, r"valid_frame: expected shape \(12,\)"),
             ({"activity_annotation": np.full((12, 1), 1.5)}, "expected integer activity ids"),
             ({"annot3": annot3[:, None][..., H36M_ORDER, :]}, "annot3: joint 14 is not the pelvis between the hips")]
    for number, (replace, match) in enumerate(cases):
        refused(hp.read_test_annotations, write_test_mat(tmp_path / f"case{number}.mat", "TS1", **replace), match)
    (tmp_path / "v5.mat").write_bytes(b"MATLAB 5.0 MAT-file, Platform: PCWIN64" + bytes(200))
    refused(hp.read_test_annotations, tmp_path / "v5.mat", "MATLAB v5 file .* needs scipy")
    (tmp_path / "text.mat").write_text("not hdf5")
    refused(hp.read_test_annotations, tmp_path / "text.mat", "not a readable MATLAB v7.3")
    refused(hp.read_test_annotations, tmp_path / "missing.mat", "file not found")
    with h5py.File(tmp_path / "group.mat", "w") as mat:
        mat.create_group("annot2")
    refused(hp.read_test_annotations, tmp_path / "group.mat", "no array annot2, annot3")


def test_processed_archives_are_read(tmp_path):
    takes = hp.read_processed_test(write_test_npz(tmp_path / "data_test_3dhp.npz"))
    assert sorted(takes) == ["TS1", "TS5"] and takes["TS5"].keypoints_2d.shape == (12, 17, 2)
    np.testing.assert_allclose(takes["TS1"].keypoints_3d, sequence_take("TS1")[2], rtol=1e-6)
    assert (~takes["TS1"].valid).nonzero()[0].tolist() == [3]
    train = hp.read_processed_train(write_train_npz(tmp_path / "data_train_3dhp.npz", frames=6))
    assert sorted(train) == [("S1", "Seq1"), ("S1", "Seq2"), ("S2", "Seq1"), ("S2", "Seq2")]
    views = train[("S2", "Seq1")]
    assert list(views) == list(hp.TRAIN_CAMERAS) and views["7"].keypoints_3d.shape == (6, 17, 3)
    assert views["7"].valid.all()
    cam = train_rig().unsqueeze(1).world_to_camera(torch.from_numpy(walking_person(6)).expand(8, -1, -1, -1)).numpy()
    np.testing.assert_allclose(views["7"].keypoints_3d, universal(cam[6]), atol=1e-2)


def test_malformed_archives_are_refused(tmp_path):
    def archive(name, data):
        np.savez(tmp_path / name, data=data)
        return tmp_path / name

    good = {"data_2d": np.zeros((4, 17, 2)), "data_3d": np.tile(BODY, (4, 1, 1)), "valid": np.ones(4)}
    refused(hp.read_processed_test, archive("a.npz", {"TS9": good}), r"data\['TS9'\]: not a test sequence")
    refused(hp.read_processed_test, archive("b.npz", {"TS1": {**good, "valid": np.ones(3)}}),
            r"valid: expected shape \(4,\)")
    refused(hp.read_processed_test, archive("c.npz", {"TS1": {"data_2d": good["data_2d"]}}),
            r"data\['TS1'\]: expected a dict with 'data_3d'")
    refused(hp.read_processed_test, archive("d.npz", {"TS1": {**good, "data_3d": good["data_3d"][:, H36M_ORDER]}}),
            "not the 3DHP joint order")
    refused(hp.read_processed_test, archive("e.npz", {"TS1": {**good, "data_2d": np.zeros((4, 16, 2))}}),
            r"data_2d: expected shape \(N, 17, 2\), got \(4, 16, 2\)")
    refused(hp.read_processed_test, archive("f.npz", {}), "expected a member 'data' holding a non-empty dict")
    np.savez(tmp_path / "g.npz", positions_3d=np.zeros(3))
    refused(hp.read_processed_test, tmp_path / "g.npz", "expected a member 'data'")
    refused(hp.read_processed_train, archive("h.npz", {"S1Seq1": [{"0": good}, 25]}), "expected a key 'S<s> Seq<q>'")
    refused(hp.read_processed_train, archive("i.npz", {"S1 Seq1": {"0": good}}), r"holding \[\{camera")
    refused(hp.read_processed_train, archive("j.npz", {"S1 Seq1": [{"0": {"data_2d": good["data_2d"]}}, 25]}),
            r"\['0'\]: expected a dict with 'data_3d'")
    np.savez(tmp_path / "k.npz", data=np.array([Path("x")], dtype=object))       # pickles a class: refused unrun
    refused(hp.read_processed_test, tmp_path / "k.npz", "refusing to unpickle")


def replace_line(text: str, key: str, values: str) -> str:
    """``text`` with the first line of ``key`` holding ``values``."""
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if line.split()[:1] == [key])
    lines[first] = f"  {key}   {values}"
    return "\n".join(lines)


def test_camera_calibration_is_read_and_checked(tmp_path):
    root = write_calibrations(tmp_path)
    path = root / "S1" / "Seq2" / "camera.calibration"
    rig, names = hp.read_camera_calibration(path)
    assert names == [str(n) for n in range(9)] and rig.image_size.tolist() == [[2048, 2048]] * 9
    chosen, _ = hp.read_camera_calibration(path, ["8", "0"])
    expected = train_rig(("8", "0"))
    for key in ("K", "R", "t"):
        np.testing.assert_allclose(getattr(chosen, key).numpy(), getattr(expected, key).numpy(), atol=1e-5)
    refused(lambda p: hp.read_camera_calibration(p, ["12"]), path, "no camera named 12; cameras: 0, 1")
    text = calibration_text(train_rig(("0", "1")), ("0", "1"))
    for number, (edit, match) in enumerate([
            (lambda s: s.replace("  size        2048 2048\n", "", 1), "camera 0: no size"),
            (lambda s: s.replace("extrinsic   ", "extrinsic   nan ", 1), "'extrinsic': expected 16 finite numbers"),
            (lambda s: s.replace("intrinsic   ", "intrinsic   x", 1), "'intrinsic': expected 16 numbers"),
            (lambda s: s.replace("name          0", "", 1), "'sensor' before the first camera 'name'"),
            (lambda s: replace_line(s, "extrinsic", "2 0 0 0 0 1 0 0 0 0 1 4000 0 0 0 1"), "R is not a rotation")]):
        (tmp_path / f"c{number}.calibration").write_text(edit(text))
        refused(hp.read_camera_calibration, tmp_path / f"c{number}.calibration", match)
    refused(hp.read_camera_calibration, tmp_path / "none.calibration", "cannot read the camera calibration")


# ----- fuzzing ------------------------------------------------------------------------------------
def mutations(valid: bytes):
    """Random bytes, the valid file cut short, or with a slice overwritten by random bytes."""
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    overwrite = st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=16)).map(
        lambda p: valid[:p[0]] + p[1] + valid[p[0] + len(p[1]):])
    return st.one_of(st.binary(max_size=256), cut, overwrite)


def seed(write, tmp_path_factory) -> bytes:
    return write(tmp_path_factory.mktemp("seed")).read_bytes()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return {"mat": seed(lambda d: write_test_mat(d / "a.mat", "TS1", frames=4), tmp_path_factory),
            "test": seed(lambda d: write_test_npz(d / "t.npz", frames=4), tmp_path_factory),
            "train": seed(lambda d: write_train_npz(d / "r.npz", subjects=("S1",), frames=3), tmp_path_factory),
            "calibration": calibration_text(train_rig(("0", "1")), ("0", "1")).encode()}


READERS = {"mat": hp.read_test_annotations, "test": hp.read_processed_test, "train": hp.read_processed_train,
           "calibration": hp.read_camera_calibration}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_the_fuzz_seeds_are_read(tmp_path, seeds, kind):
    (tmp_path / kind).write_bytes(seeds[kind])
    assert READERS[kind](tmp_path / kind) is not None


@pytest.mark.parametrize("kind", sorted(READERS))
def test_damaged_files_fail_in_one_line_naming_the_file(tmp_path, seeds, kind):
    @FUZZ
    @given(data=mutations(seeds[kind]))
    def check(data):
        path = tmp_path / kind
        path.write_bytes(data)
        try:
            READERS[kind](path)
        except MPIINF3DHPError as err:
            assert str(path) in str(err) and "\n" not in str(err)

    check()
