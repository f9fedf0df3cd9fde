"""The one owner of placing verified bytes under their final name.

Every image, cache object or cached ``isc://`` file isc_kit puts on disk arrives the same way:
the bytes go to a hidden temp file beside the target (``.<name>.isc-part-<pid>-<hex>``, see
:func:`isc_kit.local.temp_name`, so scans skip it and a later run removes it once its writer is
gone), their size and MD5 are checked, the fsync policy is applied, ``os.replace`` puts them
under the final name, and an optional ``record`` callback is told (the verified record line).
On any error (a wrong size or MD5, a full disk, an exception in the caller's block) the temp is
removed and the target is untouched.

:func:`placing` is the context manager for bytes streamed or made by someone else (a reflink, a
hard link, a copy); :func:`place_bytes` places one buffer; :func:`place_many` places a batch of
buffers already verified by the caller (the fetch's body writer; in C with the GIL released once
when ``isc_kit._placex`` is built); :func:`place_folder` renames a finished temp folder into place. Output files (manifests, predictions, metrics, ``.dvc`` files) are the
other concept and go through :mod:`isc_kit.outputs`.

Fsync policies (``fsync=``): ``"none"`` (images, checkout and cache objects: the verified record
is re-checked by size and mtime, so a crash costs a re-hash, never a wrong answer; this is what
DVC and s5cmd do), ``"file"`` (the file's bytes are synced before the rename) and ``"full"``
(also the folder's entry after it, as :mod:`isc_kit.outputs` does for outputs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

from .errors import ChecksumMismatchError, IscKitError
from .local import temp_name
from .outputs import fsync_path

try:
    from . import _placex
except ImportError:  # not built (no C compiler, or Windows): place_many loops in Python
    _placex = None

FsyncPolicy = Literal["none", "file", "full"]
FSYNC_POLICIES: tuple[str, ...] = ("none", "file", "full")
#: ``record(final path, stat of the placed file, md5 or None)``, called once the bytes are in place.
RecordCallback = Callable[[str, os.stat_result, "str | None"], Any]

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20


class SizeMismatchError(IscKitError, ValueError):
    """Bytes whose size differs from what was expected; they were not placed."""

    exit_code = 5

    def __init__(self, name: str, expected: int, actual: int):
        self.name, self.expected, self.actual = name, expected, actual
        super().__init__(f"{name} is {actual} bytes, expected {expected}; it was not put in place. Retry.")


def temp_beside(final: str) -> str:
    """A fresh temp path in ``final``'s folder (hidden, recognisable, unique per writer)."""
    folder, name = os.path.split(final)
    return os.path.join(folder, temp_name(name))


class Placement:
    """One placement in progress: write into :attr:`tmp` (or let a tool make it), then :meth:`commit`.

    Use :func:`placing` rather than this class directly: it commits on a clean exit and removes the
    temp on any error.
    """

    __slots__ = (
        "_expect_md5",
        "_expect_size",
        "_fd",
        "_fsync",
        "_hash",
        "_mode",
        "_n",
        "final",
        "md5",
        "tmp",
    )

    def __init__(
        self,
        final: str,
        *,
        expect_size: int | None,
        expect_md5: str | None,
        md5: str | None,
        fsync: FsyncPolicy,
        mode: int | None,
    ):
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy {fsync!r} is not one of {', '.join(FSYNC_POLICIES)}")
        self.final = final
        self.tmp = temp_beside(final)
        #: the bytes' MD5: given (a streaming writer hashed them), or computed by :meth:`write`/:meth:`commit`
        self.md5 = md5
        self._expect_size, self._expect_md5 = expect_size, expect_md5
        self._fsync, self._mode = fsync, mode
        self._fd: int | None = None
        self._hash: Any = None
        self._n = 0

    def write(self, data: Any) -> int:
        """Append bytes to the temp file (created on first use), hashing them unless a digest was given."""
        if self._fd is None:
            self._fd = os.open(self.tmp, _OPEN_NEW, 0o644 if self._mode is None else self._mode)
            if self.md5 is None and self._expect_md5 is not None:
                self._hash = hashlib.md5()
        view = memoryview(data).cast("B")
        if self._hash is not None:
            self._hash.update(view)
        n = len(view)
        while view:
            view = view[os.write(self._fd, view) :]
        self._n += n
        return n

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def commit(self) -> os.stat_result:
        """Check size and MD5, apply the fsync policy and mode, ``os.replace``; the stat of the placed file."""
        try:
            if self._fd is not None:
                if self._fsync != "none":
                    os.fsync(self._fd)
                if self._mode is not None:
                    os.fchmod(self._fd, self._mode)
                st = os.fstat(self._fd)
                self._close()
            else:  # made by another tool (a reflink, a link, a copy, a library writing to a path)
                st = os.lstat(self.tmp)
                if self._mode is not None:
                    os.chmod(self.tmp, self._mode)
                if self._fsync != "none":
                    fsync_path(self.tmp)
            name = os.path.basename(self.final)
            if self._expect_size is not None and st.st_size != self._expect_size:
                raise SizeMismatchError(name, self._expect_size, st.st_size)
            if self._expect_md5 is not None:
                if self.md5 is None:
                    self.md5 = self._hash.hexdigest() if self._hash is not None else md5_of_file(self.tmp)
                if self.md5 != self._expect_md5:
                    raise ChecksumMismatchError(
                        name, self._expect_md5, self.md5, action="the bytes were not put in place"
                    )
            elif self._hash is not None:
                self.md5 = self._hash.hexdigest()
            os.replace(self.tmp, self.final)
        except BaseException:
            self.discard()
            raise
        if self._fsync == "full":
            fsync_path(os.path.dirname(self.final) or ".")
        return st

    def discard(self) -> None:
        """Close and remove the temp file (if any); the target is untouched."""
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


