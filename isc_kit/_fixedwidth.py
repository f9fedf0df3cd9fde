"""Pandas string columns as fixed-width numpy byte arrays (``S<n>``): compact, picklable, no object per row.

When every value has the same length (image ids, ``<id>.jpg`` relpaths, MD5s), the Arrow data
buffer is reinterpreted in one copy; otherwise values go through Python strings once.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fixed_bytes(column: Any) -> np.ndarray:
    """``column`` (pandas, nulls as ``b""``) as an ``S<width>`` array of its ASCII values."""
    import pyarrow as pa

    large = pa.types.is_large_string
    try:
        arr = pa.array(column.array)
    except (TypeError, pa.ArrowException):
        arr = None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if (
        arr is not None
        and arr.null_count == 0
        and len(arr)
        and (pa.types.is_string(arr.type) or large(arr.type))
    ):
        _, offsets_buf, data_buf = arr.buffers()
        kind = np.int64 if large(arr.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=kind)[arr.offset : arr.offset + len(arr) + 1]
        widths = np.diff(offsets)
        width = int(widths[0])
        if width > 0 and (widths == width).all():
            data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
            if (data < 128).all():
                return data.view(f"S{width}").copy()
    return np.asarray(column.fillna("").to_numpy(dtype=str), dtype=np.bytes_)
