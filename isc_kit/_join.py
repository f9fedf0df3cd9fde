"""The relpath join under :func:`isc_kit.local.compare`: manifest rows x the folder's scan x the verified record.

One function, :func:`join`, with two executions and one contract (the tests run both on the same
cases against a plain-Python oracle):

- ``loops``, for small folders: standard library only, so ``isc-kit fetch`` and ``verify`` start
  without numpy. The manifest's relpaths become one dict (UTF-8 bytes -> row, built by
  ``dict(zip(...))`` in C) and names are looked up with ``map(dict.get, ...)``, also in C.
- ``numpy``, from :data:`VECTOR_MIN` entries on: scatter, compare and "latest line wins" as array
  operations. When the relpaths are *numbered* (one width, differing only in digits, as every ISC
  set's ``R000000.jpg``... are), a name's row is read from its digits through a dense table, with
  no hashing and no Python object per name; other manifests use the dict. When the scan is handed
  over as a callable (``compare()`` runs the C lister in a thread; it holds no GIL), the lookup is
  built and the record read while the folder is listed.

The rules both follow: a relpath the manifest lists twice belongs to its last row; a record line
counts only if it is well formed (as :func:`isc_kit.records.iter_blocks` reads it) and the latest
line of a relpath wins; ``recorded[row]`` is 0 (no line), 1 (same size and mtime as the local file,
the manifest's md5), 2 (same size and mtime, another md5) or 3 (the file changed since).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import records

if TYPE_CHECKING:
    import numpy as np

    from .columns import StrColumn
    from .destination import TreeScan
    from .manifest import Manifest

#: Manifest entries + scanned files from which the numpy execution pays for its import (~0.1 s).
VECTOR_MIN = 50_000
EXECUTIONS = ("loops", "numpy")


def join(
    manifest: Manifest,
    scan: TreeScan | Callable[[], TreeScan],
    record_path: Path | None,
    lsize: array,
    lmtime: array,
    extra: list[str],
    *,
    execution: str | None = None,
) -> tuple[TreeScan, bytearray]:
    """Fill ``lsize``/``lmtime`` per row from the scan, list unlisted files in ``extra``; return the scan and ``recorded``.

    ``scan`` is a :class:`~isc_kit.destination.TreeScan` or a callable that waits for one.
    ``record_path=None`` reads no record (all 0). ``execution``: ``"loops"`` or ``"numpy"`` (default:
    numpy from :data:`VECTOR_MIN` entries). Releases the scan's names (a million of them are not
    needed past here).
    """
    if execution is None:
        execution = "numpy" if len(manifest) >= VECTOR_MIN else "loops"
    if execution not in EXECUTIONS:
        raise ValueError(f"execution is 'loops' or 'numpy', not {execution!r}")
    if execution == "numpy":
        lookup = _lookup(manifest.relpaths)
        # the record first: it needs no scan, which may still be running
        seen = _read_record_numpy(manifest, lookup, record_path)
        tree = scan() if callable(scan) else scan
        recorded = _join_numpy(lookup, tree, seen, lsize, lmtime, extra)
    else:
        tree = scan() if callable(scan) else scan
        index = _row_index(manifest.relpaths, vector=False)
        recorded = _join_loops(manifest, index, tree, record_path, lsize, lmtime, extra)
    tree.release()
    return tree, recorded


def _row_index(rels: StrColumn, *, vector: bool) -> dict[bytes, int]:
    """UTF-8 relpath -> row; a relpath listed twice maps to its last row (``dict`` keeps the last)."""
    data, ends = rels.data, rels.offsets
    n = len(ends) - 1
    if vector and n and b"\0" not in data:  # no path holds NUL: cut once in C
        import numpy as np

        joined = np.insert(np.frombuffer(data, np.uint8), np.frombuffer(ends, np.int64)[1:], 0).tobytes()
        keys = joined.split(b"\0")
        del joined
        keys.pop()
    else:
        keys = [data[ends[i] : ends[i + 1]] for i in range(n)]
    return dict(zip(keys, range(n), strict=True))


def _join_loops(
    manifest: Manifest,
    index: dict[bytes, int],
    tree: TreeScan,
    record_path: Path | None,
    lsize: array,
    lmtime: array,
    extra: list[str],
) -> bytearray:
    get = index.get
    keys = tree.names_utf8().split(b"\0")  # no file name holds NUL
    keys.pop()
    for rel, row, size, mtime in zip(
        tree.rels, map(get, keys, repeat(-1)), tree.sizes, tree.mtimes, strict=True
    ):
        if row < 0:
            extra.append(rel)
        else:
            lsize[row], lmtime[row] = size, mtime
    recorded = bytearray(len(manifest))
    if record_path is not None:
        md5s = manifest.md5s
        for rels, sizes, mtimes, md5_list in records.iter_blocks(record_path):
            for row, size, mtime, md5 in zip(
                map(get, rels, repeat(-1)), sizes, mtimes, md5_list, strict=True
            ):
                if row >= 0:
                    if size == lsize[row] and mtime == lmtime[row]:
                        recorded[row] = 1 if md5 == md5s.raw(row) else 2
                    else:
                        recorded[row] = 3
    return recorded


#: Per row, the latest record line of its relpath: size (-1: no line), mtime, md5 same as the manifest's.
_Seen = tuple["np.ndarray", "np.ndarray", "np.ndarray"]
#: UTF-8 relpaths, each followed by NUL, and how many -> their rows as int64 (-1: not listed).
_Lookup = Callable[[bytes, int], "np.ndarray"]


def _lookup(rels: StrColumn) -> _Lookup:
    """The manifest's relpath -> row function: by number when the relpaths are numbered, else the dict."""
    import numpy as np

    numbered = _Numbered.of(rels)
    if numbered is not None:
        return numbered.rows
    get = _row_index(rels, vector=True).get
    return lambda joined, count: np.fromiter(map(get, joined.split(b"\0"), repeat(-1)), np.int64, count)