@contextlib.contextmanager
def placing(
    final: str | os.PathLike[str],
    *,
    expect_size: int | None = None,
    expect_md5: str | None = None,
    md5: str | None = None,
    fsync: FsyncPolicy = "none",
    mode: int | None = None,
    record: RecordCallback | None = None,
) -> Iterator[Placement]:
    """Place bytes at ``final``: write them with ``p.write()`` or make ``p.tmp`` yourself, in the block.

    ``expect_size``/``expect_md5`` are checked before the rename (``None``: not checked); ``md5`` is
    the digest when the caller already hashed the bytes (otherwise they are hashed as written, or the
    temp file is read once). ``mode`` sets the permission bits. On a clean exit the bytes are put in
    place and ``record(final, stat, md5)`` is called; on any exception the temp is removed.
    """
    p = Placement(
        os.fspath(final), expect_size=expect_size, expect_md5=expect_md5, md5=md5, fsync=fsync, mode=mode
    )
    try:
        yield p
    except BaseException:
        p.discard()
        raise
    st = p.commit()
    if record is not None:
        record(p.final, st, p.md5)


def place_bytes(
    final: str | os.PathLike[str],
    data: Any,
    *,
    expect_size: int | None = None,
    expect_md5: str | None = None,
    md5: str | None = None,
    fsync: FsyncPolicy = "none",
    mode: int | None = None,
    record: RecordCallback | None = None,
) -> os.stat_result:
    """Place one buffer at ``final`` (see :func:`placing`); the stat of the placed file."""
    p = Placement(
        os.fspath(final), expect_size=expect_size, expect_md5=expect_md5, md5=md5, fsync=fsync, mode=mode
    )
    try:
        p.write(data)
    except BaseException:
        p.discard()
        raise
    st = p.commit()
    if record is not None:
        record(p.final, st, p.md5)
    return st


def replace_verified(tmp: str, final: str) -> None:
    """Put a temp file whose size and MD5 the caller has already checked under its final name.

    For the fetch engine's hot path, which hashes bodies in batches (multi-buffer MD5) or while
    streaming and so checks before it calls this; everyone else uses :func:`placing`. The temp is
    removed if the rename fails.
    """
    try:
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Placed(NamedTuple):
    """A body of :func:`place_many` now under its final name: the placed file's size and mtime."""

    size: int
    mtime_ns: int


PlaceJob = tuple[str, str, Any]  # (temp path beside the target, final path, verified bytes-like)


def place_many(jobs: Sequence[PlaceJob]) -> list[Placed | OSError]:
    """Write each verified buffer to its temp path and rename it to its final path; fsync policy ``"none"``.

    For the fetch engine's hot path: the caller has checked size and MD5 (one multi-buffer hash for
    the batch) and named the temps (:func:`temp_beside`). One result per job, in order: :class:`Placed`,
    or the ``OSError`` that stopped it (its temp removed, the target untouched); one failure does not
    stop the others. With ``isc_kit._placex`` built the whole batch runs in C without the GIL, so the
    thread that calls this does not contend with the event loop five times a file.
    """
    if _placex is not None:
        out: list[Placed | OSError] = []
        for (tmp, final, _body), (err, step, size, mtime_ns) in zip(
            jobs, _placex.place_many(jobs), strict=True
        ):
            if err:  # the same OSError the Python loop would raise (rename: both paths)
                out.append(
                    OSError(err, os.strerror(err), tmp, None, final)
                    if step == 4
                    else OSError(err, os.strerror(err), tmp)
                )
            else:
                out.append(Placed(size, mtime_ns))
        return out
    return [_place_one(*job) for job in jobs]


def _place_one(tmp: str, final: str, body: Any) -> Placed | OSError:
    try:
        fd = os.open(tmp, _OPEN_NEW, 0o644)
    except OSError as err:
        return err
    try:
        try:
            view = memoryview(body).cast("B")
            while view:
                view = view[os.write(fd, view) :]
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return err
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Placed(st.st_size, st.st_mtime_ns)


def place_folder(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> bool:
    """Rename a finished temp folder to ``final``; False (and ``tmp`` left to the caller) if another writer won.

    A folder is placed whole or not at all: a reader that finds ``final`` finds it complete.
    """
    try:
        os.replace(tmp, final)
    except OSError:
        if not os.path.isdir(final):
            raise
        return False
    return True


def md5_of_file(path: str) -> str:
    """The MD5 of a file's bytes (read in 1 MiB blocks, never following a symlink)."""
    h = hashlib.md5()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        while block := os.read(fd, _CHUNK):
            h.update(block)
    finally:
        os.close(fd)
    return h.hexdigest()
