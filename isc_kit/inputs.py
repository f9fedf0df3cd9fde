"""The one reader of input files (metadata CSVs, pinned manifests, id lists, ground truth, predictions, params).

``-`` reads stdin; ``s3://`` (any ``scheme://``) goes through fsspec with the size checked from
``info()`` first; a local path must be a regular file after following symlinks, so a FIFO, a device
(``/dev/zero``, ``/dev/urandom``) or a folder is refused with one line instead of blocking or reading
forever. Nothing is read beyond its cap: at most ``limit + 1`` bytes, refused past the cap, so a file
that grows while it is read is bounded too.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from typing import IO, TYPE_CHECKING, Any

from .errors import InputPathError

if TYPE_CHECKING:
    from .source import Source

logger = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30

#: Publisher metadata CSVs (the largest real one, training, is ~115 MB).
METADATA_LIMIT = 1 * GiB
#: Pinned manifests (a million rows is ~70 MB).
PINNED_LIMIT = 1 * GiB
#: Matching-track predictions (500,000 rows is ~15 MB; room for files the evaluator refuses).
PREDICTIONS_LIMIT = 256 * MiB
#: Ground-truth CSVs (the public one, 25,000 rows, is ~500 KB).
GROUND_TRUTH_LIMIT = 64 * MiB
#: Id list files (a million ids is ~9 MB).
ID_LIST_LIMIT = 64 * MiB
#: params.yaml.
PARAMS_LIMIT = 4 * MiB

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_input(
    path: str | os.PathLike[str], *, what: str, limit: int, fs: Any = None, source: Source | None = None
) -> bytes:
    """The bytes of an input file, at most ``limit``; raises :class:`~isc_kit.errors.InputPathError`.

    ``what`` names the file in messages ("metadata CSV", "id list" ...). An ``s3://`` path is read
    through ``source`` (its endpoint, region and signing; default: the resolved settings), other
    URLs through ``fs`` or the filesystem fsspec makes for them.
    """
    text = os.fspath(path)
    if text == "-":
        return _read_capped(sys.stdin.buffer, text, what, limit)
    if fs is not None or "://" in text:
        return _read_remote(text, what, limit, fs, source)
    return _read_local(text, what, limit)


def check_local_input(path: str | os.PathLike[str], *, what: str, limit: int) -> os.stat_result:
    """Refuse a local path that is not a regular file within ``limit`` (for readers that open it themselves)."""
    text = os.fspath(path)
    st = _stat(text, what)
    _check_stat(text, st, what, limit)
    return st


def _stat(text: str, what: str) -> os.stat_result:
    try:
        return os.stat(text)
    except FileNotFoundError:
        raise InputPathError(text, "no such file", hint=f"check the path of the {what}") from None
    except NotADirectoryError:
        raise InputPathError(
            text, "a part of the path is not a folder", hint=f"check the path of the {what}"
        ) from None
    except PermissionError:
        raise InputPathError(text, "permission denied", hint="check the file's permissions") from None
    except OSError as err:
        raise InputPathError(text, f"cannot read ({err.strerror or err})") from None


def _check_stat(text: str, st: os.stat_result, what: str, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise InputPathError(text, "is a folder, not a file", hint=f"pass the {what} inside it")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise InputPathError(
            text,
            f"is {kind}, not a regular file",
            hint=f"save the {what} to a file and pass that (or pipe it in with '-')",
        )
    if st.st_size > limit:
        raise _too_large(text, what, limit, st.st_size)


def _too_large(text: str, what: str, limit: int, size: int | None = None) -> InputPathError:
    got = f"is {_mb(size)}" if size is not None else "holds more than that"
    return InputPathError(
        text,
        f"{got}, over the {_mb(limit)} limit for a {what}",
        hint=f"is this the right file? Pass the {what} itself",
    )


def _mb(n: int) -> str:
    return f"{n / MiB:,.1f} MiB" if n < GiB else f"{n / GiB:,.2f} GiB"


def _read_local(text: str, what: str, limit: int) -> bytes:
    _check_stat(text, _stat(text, what), what, limit)
    try:
        # O_NONBLOCK: a path swapped for a FIFO since the stat does not hang the open (regular files ignore it).
        fd = os.open(text, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise InputPathError(
            text, f"cannot open ({err.strerror or err})", hint=f"check the {what}'s path"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        _check_stat(text, st, what, limit)
        return _read_capped(fh, text, what, limit, expect=st.st_size)


_CHUNK = 16 * MiB


def _read_capped(fh: IO[bytes], text: str, what: str, limit: int, expect: int | None = None) -> bytes:
    """At most ``limit`` bytes; reading a byte past it is the refusal (so growth while reading is caught).

    ``expect`` (a regular file's size) is read in one piece, so memory is the file's size, not the cap;
    only a file that grew past it (or a stream) is read on in chunks.
    """
    parts: list[bytes] = []
    total = 0
    try:
        first = min(limit, expect) + 1 if expect is not None else min(limit + 1, _CHUNK)
        while True:
            want = first if not parts else min(_CHUNK, limit + 1 - total)
            chunk = fh.read(want)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large(text, what, limit)
            if total == expect and len(chunk) < want:
                break  # the whole file in one piece; otherwise read on to the end (or past the cap)
    except OSError as err:
        raise InputPathError(text, f"cannot read ({err.strerror or err})") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_remote(text: str, what: str, limit: int, fs: Any, source: Source | None) -> bytes:
    from .source import foreign_error, make_filesystem, resolve_source, translate_error

    source = source or resolve_source()
    try:
        if fs is None and text.startswith("s3://"):
            fs = make_filesystem(source)
        elif fs is None:
            import fsspec

            fs, _ = fsspec.core.url_to_fs(text)
        info = fs.info(text)
        if info.get("type") == "directory":
            raise InputPathError(
                text, "is a folder (a key prefix), not an object", hint=f"pass the {what} itself"
            )
        size = info.get("size")
        if size is not None and int(size) > limit:
            raise _too_large(text, what, limit, int(size))
        with fs.open(text, "rb") as fh:
            return _read_capped(fh, text, what, limit, expect=None if size is None else int(size))
    except InputPathError:
        raise
    except (OSError, ValueError) as err:
        raise translate_error(err, text, source) from err
    except Exception as err:  # botocore / aiohttp errors surface as their own types
        if not foreign_error(err):
            raise
        raise translate_error(err, text, source) from err


def looks_utf16(data: bytes) -> bool:
    """A UTF-16 byte-order mark, or text whose every other byte is NUL (UTF-16 without a BOM)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    head = data[:200]
    if len(head) < 4:
        return False
    even, odd = head[0::2], head[1::2]
    return (odd.count(0) == len(odd) and 0 not in even) or (even.count(0) == len(even) and 0 not in odd)


def utf16_error(path: str, data: bytes) -> InputPathError | None:
    """The error for UTF-16 text (what Excel and PowerShell save), saying how to convert it, or None."""
    if not looks_utf16(data):
        return None
    return InputPathError(
        path,
        "this is UTF-16 text; isc-kit reads UTF-8",
        hint=f"convert it, e.g. `iconv -f UTF-16 -t UTF-8 {path} > {path}.utf8`, and pass the new file",
    )
