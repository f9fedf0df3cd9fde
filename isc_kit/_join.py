"""The relpath join under :func:`isc_kit.local.compare`: manifest rows x the folder's scan x the verified record.

One function, :func:`join`, two engines with one contract (the tests run both on the same cases):

- a dict of the manifest's relpaths (UTF-8 bytes -> row), the default: standard library only, so
  ``isc-kit fetch`` and ``verify`` start without numpy or pyarrow, and the leanest at 1M entries;
- with ``ISC_KIT_JOIN=arrow`` (or ``auto``: from :data:`ARROW_MIN` entries on), Arrow's hash join in
  C (``pyarrow.compute.index_in``), faster and heavier: the
  scan's relpaths and every record line's relpath are looked up in the manifest's column at once,
  the record is read by :func:`isc_kit.records.iter_blocks` (the one parser), and the per-row
  arithmetic is numpy. pyarrow and numpy are imported here, lazily, only on this path.

The rules both follow: a relpath the manifest lists twice belongs to its last row; a record line
counts only if it is well formed (as :func:`isc_kit.records.iter_entries` reads it) and the latest
line of a relpath wins; ``recorded[row]`` is 0 (no line), 1 (same size and mtime as the local file,
the manifest's md5), 2 (same size and mtime, another md5) or 3 (the file changed since).
"""

from __future__ import annotations

import logging
import os
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

from . import records
from .errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from .destination import TreeScan
    from .manifest import Manifest

    #: A verified record's well-formed lines as columns: relpaths, sizes, mtimes, md5s (strings in blocks).
    _Record = tuple[list[pa.LargeBinaryArray], np.ndarray, np.ndarray, list[pa.LargeBinaryArray]]

logger = logging.getLogger(__name__)

#: Manifest entries + scanned files from which the Arrow engine pays for its import (~0.3 s).
ARROW_MIN = 50_000
_INT64 = 2**63


def join(
    manifest: Manifest,
    tree: TreeScan,
    record_path: Path | None,
    lsize: array,
    lmtime: array,
    extra: list[str],
    *,
    engine: str | None = None,
) -> bytearray:
    """Fill ``lsize``/``lmtime`` per row from the scan, list unlisted files in ``extra``; return ``recorded``.

    ``record_path=None`` reads no record (all 0). ``engine``: ``"dict"``, ``"arrow"`` or ``"auto"`` (Arrow
    from :data:`ARROW_MIN` entries); default ``$ISC_KIT_JOIN``, else ``"dict"``: at 1,000,000 entries
    Arrow re-plans ~30 % faster but peaks ~120-250 MB higher (bench/RESULTS.md), and memory is the
    budget a million-file folder is held to. Clears ``tree.rels`` (a million strings are not needed past here).
    """
    if engine is None:
        engine = os.environ.get("ISC_KIT_JOIN", "").strip().lower() or "dict"
        if engine not in ("dict", "arrow", "auto"):
            raise ConfigError(f"ISC_KIT_JOIN={engine!r}: choose dict (the default), arrow or auto")
    if engine == "auto":
        engine = "arrow" if len(manifest) + len(tree.rels) >= ARROW_MIN else "dict"
    if engine == "arrow":
        recorded = _join_arrow(manifest, tree, record_path, lsize, lmtime, extra)
    elif engine == "dict":
        recorded = _join_dict(manifest, tree, record_path, lsize, lmtime, extra)
    else:
        raise ValueError(f"engine is 'dict' or 'arrow', not {engine!r}")
    tree.rels.clear()
    return recorded


def _join_dict(
    manifest: Manifest,
    tree: TreeScan,
    record_path: Path | None,
    lsize: array,
    lmtime: array,
    extra: list[str],
) -> bytearray:
    n = len(manifest)
    rels = manifest.relpaths
    data, ends = rels.data, rels.offsets
    index = {data[ends[i] : ends[i + 1]]: i for i in range(n)}  # UTF-8 bytes -> row (the last of a duplicate)
    get = index.get
    for rel, size, mtime in zip(tree.rels, tree.sizes, tree.mtimes, strict=True):
        row = get(rel.encode("utf-8", "surrogateescape"))
        if row is None:
            extra.append(rel)
        else:
            lsize[row], lmtime[row] = size, mtime
    recorded = bytearray(n)
    if record_path is not None:
        md5data, md5ends = manifest.md5s.data, manifest.md5s.offsets
        for rel_b, size, mtime, md5_b in records.iter_entries(record_path, raw=True):
            row = get(rel_b)
            if row is not None:
                if size == lsize[row] and mtime == lmtime[row]:
                    recorded[row] = 1 if md5_b == md5data[md5ends[row] : md5ends[row + 1]] else 2
                else:
                    recorded[row] = 3
    return recorded


