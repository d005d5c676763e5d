"""Atomic file writes: write to a temporary file in the destination folder, then rename.

A run killed mid-write leaves either the old file or the new one, never a half-written file.
"""
import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path``; the temporary file never survives."""
    path = Path(path)
    # the suffix is kept so that writers which add one (numpy's .npz) write the named file
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(text: str, path) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(data, path) -> Path:
    return write_text_atomic(json.dumps(data, indent=2), path)


def save_npz_atomic(arrays, path) -> Path:
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)(\.[^.]*)?$")


def remove_stale_temporaries(folder) -> list:
    """Delete the temporary files that ``atomic_write`` left in ``folder`` when its process was killed (SIGKILL
    leaves no chance to clean up): those whose writing process is gone. Returns their names."""
    removed = []
    for path in Path(folder).iterdir():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _process_alive(int(match.group(1))):
            path.unlink()
            removed.append(path.name)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
