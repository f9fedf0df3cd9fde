"""The verified record: which local files were MD5-checked, and as which bytes (size, mtime).

A destination folder holds exactly the images, so the record lives beside it, never in it
(:attr:`isc_kit.local.Destination.record_path`). It is a text file, one line per verified file::

    # isc-kit verified v1
    relpath<TAB>size<TAB>mtime_ns<TAB>md5

:class:`RecordWriter` appends (one ``write`` per batch of whole lines, so concurrent appenders
and a ``kill -9`` leave at most one torn last line, which the reader skips); :func:`iter_entries`
is the one reader (streamed; later lines win); :func:`compact` rewrites the file with one line
per file. Appenders hold a shared ``flock`` on the record and compaction an exclusive one it
never waits for, so no appended line is ever lost to a rewrite. Whether a file still counts as
verified is decided in one place, :func:`isc_kit.local.compare`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterable, Iterator
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, overload

from .errors import DestinationError

logger = logging.getLogger(__name__)

HEADER = b"# isc-kit verified v1\n"
_LINE = re.compile(rb"[^\t\n]+\t\d{1,19}\t-?\d{1,19}\t[0-9a-f]{32}\n")
_INT64 = 2**63
_DIGITS, _HEX = b"0123456789", b"0123456789abcdef"


def format_line(relpath: str, size: int, mtime_ns: int, md5: str) -> bytes:
    return f"{relpath}\t{size}\t{mtime_ns}\t{md5}\n".encode()


@overload
def iter_entries(path: Path) -> Iterator[tuple[str, int, int, str]]: ...


@overload
def iter_entries(path: Path, *, raw: Literal[True]) -> Iterator[tuple[bytes, int, int, bytes]]: ...


def iter_entries(path: Path, *, raw: bool = False) -> Iterator[tuple[Any, int, int, Any]]:
    """``(relpath, size, mtime_ns, md5)`` per well-formed line, in file order (later lines win); streamed.

    ``raw=True`` gives relpath and md5 as the file's UTF-8 bytes (no decoding: for a million lines).
    """
    for rels, sizes, mtimes, md5s in iter_blocks(path):
        if raw:
            yield from zip(rels, sizes, mtimes, md5s, strict=True)
        else:
            for rel, size, mtime, md5 in zip(rels, sizes, mtimes, md5s, strict=True):
                yield rel.decode("utf-8", "replace"), size, mtime, md5.decode()


#: One block of a record's well-formed lines as columns: relpaths, sizes, mtimes (ns), md5s.
Block = tuple[list[bytes], list[int], list[int], list[bytes]]


def iter_blocks(path: Path, *, block_bytes: int = 1 << 20) -> Iterator[Block]:
    """The well-formed lines, in file order, as columns per block of about ``block_bytes``; streamed.

    The one reader of the format: a line counts if it matches ``relpath<TAB>size<TAB>mtime_ns<TAB>md5``
    with sizes and mtimes in int64 (a torn last line never does). A block is checked with C loops
    over whole columns; one with any other line is read again line by line.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a missing record is an empty one
    except (FileNotFoundError, NotADirectoryError):
        return
    with fh:
        if fh.readline() != HEADER:
            logger.warning("%s: not a verified record (bad header); ignoring it", path)
            return
        tail = b""
        while chunk := fh.read(block_bytes):
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if cut:
                columns = _block(data, cut) or _lines(data, cut)
                if columns[0]:
                    yield columns
            del data, chunk


def _block(data: bytes, cut: int) -> Block | None:
    """``data[:cut]`` (whole lines) as columns when every line is well formed, else None."""
    n = data.count(b"\n", 0, cut)
    # "r\ts\tm\th\n" -> "r\ts\tm\th\t\n\t": five tokens a line, the fifth exactly "\n" when it had four fields
    tokens = data[:cut].replace(b"\n", b"\t\n\t").split(b"\t")
    tokens.pop()
    if len(tokens) != 5 * n or tokens[4::5].count(b"\n") != n:
        return None
    rels, sizes, mtimes, md5s = tokens[0::5], tokens[1::5], tokens[2::5], tokens[3::5]
    del tokens
    joined_m = b"".join(mtimes)
    if (
        b"" in rels
        or b"" in sizes
        or max(map(len, sizes)) > 19
        or b"".join(sizes).translate(None, _DIGITS)
        or b"" in mtimes
        or b"-" in mtimes
        or max(map(len, mtimes)) > 19  # a 20-character "-" + 19 digits goes line by line
        or joined_m.translate(None, _DIGITS + b"-")
        or joined_m.count(b"-") != sum(map(bytes.startswith, mtimes, repeat(b"-")))  # "-" only in front
        or set(map(len, md5s)) != {32}
        or b"".join(md5s).translate(None, _HEX)
    ):
        return None
    size_ints, mtime_ints = list(map(int, sizes)), list(map(int, mtimes))
    if max(size_ints) >= _INT64 or max(mtime_ints) >= _INT64 or min(mtime_ints) < -_INT64:
        return None
    return rels, size_ints, mtime_ints, md5s


