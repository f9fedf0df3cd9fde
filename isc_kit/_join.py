"""The relpath join under :func:`isc_kit.local.compare`: manifest rows x the folder's scan x the verified record.

One function, :func:`join`, two engines with one contract (the tests run both on the same cases):

- a dict of the manifest's relpaths (UTF-8 bytes -> row) for small folders: standard library only,
  so a small ``isc-kit fetch`` or ``verify`` starts without numpy or pyarrow;
- from :data:`ARROW_MIN` entries on, Arrow's hash join in C (``pyarrow.compute.index_in``): the
  scan's relpaths and every record line's relpath are looked up in the manifest's column at once,
  the record is parsed by RE2 block by block (no Python object per line), and the per-row
  arithmetic is numpy. pyarrow and numpy are imported here, lazily, only on this path.

The rules both follow: a relpath the manifest lists twice belongs to its last row; a record line
counts only if it is well formed (as :func:`isc_kit.records.iter_entries` reads it) and the latest
line of a relpath wins; ``recorded[row]`` is 0 (no line), 1 (same size and mtime as the local file,
the manifest's md5), 2 (same size and mtime, another md5) or 3 (the file changed since).
"""

from __future__ import annotations

import logging
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

from . import records

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from .destination import TreeScan
    from .manifest import Manifest

    #: A verified record's well-formed lines as columns: relpaths, sizes, mtimes, md5s.
    _Record = tuple[pa.LargeBinaryArray, np.ndarray, np.ndarray, pa.LargeBinaryArray]

logger = logging.getLogger(__name__)

#: Manifest entries + scanned files from which the Arrow engine pays for its import (~0.3 s).
ARROW_MIN = 50_000
_INT64 = 2**63
_BLOCK = 16 << 20  # record bytes parsed per step: bounded transient columns
_RECORD_LINE = r"^(?P<rel>[^\t\n]+)\t(?P<size>\d{1,19})\t(?P<mtime>-?\d{1,19})\t(?P<md5>[0-9a-f]{32})\n$"  # records._LINE, anchored for RE2 (bytes: any byte but tab and newline in a relpath)


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

    ``record_path=None`` reads no record (all 0). ``engine``: ``"dict"`` or ``"arrow"`` (default: by size).
    Clears ``tree.rels`` (a million strings are not needed past here).
    """
    if engine is None:
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
    # the manifest's relpaths reversed, so that index_in's "first match" is the dict's "last row"
    rels = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(manifest.relpaths.offsets), pa.py_buffer(manifest.relpaths.data)],
    )
    value_set = rels.take(pa.array(np.arange(n - 1, -1, -1, dtype=np.int64)))
    del rels
    scanned = _binary(tree.rels)
    rec = _read_record(record_path) if record_path is not None else None
    probe = scanned if rec is None else pa.concat_arrays([scanned, rec[0]])
    m = len(scanned)
    del scanned
    hit = pc.fill_null(pc.index_in(probe, value_set=value_set), -1).to_numpy().astype(np.int64)
    del probe, value_set
    rows = np.where(hit >= 0, (n - 1) - hit, -1)  # -1: the manifest does not list it
    del hit

    sizes, mtimes = np.frombuffer(lsize, np.int64), np.frombuffer(lmtime, np.int64)  # views: written in place
    srow = rows[:m]
    listed = srow >= 0
    sizes[srow[listed]] = np.frombuffer(tree.sizes, np.int64)[listed]
    mtimes[srow[listed]] = np.frombuffer(tree.mtimes, np.int64)[listed]
    extra.extend(tree.rels[i] for i in np.flatnonzero(~listed).tolist())
    if rec is None:
        return recorded

    _, rsize, rmtime, rmd5 = rec
    rrow = rows[m:]
    keep = rrow >= 0
    rrow, rsize, rmtime = rrow[keep], rsize[keep], rmtime[keep]
    rmd5 = rmd5.filter(pa.array(keep))
    md5s = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(manifest.md5s.offsets), pa.py_buffer(manifest.md5s.data)]
    )
    same_md5 = pc.equal(rmd5, md5s.take(pa.array(rrow))).to_numpy(zero_copy_only=False)
    same_file = (rsize == sizes[rrow]) & (rmtime == mtimes[rrow])
    state = np.where(same_file, np.where(same_md5, 1, 2), 3).astype(np.uint8)
    # the latest line of a relpath wins: the first occurrence in the reversed lines
    last_rows, first = np.unique(rrow[::-1], return_index=True)
    np.frombuffer(recorded, np.uint8)[last_rows] = state[::-1][first]
    return recorded


def _binary(strings: list[str]) -> pa.LargeBinaryArray:
    """The scan's relpaths as an Arrow binary column (UTF-8; undecodable names as their original bytes)."""
    import pyarrow as pa

    try:
        return pa.array(strings, pa.large_string()).view(pa.large_binary())
    except UnicodeEncodeError:  # a file name that is not UTF-8 (os.fsdecode's surrogates)
        return pa.array([s.encode("utf-8", "surrogateescape") for s in strings], pa.large_binary())


def _read_record(path: Path) -> _Record | None:
    """The well-formed lines of a verified record, in file order, exactly as :func:`records.iter_entries` reads them."""
    import numpy as np
    import pyarrow as pa

    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a missing record is an empty one
    except (FileNotFoundError, NotADirectoryError):
        return None
    parts: list[_Record] = []
    with fh:
        if fh.readline() != records.HEADER:
            logger.warning("%s: not a verified record (bad header); ignoring it", path)
            return None
        tail = b""
        while block := fh.read(_BLOCK):
            block = tail + block
            cut = block.rfind(b"\n") + 1
            tail = block[cut:]
            if cut:
                parts.append(_parse_lines(block, cut))
            del block
        # what is left after the last newline is a torn line: never a verified entry
    if not parts:
        return None
    return (
        pa.concat_arrays([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        pa.concat_arrays([p[3] for p in parts]),
    )


def _parse_lines(block: bytes, cut: int) -> _Record:
    """The well-formed lines of ``block[:cut]`` (whole lines): RE2 checks and splits each one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    buf = np.frombuffer(block, np.uint8, count=cut)
    ends = np.flatnonzero(buf == 10) + 1
    offsets = np.concatenate([np.zeros(1, np.int64), ends.astype(np.int64)])
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    )
    fields = pc.extract_regex(lines, _RECORD_LINE)
    del lines, offsets, ends, buf
    fields = fields.filter(fields.is_valid())
    size_s = fields.field("size").cast(pa.large_string())
    mtime_s = fields.field("mtime").cast(pa.large_string())
    # 19 digits may pass int64 (records.iter_entries drops such lines): check those few one by one
    long = pc.or_(
        pc.greater_equal(pc.binary_length(size_s), 19), pc.greater_equal(pc.binary_length(mtime_s), 19)
    )
    if pc.any(long).as_py():
        ok = np.ones(len(fields), bool)
        for i in np.flatnonzero(long.to_numpy(zero_copy_only=False)).tolist():
            s, t = int(size_s[i].as_py()), int(mtime_s[i].as_py())
            ok[i] = s < _INT64 and -_INT64 <= t < _INT64
        mask = pa.array(ok)
        fields, size_s, mtime_s = fields.filter(mask), size_s.filter(mask), mtime_s.filter(mask)
    return (
        fields.field("rel"),
        size_s.cast(pa.int64()).to_numpy(),
        mtime_s.cast(pa.int64()).to_numpy(),
        fields.field("md5"),
    )
