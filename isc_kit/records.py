"""The verified record: which local files were MD5-checked, and as which bytes (size, mtime).

A destination folder holds exactly the images, so the record lives beside it, never in it:
``<dest parent>/.isc-kit/<dest name>.verified``. It is a text file, one line per verified file::

    # isc-kit verified v1
    relpath<TAB>size<TAB>mtime_ns<TAB>md5

Writers append one line per file as soon as it is verified (a single ``write`` of a short line,
so concurrent appenders and a ``kill -9`` leave at most one torn last line, which readers
skip), and :func:`compact` rewrites it atomically. Later lines win. A file counts as verified
only while its size and ``mtime_ns`` still equal the recorded ones.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import DestinationError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

RECORD_DIR = ".isc-kit"
RECORD_SUFFIX = ".verified"
HEADER = "# isc-kit verified v1\n"
_MD5 = re.compile(r"[0-9a-f]{32}")
_COLUMNS = ("relpath", "size", "mtime_ns", "md5")
_INT64 = 2**63
_LINE = re.compile(rb"[^\t\n]+\t\d+\t-?\d+\t[0-9a-f]{32}\n")


class VerifiedEntry(NamedTuple):
    """What a file was when its MD5 was checked."""

    size: int
    mtime_ns: int
    md5: str


def record_path(dest: str | os.PathLike[str]) -> Path:
    """``<dest parent>/.isc-kit/<dest name>.verified`` (outside the tracked folder)."""
    d = Path(os.path.abspath(dest))
    return d.parent / RECORD_DIR / (d.name + RECORD_SUFFIX)


def read_table(dest: str | os.PathLike[str]) -> pa.Table:
    """The record as an Arrow table (``relpath, size, mtime_ns, md5``), one row per relpath; empty if none.

    Lines that are malformed or torn are skipped; of several lines for a file the last valid one
    wins. Rows come sorted by relpath when the file had duplicates, else in file order. Memory
    is the columns themselves (~70 MB for 1M files), never one Python object per line.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    path = record_path(dest)
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
            body = fh.read(4096)
    except FileNotFoundError:
        return _empty()
    if first != HEADER.encode():
        logger.warning("%s: not a verified record (bad header); ignoring it", path)
        return _empty()
    if len(body) < 4096 and not body.strip():
        return _empty()
    try:  # Arrow reads the file itself, in blocks: never its text as one Python object
        parsed = pacsv.read_csv(
            str(path),
            read_options=pacsv.ReadOptions(
                column_names=list(_COLUMNS), skip_rows=1, use_threads=False, block_size=1 << 22
            ),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=_skip),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(_COLUMNS, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, OSError) as err:
        logger.warning("%s: unreadable (%s); ignoring it", path, err)
        return _empty()
    parts = [_valid_rows(batch) for batch in parsed.to_batches()]
    del parsed
    table = pa.Table.from_batches(parts, schema=_empty().schema) if parts else _empty()
    del parts
    if pc.count_distinct(table["relpath"]).as_py() != table.num_rows:
        # latest line per file: a stable sort by relpath keeps file order within a file's lines
        order = pc.sort_indices(table, sort_keys=[("relpath", "ascending")])
        rels = pc.take(table["relpath"], order)
        last = pc.not_equal(rels[:-1], rels[1:])
        keep = pa.concat_arrays([*last.chunks, pa.array([True])])
        table = table.take(pc.filter(order, keep))
    pa.default_memory_pool().release_unused()  # parse buffers back to the system, not kept by Arrow
    return table


def _valid_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The well-formed lines of a parsed block, with size and mtime as int64."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rel, size, mtime, md5 = batch.columns
    good = pc.and_(
        pc.and_(pc.greater(pc.binary_length(rel), 0), pc.match_substring_regex(md5, _MD5.pattern + "$")),
        pc.and_(_int64_text(size, signed=False), _int64_text(mtime, signed=True)),
    )
    if not pc.all(good).as_py():
        batch = batch.filter(good)
        rel, size, mtime, md5 = batch.columns
    return pa.record_batch(
        [rel, pc.cast(size, pa.int64()), pc.cast(mtime, pa.int64()), md5], names=list(_COLUMNS)
    )


def _int64_text(values: pa.ChunkedArray, *, signed: bool) -> pa.ChunkedArray:
    """True where ``values`` is a decimal integer that fits in int64."""
    import pyarrow.compute as pc

    ok = pc.match_substring_regex(values, r"^-?\d{1,19}$" if signed else r"^\d{1,19}$")
    n = pc.utf8_length(values)
    fits = pc.or_(
        pc.less(n, 19),
        pc.or_(
            pc.and_(pc.equal(n, 19), pc.less_equal(values, "9223372036854775807")),
            pc.and_(pc.equal(n, 20), pc.less_equal(values, "-9223372036854775808")),
        ),
    )
    return pc.and_(ok, fits)


def load_table(dest: str | os.PathLike[str]) -> pd.DataFrame:
    """The record as a DataFrame (``relpath, size, mtime_ns, md5``), last line per relpath; empty if none."""
    import pandas as pd
    import pyarrow as pa

    return read_table(dest).to_pandas(
        types_mapper=lambda t: pd.StringDtype("pyarrow") if t == pa.string() else None
    )


def _skip(row: object) -> str:
    return "skip"


