"""Deterministic seeds for the synthetic world, derived from names (independent of Python's
per-process string hashing), and the one check of a user-given seed."""
import zlib

import numpy as np


def stable_seed(*parts) -> int:
    """A 32-bit seed that depends only on ``parts``."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def seeded_rng(*keys) -> np.random.Generator:
    """A generator seeded by the keys' CRC-32 values."""
    return np.random.default_rng([zlib.crc32(str(k).encode()) for k in keys])


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