def _lines(data: bytes, cut: int) -> Block:
    """``data[:cut]`` line by line: the well-formed lines only."""
    rels: list[bytes] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    md5s: list[bytes] = []
    match = _LINE.fullmatch
    for line in data[: cut - 1].split(b"\n"):
        if match(line + b"\n"):
            rel, size, mtime, md5 = line.split(b"\t")
            s, m = int(size), int(mtime)
            if s < _INT64 and -_INT64 <= m < _INT64:
                rels.append(rel)
                sizes.append(s)
                mtimes.append(m)
                md5s.append(md5)
    return rels, sizes, mtimes, md5s


class RecordWriter:
    """Appends verified entries; ``best_effort`` turns an unwritable record into one warning."""

    def __init__(self, path: Path, *, best_effort: bool = False):
        self.path = path
        self.best_effort = best_effort
        self._fd: int | None = None
        self._failed = False

    def open(self) -> RecordWriter:
        try:
            self._fd = _open_shared(self.path)
        except OSError as err:
            if not self.best_effort:
                raise unwritable(self.path, err) from err
            self._failed = True
            logger.warning(
                "%s: cannot record verified files (%s); the check itself is unaffected, the next run hashes again",
                self.path,
                err.strerror or err,
            )
        return self

    def add(self, relpath: str, size: int, mtime_ns: int, md5: str) -> None:
        self._write(format_line(relpath, size, mtime_ns, md5))

    def add_many(self, rows: Iterable[tuple[str, int, int, str]]) -> None:
        data = b"".join(format_line(*r) for r in rows)
        if data:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._fd is None and not self._failed:
            self.open()
        if self._fd is None:
            return
        try:
            os.write(self._fd, data)
        except OSError as err:
            if not self.best_effort:
                raise unwritable(self.path, err) from err

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_shared(path: Path) -> int:
    """An append descriptor on the current record file, holding a shared lock (reopened if it was replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            if os.fstat(fd).st_size == 0:
                os.write(fd, HEADER)
            return fd
        os.close(fd)  # compacted between open and lock: append to the new file


def has_lines(path: Path) -> bool:
    """Whether the record holds anything beyond its header."""
    try:
        return path.stat().st_size > len(HEADER)
    except OSError:
        return False


def compact(path: Path, *, drop: Iterable[str] = ()) -> int | None:
    """Rewrite the record with one line per file (latest wins, sorted), minus ``drop``; atomic.

    Returns the lines kept, or ``None`` when a writer is appending (then nothing is rewritten,
    so nothing it appends is lost) or the record does not exist.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with os.fdopen(fd, "rb") as fh:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.debug("%s: being appended to; not compacted", path)
            return None
        latest: dict[bytes, bytes] = {}
        changed, last = fh.readline() != HEADER, b""
        if not changed:
            for line in fh:
                if _LINE.fullmatch(line):
                    rel = line[: line.index(b"\t")]
                    changed = changed or rel <= last
                    latest[rel] = line
                    last = rel
                else:
                    changed = True
        for name in drop:
            changed = latest.pop(name.encode(), None) is not None or changed
        if not changed:
            return len(latest)  # already one sorted line per file: nothing to rewrite
        keys = sorted(latest)
        from .outputs import write_output

        blocks = (b"".join(latest[k] for k in keys[i : i + 10_000]) for i in range(0, len(keys), 10_000))
        try:
            write_output(path, [HEADER, *blocks])
        except DestinationError:
            raise
        except OSError as err:
            raise unwritable(path, err) from err
    return len(latest)


def unwritable(path: Path, err: OSError) -> DestinationError:
    return DestinationError(
        f"{path}: cannot write the verified record ({err.strerror or err}); the destination's folder must be "
        "writable with free space: check the mount, permissions and `df`, then rerun"
    )
