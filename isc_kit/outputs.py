"""The one writer of output files (pinned manifests, predictions, metrics, params, ``.dvc`` files).

``-`` means stdout. A path that does not exist, or is a regular file after following symlinks, is
replaced atomically: the bytes go to ``.<name>.isc-tmp-<pid>-<hex>`` in the same folder, are
fsynced, and ``os.replace`` puts them under the final name (a symlink is kept: its target is
replaced); an existing file keeps its permission bits. Anything else (a character or block device,
a FIFO, ``/dev/stdout``, ``/dev/fd/N`` from a process substitution) is opened and written directly,
never replaced or unlinked. Every failure is one :class:`~isc_kit.errors.DestinationError` line.
:func:`output_path` gives the same commit to a library that writes by file name (h5py).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ._proc import pid_alive
from .errors import DestinationError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Names of the temp files this module writes: ``.<final name>.isc-tmp-<pid>-<hex>``.
TEMP_MARK = ".isc-tmp-"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.isc-tmp-(?P<pid>\d+)-[0-9a-f]+$")
_FD_ALIAS = re.compile(r"^/(?:dev/fd|proc/self/fd|proc/(?P<pid>\d+)/fd)/(?P<fd>\d+)$")
_STD_ALIAS = {"/dev/stdout": 1, "/dev/stderr": 2}

_REASONS = {
    errno.ENOSPC: ("no space left on the device", "free some space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write elsewhere"),
    errno.EROFS: ("the file system is read-only", "write to a writable folder"),
    errno.EACCES: ("permission denied", "check the folder's permissions or write elsewhere"),
    errno.EPERM: ("operation not permitted", "check the folder's permissions or write elsewhere"),
}


def write_output(
    path: PathLike, data: bytes | Iterable[bytes], *, make_parents: bool = False, mode: int | None = None
) -> int:
    """Write ``data`` (bytes or an iterable of byte chunks) to ``path``; returns the bytes written.

    ``make_parents`` creates a missing parent folder (for isc_kit's own bookkeeping files); without
    it a missing folder is an error, as for any user-named output. ``mode`` sets the permission bits
    a replaced file gets (default: the old file's, else 0o666 less the umask).
    """
    chunks: Iterable[bytes | bytearray | memoryview] = (
        (data,) if isinstance(data, bytes | bytearray | memoryview) else data
    )
    with open_output(path, make_parents=make_parents, mode=mode) as fh:
        n = 0
        for chunk in chunks:
            fh.write(chunk)
            n += len(chunk)
    return n


def write_text(path: PathLike, text: str, *, make_parents: bool = False) -> int:
    """``text`` as UTF-8 (newlines as given) through :func:`write_output`."""
    return write_output(path, text.encode("utf-8"), make_parents=make_parents)


def write_json(path: PathLike, obj: Any, *, make_parents: bool = False) -> int:
    """``obj`` as indented, key-sorted JSON plus a newline through :func:`write_output`."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return write_text(path, text, make_parents=make_parents)


@contextmanager
def open_output(
    path: PathLike, *, make_parents: bool = False, mode: int | None = None
) -> Iterator[IO[bytes]]:
    """A binary file to stream an output into, committed (atomically where possible) on a clean exit."""
    spelled = os.fspath(path)
    if spelled == "-":
        yield from _to_fd(1, spelled)
        return
    alias = _fd_alias(spelled)
    if alias is not None:
        yield from _to_fd(alias, spelled)
        return
    try:
        st: os.stat_result | None = os.stat(spelled)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise _error(spelled, err) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise DestinationError(f"cannot write {spelled}: it is a folder; name a file inside it instead")
    if st is None or stat.S_ISREG(st.st_mode):
        yield from _atomic(spelled, st, make_parents, mode)
    else:
        yield from _direct(spelled)


@contextmanager
def output_path(path: PathLike, *, make_parents: bool = False) -> Iterator[Path]:
    """A temp path beside ``path`` for a library that writes by file name (h5py), committed on a clean exit.

    The caller writes the whole file at the yielded path; it is then fsynced and moved by ``os.replace``
    under the final name (the folder fsynced too). On any error the temp is removed and ``path`` is
    untouched. Only regular files (or new ones) can be written this way.
    """
    spelled = os.fspath(path)
    if spelled == "-" or _fd_alias(spelled) is not None:
        raise DestinationError(f"cannot write {spelled}: this output needs a file name, not a stream")
    target = Path(os.path.realpath(spelled))
    if target.is_dir():
        raise DestinationError(f"cannot write {spelled}: it is a folder; name a file inside it instead")
    if target.exists() and not target.is_file():
        raise DestinationError(f"cannot write {spelled}: it is not a regular file; name a file instead")
    folder = target.parent
    try:
        if make_parents:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _error(spelled, err) from None
    if not folder.is_dir():
        raise DestinationError(
            f"cannot write {spelled}: folder {folder} does not exist; create it first or write elsewhere"
        )
    remove_dead_temps(folder, target.name)
    tmp = folder / f".{target.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _error(spelled, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(folder)


def check_output(path: PathLike) -> None:
    """Refuse, before any work, an output path that :func:`write_output` would refuse (a folder, a missing
    folder); a command calls this first so a typo in ``-o`` costs nothing."""
    spelled = os.fspath(path)
    if spelled == "-" or _fd_alias(spelled) is not None:
        return
    if os.path.isdir(spelled):
        raise DestinationError(f"cannot write {spelled}: it is a folder; name a file inside it instead")
    if not os.path.exists(spelled):
        folder = Path(os.path.realpath(spelled)).parent
        if not folder.is_dir():
            raise DestinationError(
                f"cannot write {spelled}: folder {folder} does not exist; create it first or write elsewhere"
            )


def _fd_alias(spelled: str) -> int | None:
    """The descriptor a path like ``/dev/stdout`` or ``/dev/fd/63`` names in this process, if any."""
    if spelled in _STD_ALIAS:
        return _STD_ALIAS[spelled]
    m = _FD_ALIAS.match(spelled)
    if m and (m["pid"] is None or int(m["pid"]) == os.getpid()):
        return int(m["fd"])
    return None


def _to_fd(fd: int, spelled: str) -> Iterator[IO[bytes]]:
    """Write to an open descriptor (stdout for ``-``) without closing it."""
    if fd == 1:
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        yield buffer if buffer is not None else _TextSink(sys.stdout)  # type: ignore[misc]
        sys.stdout.flush()
        if buffer is not None:
            buffer.flush()
        return
    try:
        fh = os.fdopen(os.dup(fd), "wb")
    except OSError as err:
        raise _error(spelled, err) from None
    with fh:
        yield fh


class _TextSink:
    """Bytes onto a text stream that has no binary buffer (a redirected ``sys.stdout``)."""

    def __init__(self, stream: IO[str]):
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(bytes(data).decode("utf-8", "surrogateescape"))
        return len(data)


def _direct(spelled: str) -> Iterator[IO[bytes]]:
    """A device, FIFO or other special file: open it for writing, never create, truncate or replace it."""
    try:
        fd = os.open(spelled, os.O_WRONLY | os.O_NOCTTY)
    except OSError as err:
        if err.errno == errno.ENXIO:
            raise DestinationError(
                f"cannot write {spelled}: it is a socket or a FIFO without a reader; name a file or a pipe"
            ) from None
        raise _error(spelled, err) from None
    logger.debug("writing %s directly (not a regular file)", spelled)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
    except OSError as err:
        raise _error(spelled, err) from None


def _atomic(
    spelled: str, st: os.stat_result | None, make_parents: bool, mode: int | None
) -> Iterator[IO[bytes]]:
    """Temp file beside the real target, fsync, ``os.replace``; the temp is removed on any error."""
    target = Path(os.path.realpath(spelled))  # a symlink stays; its target is what is replaced
    folder = target.parent
    if make_parents:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _error(spelled, err) from None
    elif not folder.is_dir():
        raise DestinationError(
            f"cannot write {spelled}: folder {folder} does not exist; create it first or write elsewhere"
        )
    remove_dead_temps(folder, target.name)
    tmp = folder / f".{target.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as err:
        raise _error(spelled, err) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if mode is not None or st is not None:
                os.fchmod(fh.fileno(), mode if mode is not None else stat.S_IMODE(st.st_mode))  # type: ignore[union-attr]
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _error(spelled, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(folder)


def fsync_path(folder: str | os.PathLike[str]) -> None:
    """fsync a file or folder by path, best effort (a file system that cannot is not an error)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _error(spelled: str, err: OSError) -> DestinationError:
    if err.errno == errno.EISDIR:
        return DestinationError(f"cannot write {spelled}: it is a folder; name a file inside it instead")
    if err.errno in (errno.ENOENT, errno.ENOTDIR):
        return DestinationError(
            f"cannot write {spelled}: its folder does not exist; create it first or write elsewhere"
        )
    reason, fix = _REASONS.get(
        err.errno or 0, (err.strerror or str(err), "check the path or write elsewhere")
    )
    return DestinationError(f"cannot write {spelled}: {reason}; {fix}")


def remove_dead_temps(folder: PathLike, name: str | None = None) -> int:
    """Delete this scheme's temp files in ``folder`` (for final ``name`` only, if given) whose writer is gone.

    Returns how many were removed. Temps of live processes (this one included) are kept.
    """
    start = f".{name}{TEMP_MARK}" if name is not None else "."
    removed = 0
    try:
        with os.scandir(folder) as it:
            candidates = [e for e in it if e.name.startswith(start) and TEMP_MARK in e.name]
    except OSError:
        return 0
    for entry in candidates:
        m = _TEMP_RE.match(entry.name)
        if m is None or (name is not None and m["name"] != name) or pid_alive(int(m["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    if removed:
        logger.debug("removed %d temp file(s) of killed writers in %s", removed, folder)
    return removed