def _empty() -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "relpath": pa.array([], pa.string()),
            "size": pa.array([], pa.int64()),
            "mtime_ns": pa.array([], pa.int64()),
            "md5": pa.array([], pa.string()),
        }
    )


def load_verified(dest: str | os.PathLike[str]) -> dict[str, VerifiedEntry]:
    """relpath -> :class:`VerifiedEntry` for every file the record lists (whether or not it still matches)."""
    t = read_table(dest)
    return {
        r: VerifiedEntry(s, m, h)
        for r, s, m, h in zip(
            t["relpath"].to_pylist(),
            t["size"].to_pylist(),
            t["mtime_ns"].to_pylist(),
            t["md5"].to_pylist(),
            strict=True,
        )
    }


def verified_md5(
    dest: str | os.PathLike[str],
    relpath: str,
    stat_result: os.stat_result,
    *,
    records: dict[str, VerifiedEntry] | None = None,
) -> str | None:
    """The recorded md5 of ``relpath`` if the file (as ``stat_result`` shows it) is unchanged since verified.

    Pass ``records`` (from :func:`load_verified`) when asking about many files.
    """
    entry = (records if records is not None else load_verified(dest)).get(relpath)
    if entry is None:
        return None
    if entry.size != stat_result.st_size or entry.mtime_ns != stat_result.st_mtime_ns:
        return None
    return entry.md5


def format_line(relpath: str, size: int, mtime_ns: int, md5: str) -> bytes:
    return f"{relpath}\t{size}\t{mtime_ns}\t{md5}\n".encode()


class RecordWriter:
    """Appends verified entries to the record; one ``os.write`` per line, safe across processes."""

    def __init__(self, dest: str | os.PathLike[str]):
        self.path = record_path(dest)
        self._fd: int | None = None

    def open(self) -> RecordWriter:
        fd = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if os.fstat(fd).st_size == 0:
                os.write(fd, HEADER.encode())
        except OSError as err:
            if fd >= 0:
                os.close(fd)
            raise _unwritable(self.path, err) from err
        self._fd = fd
        return self

    def _fileno(self) -> int:
        if self._fd is None:
            self.open()
        return self._fd  # type: ignore[return-value]

    def add(self, relpath: str, size: int, mtime_ns: int, md5: str) -> None:
        os.write(self._fileno(), format_line(relpath, size, mtime_ns, md5))

    def add_many(self, rows: Iterable[tuple[str, int, int, str]]) -> None:
        data = b"".join(format_line(*r) for r in rows)
        if data:
            os.write(self._fileno(), data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def has_entries(dest: str | os.PathLike[str]) -> bool:
    """Whether the record holds anything beyond its header (so a rewrite could drop duplicates)."""
    try:
        return record_path(dest).stat().st_size > len(HEADER)
    except OSError:
        return False


def read_entries(dest: str | os.PathLike[str], wanted: set[str] | dict[str, int]) -> dict[str, VerifiedEntry]:
    """relpath -> :class:`VerifiedEntry` for the ``wanted`` relpaths (latest line wins); standard library only."""
    return {
        rel: VerifiedEntry(size, mtime, md5) for rel, size, mtime, md5 in iter_entries(dest) if rel in wanted
    }


def iter_entries(dest: str | os.PathLike[str]) -> Iterator[tuple[str, int, int, str]]:
    """``(relpath, size, mtime_ns, md5)`` per well-formed line, in file order (later lines win); streamed.

    Standard library only, one line in memory at a time: for callers that fold the record into
    their own compact per-file state instead of holding a million entries.
    """
    try:
        with open(record_path(dest), "rb") as fh:
            if fh.readline() != HEADER.encode():
                return
            match = _LINE.fullmatch
            for line in fh:
                if match(line):
                    rel, size, mtime, md5 = line[:-1].decode("utf-8", "replace").split("\t")
                    s, m = int(size), int(mtime)
                    if s < _INT64 and -_INT64 <= m < _INT64:  # what read_table can hold, too
                        yield rel, s, m, md5
    except FileNotFoundError:
        return


def compact(dest: str | os.PathLike[str], *, drop: Iterable[str] = ()) -> int:
    """Rewrite the record with one line per file (latest wins, sorted), minus ``drop``; atomic.

    Streams the file line by line (standard library only): memory is one bytes object per
    distinct file, never a table of Python strings. Malformed or torn lines are dropped.
    Returns the number of lines kept.
    """
    path = record_path(dest)
    latest: dict[bytes, bytes] = {}
    try:
        with open(path, "rb") as fh:
            if fh.readline() != HEADER.encode():
                logger.warning("%s: not a verified record (bad header); starting a new one", path)
            else:
                for line in fh:
                    if _LINE.fullmatch(line):
                        latest[line[: line.index(b"\t")]] = line
    except FileNotFoundError:
        if not latest:
            return 0
    for rel in drop:
        latest.pop(rel.encode(), None)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            out.write(HEADER.encode())
            keys = sorted(latest)
            for start in range(0, len(keys), 10_000):
                out.write(b"".join(latest[k] for k in keys[start : start + 10_000]))
        os.replace(tmp, path)
    except OSError as err:
        raise _unwritable(path, err) from err
    finally:
        tmp.unlink(missing_ok=True)
    return len(latest)


def _unwritable(path: Path, err: OSError) -> DestinationError:
    return DestinationError(
        f"{path}: cannot write the verified record ({err.strerror or err}); the destination's folder must be "
        "writable with free space: check the mount, permissions and `df`, then rerun"
    )
