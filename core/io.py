"""Atomic file writes: write to a temporary file in the destination folder, then rename.

A run killed mid-write leaves either the old file or the new one, never a half-written file.
"""
import json
import os
import re
import socket
from pathlib import Path
from typing import Callable

import numpy as np


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path``; the temporary file never survives. The file and
    then its folder are flushed to disk (fsync), so that once this returns the new file outlives a power loss and
    what it replaces may be deleted."""
    path = Path(path)
    # the suffix is kept so that writers which add one (numpy's .npz) write the named file
    tmp = temporary_path(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def temporary_path(path) -> Path:
    """Where ``path`` is written before the rename: a hidden name in the same folder that names the writing
    process and its machine, so that a later run can tell a dead writer's leftovers from a live one's."""
    path = Path(path)
    # the suffix is kept so that writers which add one (numpy's .npz) write the named file
    return path.with_name(f".{path.stem}.tmp{os.getpid()}-{HOST}{path.suffix}")


def write_text_atomic(text: str, path) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(data, path) -> Path:
    return write_text_atomic(json.dumps(data, indent=2), path)


def save_npz_atomic(arrays, path) -> Path:
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)-([A-Za-z0-9-]+)(\.[^.]*)?$")


def remove_stale_temporaries(folder) -> list:
    """Delete the temporary files (``temporary_path``) left in ``folder`` and its subfolders by processes of this
    machine that were killed (SIGKILL leaves no chance to clean up). Files of live processes, and of other
    machines sharing the folder, are kept. Returns their paths relative to ``folder``."""
    removed = []
    folder = Path(folder)
    for path in folder.rglob(".*.tmp*"):
        match = _TEMPORARY.match(path.name)
        if match and match.group(2) == HOST and path.is_file() and not _process_alive(int(match.group(1))):
            path.unlink()
            removed.append(str(path.relative_to(folder)))
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
