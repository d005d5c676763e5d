import collections
import os
import pickle

import numpy as np
import pytest

from datasets.formats.safe_pickle import SafePickleError, load_npy, load_npz, load_pickle

TABLE_DTYPE = np.dtype([("subject_idx", np.int8), ("keypoints", np.float32, (17, 3))])


def plain_data():
    table = np.zeros(3, TABLE_DTYPE)
    table["keypoints"] = np.arange(3 * 17 * 3).reshape(3, 17, 3)
    return {"names": ["S1", "S9"], "table": table, "scalar": np.float64(2.5), "nested": {"k": (1, 2.0, None)},
            "ordered": collections.OrderedDict(a=np.arange(4, dtype=np.int64))}


def check(loaded):
    expected = plain_data()
    assert loaded["names"] == expected["names"] and loaded["nested"] == expected["nested"]
    assert loaded["table"].dtype == TABLE_DTYPE and np.array_equal(loaded["table"], expected["table"])
    assert loaded["scalar"] == 2.5 and np.array_equal(loaded["ordered"]["a"], np.arange(4))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_data_round_trips(tmp_path, protocol):
    path = tmp_path / "labels.pkl"
    path.write_bytes(pickle.dumps(plain_data(), protocol=protocol))
    check(load_pickle(path))


def test_npy_of_a_pickled_dict_and_plain_npy(tmp_path):
    np.save(tmp_path / "labels.npy", plain_data())
    check(load_npy(tmp_path / "labels.npy"))
    np.save(tmp_path / "plain.npy", np.arange(6.0).reshape(2, 3))
    assert np.array_equal(load_npy(tmp_path / "plain.npy"), np.arange(6.0).reshape(2, 3))


class Exploit:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_code_in_a_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": Exploit()}))
    with pytest.raises(SafePickleError, match=r"evil\.pkl: refusing to unpickle '(posix|os|nt)\.system'"):
        load_pickle(path)
    np.save(tmp_path / "evil.npy", np.array({"x": Exploit()}, dtype=object), allow_pickle=True)
    with pytest.raises(SafePickleError, match="refusing to unpickle"):
        load_npy(tmp_path / "evil.npy")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(SafePickleError, match="file not found"):
        load_pickle(tmp_path / "none.pkl")
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(plain_data())[:40])
    with pytest.raises(SafePickleError, match=r"bad\.pkl: not a readable pickle"):
        load_pickle(tmp_path / "bad.pkl")
    (tmp_path / "bad.npy").write_text("hello")
    with pytest.raises(SafePickleError, match=r"bad\.npy: not an \.npy file"):
        load_npy(tmp_path / "bad.npy")


def test_npz_of_pickled_dicts_like_videopose3d(tmp_path):
    positions = {"S1": {"Walking": np.ones((5, 32, 3), np.float32)}}
    np.savez_compressed(tmp_path / "data_3d.npz", positions_3d=positions, count=np.arange(3))
    loaded = load_npz(tmp_path / "data_3d.npz")
    assert set(loaded) == {"positions_3d", "count"} and np.array_equal(loaded["count"], np.arange(3))
    assert loaded["positions_3d"]["S1"]["Walking"].shape == (5, 32, 3)
    np.savez(tmp_path / "evil.npz", x=np.array({"x": Exploit()}, dtype=object))
    with pytest.raises(SafePickleError, match=r"evil\.npz\[x\]: refusing to unpickle"):
        load_npz(tmp_path / "evil.npz")
    (tmp_path / "bad.npz").write_text("nope")
    with pytest.raises(SafePickleError, match=r"bad\.npz: not a readable \.npz archive"):
        load_npz(tmp_path / "bad.npz")
