"""Fused kernels for the geometry's large batches that need no gradient: the same Python function, compiled.

Eager torch runs a function such as the DLT of ``core.geometry.triangulation`` as a few dozen passes over the
whole batch, each bound by memory; a point of 4 views needs a few hundred floating-point operations, so most of the
time goes to moving intermediate tensors. ``torch.compile`` fuses those passes into one loop over the points (C++ on
the CPU, Triton on CUDA): several times faster on large batches (docs/performance.md). Compiling takes seconds to a minute the first time
in a process (Inductor caches the result on disk for the next ones), so ``run`` compiles only batches of at least
``MIN_ELEMENTS`` elements and runs smaller ones eagerly; both run the same function, so their results agree to
rounding (the compiled code may contract multiply-adds and reorder sums: ~1e-15 relative).

``EPIPOSE_FUSED_GEOMETRY`` (environment) or ``fused_mode`` (a context manager, for tests and benchmarks) choose:
``auto`` (default: large batches compiled), ``off`` (never compiled) or ``always``. A compiler failure (no C++
compiler on the machine, say) logs one warning and turns compilation off for the process.
"""
import logging
import os
from contextlib import contextmanager
from typing import Callable, Dict

import torch

logger = logging.getLogger("epipose")

MODES = ("auto", "off", "always")
MIN_ELEMENTS = 1 << 16  # observations (points x views) from which a batch is compiled in mode auto

_mode = os.environ.get("EPIPOSE_FUSED_GEOMETRY", "auto")
if _mode not in MODES:
    raise ValueError(f"EPIPOSE_FUSED_GEOMETRY must be one of {', '.join(MODES)}, got {_mode!r}")
_compiled: Dict[Callable, Callable] = {}


@contextmanager
def fused_mode(mode: str):
    """Run the geometry's kernels in ``mode`` (auto, off, always) inside the block."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"fused_mode: mode must be one of {', '.join(MODES)}, got {mode!r}")
    previous, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = previous


def wants_fused(elements: int) -> bool:
    """Whether a batch of ``elements`` observations runs compiled in the current mode."""
    return _mode == "always" or (_mode == "auto" and elements >= MIN_ELEMENTS)


def run(function: Callable, elements: int, *args):
    """``function(*args)``, compiled when ``wants_fused(elements)``. The function must be free of data-dependent
    Python control flow (one graph) and is called without autograd."""
    global _mode
    if not wants_fused(elements):
        return function(*args)
    try:
        if function not in _compiled:
            _compiled[function] = torch.compile(function, dynamic=True, fullgraph=True)
        return _compiled[function](*args)
    except Exception as err:  # a missing or failing compiler: the eager function gives the same result
        logger.warning("compiling %s failed (%s: %s); the geometry runs eagerly from now on (slower on large "
                       "batches; EPIPOSE_FUSED_GEOMETRY=off skips the attempt)", function.__qualname__,
                       type(err).__name__, " ".join(str(err).split())[:200])
        _mode = "off"
        return function(*args)