def _join_arrow(
    manifest: Manifest,
    tree: TreeScan,
    record_path: Path | None,
    lsize: array,
    lmtime: array,
    extra: list[str],
) -> bytearray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(manifest)
    recorded = bytearray(n)
    if n == 0:
        extra.extend(tree.rels)
        return recorded
    rels = _large_binary(manifest.relpaths.data, manifest.relpaths.offsets)
    # index_in answers the first of equal values, the dict the last row: look duplicates up reversed
    unique = n < 2 or pc.all(pc.less(rels.slice(0, n - 1), rels.slice(1))).as_py()  # strictly sorted
    value_set = rels if unique else rels.take(_indices(np.arange(n - 1, -1, -1, dtype=np.int64)))
    del rels
    scanned = _binary(tree.rels)
    tree.rels.clear()  # a million strings: the unlisted names are decoded back from ``scanned``
    m = len(scanned)
    rec = _read_record(record_path) if record_path is not None else None
    probe = pa.chunked_array([scanned, *(rec[0] if rec else [])], pa.large_binary())
    hit = pc.index_in(probe, value_set=value_set)
    del probe, value_set
    found = np.concatenate([np.zeros(0, bool), *(_valid(c) for c in hit.chunks)])
    index = np.concatenate([np.zeros(0, np.int32), *(_values(c, np.int32) for c in hit.chunks)]).astype(
        np.int64
    )
    rows = np.where(found, index if unique else (n - 1) - index, -1)  # -1: the manifest does not list it
    del hit, found, index

    sizes, mtimes = np.frombuffer(lsize, np.int64), np.frombuffer(lmtime, np.int64)  # views: written in place
    srow = rows[:m]
    listed = srow >= 0
    sizes[srow[listed]] = np.frombuffer(tree.sizes, np.int64)[listed]
    mtimes[srow[listed]] = np.frombuffer(tree.mtimes, np.int64)[listed]
    unlisted = np.flatnonzero(~listed).tolist()
    if unlisted:
        data, ends = scanned.buffers()[2].to_pybytes(), np.frombuffer(scanned.buffers()[1], np.int64).tolist()
        extra.extend(data[ends[i] : ends[i + 1]].decode("utf-8", "surrogateescape") for i in unlisted)
    del scanned, srow, listed
    if rec is None:
        return recorded

    rrow = rows[m:]
    keep = rrow >= 0
    rrow = rrow[keep]
    same_file = (rec[1][keep] == sizes[rrow]) & (rec[2][keep] == mtimes[rrow])
    rmd5 = pa.chunked_array(rec[3], pa.large_binary()).take(_indices(np.flatnonzero(keep)))
    del rec, rows, keep
    md5s = _large_binary(manifest.md5s.data, manifest.md5s.offsets)
    same = pc.equal(rmd5, md5s.take(_indices(rrow))).cast(pa.uint8())
    same_md5 = np.concatenate([np.zeros(0, np.uint8), *(_values(c, np.uint8) for c in same.chunks)]) == 1
    state = np.where(same_file, np.where(same_md5, 1, 2), 3).astype(np.uint8)
    # the latest line of a relpath wins: the first occurrence in the reversed lines
    last_rows, first = np.unique(rrow[::-1], return_index=True)
    np.frombuffer(recorded, np.uint8)[last_rows] = state[::-1][first]
    return recorded


def _large_binary(data: bytes, offsets: array) -> pa.LargeBinaryArray:
    """A zero-copy Arrow view of a :class:`~isc_kit.columns.StrColumn`'s two buffers."""
    import pyarrow as pa

    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _binary(strings: list[str]) -> pa.LargeBinaryArray:
    """The scan's relpaths as an Arrow binary column (UTF-8; undecodable names as their original bytes)."""
    import numpy as np
    import pyarrow as pa

    if not strings:
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), 0, [None, pa.py_buffer(np.zeros(1, np.int64)), pa.py_buffer(b"")]
        )
    # no file name holds NUL: join on it, encode once (undecodable names back to their bytes), cut
    joined = np.frombuffer(("\0".join(strings) + "\0").encode("utf-8", "surrogateescape"), np.uint8)
    seps = np.flatnonzero(joined == 0)
    offsets = np.zeros(len(seps) + 1, np.int64)
    offsets[1:] = seps - np.arange(len(seps))  # each separator before a name shifts it by one
    data = joined[joined != 0]
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(seps), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _read_record(path: Path) -> _Record | None:
    """The well-formed lines of a verified record, in file order, as :func:`records.iter_blocks` reads them."""
    import numpy as np
    import pyarrow as pa

    rels: list[pa.LargeBinaryArray] = []
    sizes: list[np.ndarray] = []
    mtimes: list[np.ndarray] = []
    md5s: list[pa.LargeBinaryArray] = []
    for block_rels, block_sizes, block_mtimes, block_md5s in records.iter_blocks(path):
        rels.append(pa.array(block_rels, pa.large_binary()))
        sizes.append(np.array(block_sizes, np.int64))
        mtimes.append(np.array(block_mtimes, np.int64))
        md5s.append(pa.array(block_md5s, pa.large_binary()))
    if not rels:
        return None
    return rels, np.concatenate(sizes), np.concatenate(mtimes), md5s


# pyarrow's own conversions between numpy and Arrow import pandas when it is installed (~0.5 s):
# these go through the buffers instead, so the fetch CLI never loads it.


def _indices(rows: np.ndarray) -> pa.Int64Array:
    import numpy as np
    import pyarrow as pa

    rows = np.ascontiguousarray(rows, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


def _values(arr: pa.Array, dtype: type) -> np.ndarray:
    """The values of a fixed-width Arrow array, as a numpy view (slots under nulls are arbitrary)."""
    import numpy as np

    return np.frombuffer(
        arr.buffers()[1], dtype, count=len(arr), offset=arr.offset * np.dtype(dtype).itemsize
    )


def _valid(arr: pa.Array) -> np.ndarray:
    """Which slots of an Arrow array are not null, as numpy booleans."""
    import numpy as np

    bitmap = arr.buffers()[0]
    if bitmap is None or arr.null_count == 0:
        return np.ones(len(arr), bool)
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + len(arr)].astype(bool)