class _Numbered:
    """Relpaths of one width that differ only in decimal digits (``R000000.jpg`` ...): a row per number.

    A lookup reads each name's digit bytes as a number and the row from a dense table, with no
    hashing and no per-name Python object touched; a name of another width or with other bytes
    in the fixed places is not listed.
    """

    def __init__(
        self, width: int, fixed: np.ndarray, first: np.ndarray, digits: np.ndarray, table: np.ndarray
    ):
        self.width, self.fixed, self.first, self.digits, self.table = width, fixed, first, digits, table

    @classmethod
    def of(cls, rels: StrColumn) -> _Numbered | None:
        import numpy as np

        n = len(rels)
        ends = np.frombuffer(rels.offsets, np.int64)
        width = len(rels.data) // n if n else 0
        if not width or len(rels.data) != n * width or np.any(np.diff(ends) != width):
            return None
        grid = np.frombuffer(rels.data, np.uint8).reshape(n, width)
        varies = grid.min(axis=0) != grid.max(axis=0)
        digits = np.flatnonzero(varies)
        if not 0 < len(digits) <= 18:
            return None
        cols = grid[:, digits]
        cols -= np.uint8(48)  # a copy: bytes below "0" wrap past 9
        if cols.max() > 9:
            return None
        numbers = cls._number(cols)
        del cols
        top = int(numbers.max())
        if top >= 4 * n + 1024:  # sparse numbers: a table would be mostly empty
            return None
        table = np.full(top + 1, -1, np.int64)
        table[numbers] = np.arange(n)
        if np.count_nonzero(table >= 0) != n:  # a relpath listed twice: the dict knows "last row"
            return None
        return cls(width, np.flatnonzero(~varies), grid[0].copy(), digits, table)

    @staticmethod
    def _number(cols: np.ndarray) -> np.ndarray:
        import numpy as np

        out = np.zeros(len(cols), np.int64)
        for k in range(cols.shape[1]):
            out *= 10
            out += cols[:, k]
        return out

    def rows(self, joined: bytes, count: int) -> np.ndarray:
        import numpy as np

        width, buf = self.width, np.frombuffer(joined, np.uint8)
        grid = buf.reshape(count, width + 1) if len(buf) == count * (width + 1) else None
        if grid is not None and not np.any(grid[:, width]):  # every name this wide: views, nothing gathered
            which, size = None, count
            column = grid.__getitem__
            at: Any = slice(None)
        else:
            ends = np.flatnonzero(buf == 0)
            starts = np.concatenate(([0], ends[:-1] + 1))
            which = np.flatnonzero(ends - starts == width)
            del ends
            at, size = starts[which], len(which)
            column = buf.__getitem__
        ok = np.ones(size, bool)
        for j in self.fixed.tolist():
            ok &= column((at, j) if which is None else at + j) == self.first[j]
        number = np.zeros(size, np.int64)
        for j in self.digits.tolist():
            digit = column((at, j) if which is None else at + j) - np.uint8(48)  # below "0" wraps past 9
            ok &= digit <= 9
            number *= 10
            number += digit
        ok &= number < len(self.table)
        number[~ok] = 0
        rows = self.table[number]
        rows[~ok] = -1
        if which is None:
            return rows
        out = np.full(count, -1, np.int64)
        out[which] = rows
        return out


