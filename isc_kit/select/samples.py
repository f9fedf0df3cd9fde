"""Seeded samples that are the same on every machine and library version.

Each id gets the key ``splitmix64(splitmix64(seed) XOR (ord(letter) << 40 | number))`` (unsigned
64-bit arithmetic) and the ``n`` ids with the smallest keys are taken. A larger sample with the same
seed contains the smaller one, and the result does not depend on the manifest's row order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from .ids import id_numbers

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def sample_keys(ids: pa.ChunkedArray | Sequence[str], seed: int) -> np.ndarray:
    """The documented per-id sort key of a seeded sample (uint64)."""
    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), pa.string())
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    letters = np.asarray(pc.utf8_slice_codeunits(arr, 0, 1).cast(pa.binary()).to_numpy(zero_copy_only=False))
    codes = np.frombuffer(b"".join(letters), dtype=np.uint8).astype(np.uint64)
    numbers = id_numbers(arr).astype(np.uint64)
    seed_key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    return _splitmix64(seed_key ^ ((codes << np.uint64(40)) | numbers))


def sample_mask(ids: pa.ChunkedArray | Sequence[str], n: int, seed: int) -> np.ndarray:
    """Mask of the ``n`` ids with the smallest seeded keys (all of them when ``n`` >= len)."""
    if n < 0:
        raise ConfigError(f"sample size must be 0 or more, not {n}")
    keys = sample_keys(ids, seed)
    keep = np.zeros(len(keys), dtype=bool)
    if n >= len(keys):
        keep[:] = True
    elif n > 0:
        keep[np.argpartition(keys, n - 1)[:n]] = True
    return keep


def sample_ids(ids: Sequence[str], n: int, seed: int) -> list[str]:
    """The seeded sample of ``ids`` in sample order (smallest key first)."""
    keys = sample_keys(ids, seed)
    order = np.argsort(keys, kind="stable")[: max(n, 0)]
    return [ids[i] for i in order]


# ---------------------------------------------------------------------------------------------- all together
