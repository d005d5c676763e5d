"""VideoPose3D-format readers on tiny npz fixtures written here."""
import numpy as np
import pytest

from datasets.formats.videopose3d import (H36M_32_TO_17, VideoPose3DError, match_2d_to_3d, read_positions_2d,
                                          read_positions_3d)

SYMMETRY = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]


def write_3d(path, frames=5):
    positions = np.random.default_rng(0).normal(size=(frames, 32, 3)).astype(np.float32)
    np.savez_compressed(path, positions_3d={"S1": {"Walking": positions}, "S9": {"Photo 1": positions[:3, :17]}})
    return positions


def write_2d(path, frames=(6, 6, 6, 6), **metadata):
    views = [np.full((n, 17, 2), float(c), np.float32) for c, n in enumerate(frames)]
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": SYMMETRY, **metadata}
    np.savez_compressed(path, positions_2d={"S1": {"Walking": views}, "S9": {"Photo 1": [v[:3] for v in views]}},
                        metadata=meta)


def test_3d_is_reduced_to_17_joints_in_millimetres(tmp_path):
    positions = write_3d(tmp_path / "data_3d_h36m.npz")
    loaded = read_positions_3d(tmp_path / "data_3d_h36m.npz")
    assert loaded["S1"]["Walking"].shape == (5, 17, 3)
    np.testing.assert_allclose(loaded["S1"]["Walking"], 1000 * positions[:, list(H36M_32_TO_17)], rtol=1e-6)
    np.testing.assert_allclose(loaded["S9"]["Photo 1"], 1000 * positions[:3, :17], rtol=1e-6)


def test_2d_is_matched_and_trimmed_to_the_3d(tmp_path):
    write_3d(tmp_path / "d3.npz")
    write_2d(tmp_path / "d2.npz")
    positions_2d, metadata = read_positions_2d(tmp_path / "d2.npz")
    assert metadata["layout_name"] == "h36m"
    matched = match_2d_to_3d(positions_2d, read_positions_3d(tmp_path / "d3.npz"))
    assert [v.shape for v in matched["S1"]["Walking"]] == [(5, 17, 3)] * 4      # x, y and score 1
    assert matched["S1"]["Walking"][2][0, 0, 0] == 2.0 and (matched["S1"]["Walking"][2][..., 2] == 1).all()


def test_other_layouts_and_mismatches_are_refused(tmp_path):
    write_2d(tmp_path / "coco.npz", layout_name="coco", keypoints_symmetry=[[1, 3, 5], [2, 4, 6]])
    with pytest.raises(VideoPose3DError, match="layout 'coco' .* is not the Human3.6M 17-joint layout"):
        read_positions_2d(tmp_path / "coco.npz")
    write_3d(tmp_path / "d3.npz")
    write_2d(tmp_path / "short.npz", frames=(6, 4, 6, 6))
    with pytest.raises(VideoPose3DError, match="S1 'Walking' camera 1 has 4 frames of 2D for 5 frames of 3D"):
        match_2d_to_3d(read_positions_2d(tmp_path / "short.npz")[0], read_positions_3d(tmp_path / "d3.npz"), "short")
    with pytest.raises(VideoPose3DError, match="no 2D keypoints for S1 'Walking'"):
        match_2d_to_3d({}, read_positions_3d(tmp_path / "d3.npz"))
    np.savez(tmp_path / "wrong.npz", positions_3d={"S1": {"Walking": np.zeros((5, 16, 3))}})
    with pytest.raises(VideoPose3DError, match=r"must be \(T, 32 or 17, 3\), got \(5, 16, 3\)"):
        read_positions_3d(tmp_path / "wrong.npz")
    np.savez(tmp_path / "other.npz", poses=np.zeros(3))
    with pytest.raises(VideoPose3DError, match="expected 'positions_3d'"):
        read_positions_3d(tmp_path / "other.npz")


def write_scored_2d(path, scores):
    """One take of 4 cameras whose (T, 17, 3) arrays carry ``scores`` (T, 17) in every camera."""
    xy = np.random.default_rng(1).uniform(0, 1000, (len(scores), 17, 2))
    views = [np.concatenate([xy + c, scores[..., None]], -1).astype(np.float32) for c in range(4)]
    np.savez_compressed(path, positions_2d={"S1": {"Walking": views}},
                        metadata={"num_joints": 17, "keypoints_symmetry": SYMMETRY})
    return xy


def test_a_third_channel_is_read_as_the_score(tmp_path):
    scores = np.random.default_rng(2).uniform(0, 1, (6, 17))
    scores[0, 3] = 0.0                                       # a joint the detector missed
    xy = write_scored_2d(tmp_path / "d2.npz", scores)
    views = read_positions_2d(tmp_path / "d2.npz")[0]["S1"]["Walking"]
    assert [v.shape for v in views] == [(6, 17, 3)] * 4
    np.testing.assert_allclose(views[1][..., :2], xy + 1, rtol=1e-6)
    np.testing.assert_allclose(views[1][..., 2], scores, rtol=1e-6)


@pytest.mark.parametrize("bad, shown", [(1.5, "1.5"), (-0.1, "-0.1"), (np.nan, "nan")])
def test_scores_outside_0_1_or_nan_are_refused_naming_the_first(tmp_path, bad, shown):
    scores = np.full((6, 17), 0.5)
    scores[4, 16] = bad
    write_scored_2d(tmp_path / "d2.npz", scores)
    with pytest.raises(VideoPose3DError) as err:
        read_positions_2d(tmp_path / "d2.npz")
    assert f"d2.npz: positions_2d['S1']['Walking'][0]: 1 scores outside [0, 1] or NaN (the first: frame 4, joint " \
           f"r_wrist, {shown}); the third channel is read as the 2D confidence: rescale" in str(err.value)


def test_2d_arrays_of_other_shapes_say_what_is_expected(tmp_path):
    np.savez_compressed(tmp_path / "d2.npz", positions_2d={"S1": {"Walking": [np.zeros((6, 17, 4))] * 4}},
                        metadata={"num_joints": 17, "keypoints_symmetry": SYMMETRY})
    with pytest.raises(VideoPose3DError, match=r"\['Walking'\]\[0\] must be \(T, 17, 2\) \(x, y\) or \(T, 17, 3\) "
                                               r"\(x, y, score\), got \(6, 17, 4\)"):
        read_positions_2d(tmp_path / "d2.npz")