def _joined(keys: list[bytes]) -> bytes:
    """Record relpaths each followed by NUL; one holding NUL (never a file's name) becomes empty."""
    joined = b"\0".join(keys) + b"\0"
    if joined.count(b"\0") != len(keys):
        joined = b"\0".join(b"" if b"\0" in k else k for k in keys) + b"\0"
    return joined


def _read_record_numpy(manifest: Manifest, lookup: _Lookup, record_path: Path | None) -> _Seen | None:
    """The record reduced to one line per manifest row (the latest), as three dense arrays."""
    import numpy as np

    if record_path is None:
        return None
    n = len(manifest)
    sizes, mtimes, same = np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    want = _fixed_md5s(manifest.md5s)
    for rels, block_sizes, block_mtimes, md5s in records.iter_blocks(record_path):
        rows = lookup(_joined(rels), len(rels))
        keep = np.flatnonzero(rows >= 0)
        rows = rows[keep]
        # a relpath twice in a block: its latest line is the first in the reversed block
        rows, last = np.unique(rows[::-1], return_index=True)
        keep = keep[::-1][last]
        sizes[rows] = np.array(block_sizes, np.int64)[keep]
        mtimes[rows] = np.array(block_mtimes, np.int64)[keep]
        line_md5s = np.frombuffer(b"".join(md5s), "S32")[keep]  # records hold 32 hex digits a line
        if want is not None:
            same[rows] = line_md5s == want[rows]
        else:
            raw = manifest.md5s.raw
            same[rows] = [m == raw(r) for m, r in zip(line_md5s.tolist(), rows.tolist(), strict=True)]
    return sizes, mtimes, same


def _fixed_md5s(md5s: StrColumn) -> np.ndarray | None:
    """The manifest's md5s as fixed-width ``S32`` (b"" where unknown), or None if any is another length."""
    import numpy as np

    if len(md5s.data) == 32 * len(md5s):  # every md5 known: the column itself
        return np.frombuffer(md5s.data, "S32")
    lengths = np.diff(np.frombuffer(md5s.offsets, np.int64))
    known = lengths == 32
    if not np.all(known | (lengths == 0)):
        return None
    out = np.zeros(len(lengths), "S32")
    out[known] = np.frombuffer(md5s.data, "S32")
    return out


def _join_numpy(
    lookup: _Lookup,
    tree: TreeScan,
    seen: _Seen | None,
    lsize: array,
    lmtime: array,
    extra: list[str],
) -> bytearray:
    import numpy as np

    m = len(tree)
    rows = lookup(tree.names_utf8(), m)
    listed = rows >= 0
    sizes, mtimes = np.frombuffer(lsize, np.int64), np.frombuffer(lmtime, np.int64)  # views: written in place
    if m:
        at = rows[listed]
        sizes[at] = np.frombuffer(tree.sizes, np.int64)[listed]
        mtimes[at] = np.frombuffer(tree.mtimes, np.int64)[listed]
        del at
    unlisted = np.flatnonzero(~listed).tolist()
    if unlisted:  # rare: only then are the names decoded
        rels = tree.rels
        extra.extend(rels[i] for i in unlisted)
    tree.release()  # a million names, no longer needed
    del rows, listed
    recorded = bytearray(len(sizes))
    if seen is not None:
        rsize, rmtime, same = seen
        state = np.frombuffer(recorded, np.uint8)  # a view: written in place
        fresh = (rsize == sizes) & (rmtime == mtimes)
        state[:] = 3
        state[fresh] = 2
        state[fresh & same] = 1
        state[rsize < 0] = 0
    return recorded
