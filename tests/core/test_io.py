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


def test_temporaries_of_dead_processes_are_removed(tmp_path):
    import os
    import subprocess
    import sys
    from core.io import HOST, remove_stale_temporaries, temporary_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / "videos").mkdir()
    (tmp_path / f".model_epoch0003.tmp{dead_pid}-{HOST}.pth").write_text("half")
    (tmp_path / "videos" / f".S9_walk.tmp{dead_pid}-{HOST}.mp4").write_text("half")
    temporary_path(tmp_path / "metrics.json").write_text("being written by this process")
    (tmp_path / f".other.tmp{dead_pid}-elsewhere.pth").write_text("another machine's writer")
    (tmp_path / ".hidden").write_text("not ours")
    (tmp_path / "model_epoch0002.pth").write_text("complete")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(
        [f".model_epoch0003.tmp{dead_pid}-{HOST}.pth", f"videos/.S9_walk.tmp{dead_pid}-{HOST}.mp4"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [temporary_path(tmp_path / "metrics.json").name, f".other.tmp{dead_pid}-elsewhere.pth", ".hidden",
         "model_epoch0002.pth", "videos"])
