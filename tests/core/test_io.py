import json

import numpy as np
import pytest

from core.io import atomic_write, save_npz_atomic, write_json_atomic


def test_atomic_writers_leave_only_the_named_file(tmp_path):
    write_json_atomic({"a": 1}, tmp_path / "m.json")
    save_npz_atomic({"x": np.arange(3)}, tmp_path / "p.npz")
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert np.load(tmp_path / "p.npz")["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "p.npz"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "m.json"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["m.json"]
