"""Timing helpers for the benchmark scripts under ``scripts/`` (never used by tests)."""
import platform
import statistics
import time
from typing import Callable, Optional

import numpy as np
import torch


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 3,
                   device: Optional[torch.device] = None) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls (CUDA synchronised)."""
    def synchronise():
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronise()
        start = time.perf_counter()
        fn()
        synchronise()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def environment(device: Optional[torch.device] = None) -> str:
    """One line naming the device, the threads and the library versions."""
    if device is not None and device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    return (f"device: {name}; python {platform.python_version()}, torch {torch.__version__}, "
            f"numpy {np.__version__}")
