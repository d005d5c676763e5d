"""Read pickled annotation files (and ``.npy`` files holding pickled objects) without running code.

Public Human3.6M preprocessings ship their labels as pickles: the H36M-Toolbox ``.pkl``, the
learnable-triangulation ``.npy`` (a dict saved with ``np.save``, which pickles it) and VideoPose3D's
``.npz`` archives of dicts. ``pickle.load``
on such a file runs whatever code the file names, so these readers allow only what data needs:
Python containers, strings and numbers (pickle's own opcodes), numpy arrays (every protocol), dtypes and scalars,
``collections.OrderedDict`` and ``_codecs.encode`` (protocol-2 pickles store bytes through it). Any
other global stops the read with ``SafePickleError`` naming the file and the global. Byte strings
of Python 2 pickles decode as latin-1, which their numpy buffers need.
"""
import codecs
import collections
import io
import pickle
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any, Dict

import numpy as np

_RECONSTRUCT = np.zeros(0).__reduce__()[0]        # numpy's array and scalar rebuilders, found through
_SCALAR = np.float64(0).__reduce__()[0]           # the public pickling protocol, not private modules
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]     # protocol 5 arrays
_ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("collections", "OrderedDict"): collections.OrderedDict, ("_codecs", "encode"): codecs.encode}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):   # numpy 1.x and 2.x pickles
    _ALLOWED[(_module, "_reconstruct")] = _RECONSTRUCT
    _ALLOWED[(_module, "scalar")] = _SCALAR
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _FROMBUFFER


class SafePickleError(ValueError):
    """A pickle that is malformed or names something other than plain data."""


class _DataOnlyUnpickler(pickle.Unpickler):
    def __init__(self, stream, source: str):
        super().__init__(stream, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise SafePickleError(f"{self.source}: refusing to unpickle '{module}.{name}': only plain data "
                                  f"(containers, numbers, strings, numpy arrays) is allowed") from None


def _unpickle(stream, source: str):
    try:
        return _DataOnlyUnpickler(stream, source).load()
    except SafePickleError:
        raise
    except Exception as err:  # noqa: BLE001  (any parse failure of a corrupt file)
        reason = " ".join(str(err).split())   # one line, whatever the unpickler's message
        raise SafePickleError(f"{source}: not a readable pickle ({type(err).__name__}: {reason})") from None


def load_pickle(path):
    """The object pickled in ``path``, allowing plain data only."""
    path = Path(path)
    if not path.is_file():
        raise SafePickleError(f"{path}: file not found")
    with path.open("rb") as stream:
        return _unpickle(stream, str(path))


def load_npy(path):
    """The array in an ``.npy`` file; a 0-d object array (a pickled dict, as ``np.save`` writes one)
    comes back as the object itself, unpickled with the plain-data rules."""
    path = Path(path)
    if not path.is_file():
        raise SafePickleError(f"{path}: file not found")
    with path.open("rb") as stream:
        return _read_npy(stream, str(path))


def load_npz(path) -> Dict[str, Any]:
    """{name: array or object} of an ``.npz`` archive, each member read as ``load_npy`` reads a file
    (VideoPose3D's ``positions_3d`` / ``positions_2d`` are pickled dicts inside the archive)."""
    path = Path(path)
    if not path.is_file():
        raise SafePickleError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".npy")]
            result = {}
            for name in members:
                with archive.open(name) as member:
                    result[name[:-4]] = _read_npy(io.BytesIO(member.read()), f"{path}[{name[:-4]}]")
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as err:  # damaged archives
        raise SafePickleError(f"{path}: not a readable .npz archive ({type(err).__name__}: {err})") from None
    return result


NPY_HEADER_ERRORS = (ValueError, SyntaxError, tokenize.TokenError, EOFError, OSError, MemoryError, OverflowError)


def _read_npy(stream, source: str):
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    except NPY_HEADER_ERRORS as err:  # numpy parses the header with ast and tokenize
        raise SafePickleError(f"{source}: not an .npy file ({type(err).__name__}: {err})") from None
    if not dtype.hasobject:
        data_start = stream.tell()
        left = stream.seek(0, io.SEEK_END) - data_start
        claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if claimed > left:  # a damaged header must not make numpy allocate what the file does not hold
            raise SafePickleError(f"{source}: the .npy header announces {claimed} bytes of data, the file holds {left}")
        stream.seek(0)
        try:
            return np.load(stream, allow_pickle=False)
        except NPY_HEADER_ERRORS as err:
            raise SafePickleError(f"{source}: malformed .npy data ({type(err).__name__}: {err})") from None
    payload = _unpickle(io.BytesIO(stream.read()), source)
    if shape == () and isinstance(payload, np.ndarray) and payload.shape == () and payload.dtype == object:
        return payload.item()
    return payload
