"""The RHD annotation reader on made-up pickles (``rhd_fixtures``): values and units, and one error line naming the
file, the sample and the key for every kind of damage (random bytes, cut files, wrong keys and shapes, NaNs, a
forbidden global)."""
import os
import pickle

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.formats.rhd import RHDFormatError, read_hand_pixels, read_rhd_annotations
from tests.datasets.rhd_fixtures import make_record

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def records(count: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {sample_id: make_record(rng)[0] for sample_id in (5, 0, 2)[:count]}


def write(path, data) -> None:
    with open(path, "wb") as stream:
        pickle.dump(data, stream, protocol=2)


def test_both_hands_in_millimetres_ordered_by_sample_id(tmp_path):
    data = records()
    write(tmp_path / "anno.pickle", data)
    annotations = read_rhd_annotations(tmp_path / "anno.pickle")
    assert annotations.sample_ids.tolist() == [0, 2, 5]
    assert annotations.xyz_mm.shape == (3, 2, 21, 3) and annotations.visible.shape == (3, 2, 21)
    for row, sample_id in enumerate((0, 2, 5)):
        record = data[sample_id]
        np.testing.assert_allclose(annotations.xyz_mm[row].reshape(42, 3), 1000.0 * record["xyz"], rtol=1e-6)
        np.testing.assert_array_equal(annotations.uv_px[row, 1], record["uv_vis"][21:, :2])
        np.testing.assert_array_equal(annotations.visible[row, 0], record["uv_vis"][:21, 2] == 1)
        np.testing.assert_array_equal(annotations.K[row], record["K"])
    assert annotations.select([2]).sample_ids.tolist() == [5]


class Poison:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def damaged(kind: str):
    """A damaged annotation dict and the words its error must contain."""
    data = records()
    record = data[2]
    if kind == "list":
        return list(data.values()), "expected a non-empty dict"
    if kind == "empty":
        return {}, "expected a non-empty dict"
    if kind == "id":
        return {**data, "seven": record}, "sample ids must be non-negative integers (the image numbers), got 'seven'"
    if kind == "record":
        return {**data, 3: [1, 2]}, "sample 3 must be a dict with xyz, uv_vis, K, got list"
    if kind == "missing":
        del record["K"]
        return data, "sample 2 has no key 'K'"
    if kind == "text":
        record["xyz"] = "abc"
        return data, "sample 2 'xyz' is not numeric"
    if kind == "shape":
        record["xyz"] = record["xyz"][:21]
        return data, "sample 2 'xyz' must have shape (42, 3), got (21, 3)"
    if kind == "nan":
        record["uv_vis"][4, 0] = np.nan
        return data, "sample 2 'uv_vis' has NaN or infinite values (1 samples)"
    if kind == "inf":
        record["K"][0, 2] = np.inf
        return data, "sample 2 'K' has NaN or infinite values"
    if kind == "behind":
        record["xyz"][7, 2] = -0.1
        return data, "sample 2 'xyz' has keypoints on or behind the camera plane"
    if kind == "flag":
        record["uv_vis"][3, 2] = 0.5
        return data, "sample 2 'uv_vis' has visibility flags (third column) other than 0 and 1"
    if kind == "K":
        record["K"][2] = (0.0, 1.0, 1.0)
        return data, "sample 2 'K' is not an intrinsic matrix"
    assert kind == "global"
    return {**data, 3: {"xyz": Poison()}}, "refusing to unpickle 'posix.system'"


@pytest.mark.parametrize("kind", ["list", "empty", "id", "record", "missing", "text", "shape", "nan", "inf", "behind",
                                  "flag", "K", "global"])
def test_damage_is_one_error_line_naming_the_file_sample_and_key(tmp_path, kind):
    data, words = damaged(kind)
    path = tmp_path / "anno_training.pickle"
    write(path, data)
    with pytest.raises(RHDFormatError) as error:
        read_rhd_annotations(path)
    message = str(error.value)
    assert message.startswith(str(path)) and words in message and "\n" not in message


def test_a_missing_or_truncated_file_is_named(tmp_path):
    with pytest.raises(RHDFormatError, match="file not found"):
        read_rhd_annotations(tmp_path / "none.pickle")
    write(tmp_path / "anno.pickle", records())
    (tmp_path / "cut.pickle").write_bytes((tmp_path / "anno.pickle").read_bytes()[:500])
    with pytest.raises(RHDFormatError, match=r"cut.pickle: not a readable pickle"):
        read_rhd_annotations(tmp_path / "cut.pickle")


VALID = pickle.dumps(records(2), protocol=2)


@FUZZ
@given(data=st.one_of(st.binary(max_size=256), st.integers(0, len(VALID)).map(lambda n: VALID[:n]),
                      st.tuples(st.integers(0, len(VALID)), st.binary(min_size=1, max_size=16)).map(
                          lambda p: VALID[:p[0]] + p[1] + VALID[p[0] + len(p[1]):])))
def test_random_and_mutated_bytes_raise_only_the_format_error(tmp_path, data):
    path = tmp_path / "anno.pickle"
    path.write_bytes(data)
    try:
        read_rhd_annotations(path)
    except RHDFormatError as err:
        assert str(path) in str(err) and "\n" not in str(err)


def test_hand_pixels_count_the_labels_of_each_hand(tmp_path):
    mask = np.zeros((20, 20), np.uint8)
    mask[0, :5], mask[1, :3], mask[2, :4], mask[3, :7] = 1, 2, 17, 18      # person, left, left palm, right thumb
    mask[4, :2] = 33
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    assert read_hand_pixels(tmp_path / "m.png").tolist() == [7, 9]
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(RHDFormatError, match=r"rgb.png: a segmentation mask must be one channel of 8-bit labels"):
        read_hand_pixels(tmp_path / "rgb.png")
    with pytest.raises(RHDFormatError, match=r"none.png: the segmentation mask is missing"):
        read_hand_pixels(tmp_path / "none.png")
