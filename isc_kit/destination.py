"""A destination folder and its bookkeeping beside it: paths, the scan, part files, pruning, the lock.

A :class:`Destination` resolves its folder once (symlinked aliases share one lock and one
record) and owns everything beside it: the verified record, the lock and the timings in
``<parent>/.isc-kit/``, safe joins of relpaths, temp-file names and their removal, and pruning.
Nothing here follows a symlink inside the folder. What the folder holds *of a manifest* is
judged in :mod:`isc_kit.local` (:func:`~isc_kit.local.compare`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import stat
import sys
import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import records
from .errors import DestinationError, UnsafePathError

try:
    from . import _scanx  # type: ignore[attr-defined]
except ImportError:  # not built (no C compiler, or not POSIX): os.scandir
    _scanx = None

logger = logging.getLogger(__name__)

#: Threads the C lister splits a large folder's ``lstat`` calls over.
_SCAN_THREADS = min(4, os.cpu_count() or 1)
#: The folder is listed in C with the GIL released: a scan in a thread leaves the interpreter free.
SCAN_RELEASES_GIL = _scanx is not None
#: The lister's bytes are the names' UTF-8 (as the join reads them): a flat scan may keep them as they are.
_FLAT_NAMES = _scanx is not None and sys.getfilesystemencoding() == "utf-8"
META_DIR = ".isc-kit"
TEMP_MARK = ".isc-part-"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.isc-part-(?P<pid>\d+)-[0-9a-f]+$")


def temp_name(final_name: str) -> str:
    """``.<name>.isc-part-<pid>-<random>``: recognisable, hidden, unique per writer."""
    return f".{final_name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


def is_temp(name: str) -> bool:
    return TEMP_MARK in name and _TEMP_RE.match(name) is not None


@dataclass
class TreeScan:
    """Regular files below a folder (relpath, size, mtime_ns) and what was set aside.

    A flat folder listed in C keeps its names as the lister's one buffer (``joined``: UTF-8, each name
    followed by NUL) and decodes them into :attr:`rels` only when asked: the 1M join reads the buffer,
    and a million ``str`` (~68 MB) are never made.
    """

    _rels: list[str] | None
    sizes: array  # int64
    mtimes: array  # int64, st_mtime_ns
    temps: list[str] = field(default_factory=list)  # isc-kit part files
    others: list[str] = field(default_factory=list)  # symlinks, FIFOs, devices, sockets: never followed
    nested: list[str] = field(default_factory=list)  # folders that are destinations of their own
    joined: bytes | None = None

    @property
    def rels(self) -> list[str]:
        """The relpaths, in the order of ``sizes`` and ``mtimes``."""
        if self._rels is None:
            self._rels, self.joined = _split(self.joined or b""), None
        return self._rels

    def names_utf8(self) -> bytes:
        """The relpaths as UTF-8 (undecodable ones as their own bytes), each followed by NUL."""
        if self._rels is None:
            return self.joined or b""
        names = self._rels
        return ("\0".join(names) + "\0").encode("utf-8", "surrogateescape") if names else b""

    def release(self) -> None:
        """Let the names go (sizes and mtimes stay)."""
        self._rels, self.joined = [], None

    def __len__(self) -> int:
        return len(self.sizes)


class Destination:
    """A local folder that holds exactly the images of a manifest, and its bookkeeping beside it."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.given = os.fspath(folder)
        self.root = os.path.realpath(os.path.abspath(folder))
        self._checked: set[str] = set()

    def __repr__(self) -> str:
        return f"Destination({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Destination) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def path_obj(self) -> Path:
        return Path(self.root)

    def meta(self, suffix: str) -> Path:
        """``<parent>/.isc-kit/<name><suffix>``: bookkeeping outside the tracked folder."""
        root = Path(self.root)
        return root.parent / META_DIR / f"{root.name}{suffix}"

    @property
    def record_path(self) -> Path:
        return self.meta(".verified")

    @property
    def lock_path(self) -> Path:
        return self.meta(".lock")

    @property
    def timing_path(self) -> Path:
        return self.meta(".fetch.json")

    # ------------------------------------------------------------------------------------ paths

    def path(self, relpath: str) -> str:
        """The absolute path of ``relpath`` inside the folder (:class:`UnsafePathError` otherwise)."""
        if not relpath or relpath.startswith(("/", "\\")) or "\x00" in relpath:
            raise UnsafePathError(f"{relpath!r}: not a relative path; the manifest is damaged")
        full = os.path.normpath(os.path.join(self.root, relpath))
        if not full.startswith(self.root + os.sep):
            raise UnsafePathError(
                f"{relpath!r} resolves outside {self.root}; refusing to write there (the manifest is damaged)"
            )
        return full

    def parent(self, full: str) -> str:
        """Create (if needed) and check the parent folder of ``full``: every level a real folder, no symlink."""
        folder = os.path.dirname(full)
        if folder in self._checked:
            return folder
        os.makedirs(folder, exist_ok=True)
        probe = folder
        while probe != self.root and len(probe) > len(self.root):
            if os.path.islink(probe):
                raise UnsafePathError(
                    f"{probe} is a symlink inside the destination; refusing to write through it "
                    "(replace it with a real folder)"
                )
            if probe in self._checked:
                break
            probe = os.path.dirname(probe)
        self._checked.add(folder)
        return folder

    # ------------------------------------------------------------------------------------ contents

    def scan(self) -> TreeScan:
        """Walk the folder without following symlinks; a missing folder scans as empty.

        Bookkeeping folders (``.isc-kit``) and folders that are destinations of their own (they
        have a record or lock beside them) are not entered: nothing in them is ever "extra".
        """
        scan = TreeScan([], array("q"), array("q"))
        stack = [("", self.root)]
        while stack:
            prefix, folder = stack.pop()
            try:
                if not prefix and _FLAT_NAMES:
                    joined, sizes, mtimes, entries = _list_folder_c(folder)
                    if TEMP_MARK.encode() not in joined:  # the usual case: the names stay one buffer
                        scan = TreeScan(None, sizes, mtimes, joined=joined)
                        names = []
                    else:
                        names = _split(joined)
                else:
                    names, sizes, mtimes, entries = list_folder(folder)
            except FileNotFoundError:
                continue
            except NotADirectoryError:
                raise UnsafePathError(f"{folder} is not a folder; pass a folder as the destination") from None
            if any(TEMP_MARK in name for name in names):  # part files are rare
                keep = [i for i, name in enumerate(names) if not is_temp(name)]
                scan.temps.extend(prefix + name for name in names if is_temp(name))
                names = [names[i] for i in keep]
                sizes, mtimes = array("q", (sizes[i] for i in keep)), array("q", (mtimes[i] for i in keep))
            if names:
                scan.rels.extend([prefix + name for name in names] if prefix else names)
                scan.sizes.extend(sizes)
                scan.mtimes.extend(mtimes)
            for kind, name in entries:
                rel = prefix + name
                if kind != "d":
                    scan.others.append(rel)
                elif name == META_DIR:
                    continue
                elif _is_destination(folder, name):
                    scan.nested.append(rel)
                else:
                    stack.append((rel + "/", os.path.join(folder, name)))
        return scan

    def scan_paths(self, rels: Iterable[str]) -> TreeScan:
        """A :class:`TreeScan` of just these relpaths (``lstat`` each; for a few entries of a large folder)."""
        scan = TreeScan([], array("q"), array("q"))
        for rel in rels:
            try:
                st = os.lstat(self.path(rel))
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISREG(st.st_mode):
                scan.rels.append(rel)
                scan.sizes.append(st.st_size)
                scan.mtimes.append(st.st_mtime_ns)
            else:
                scan.others.append(rel)
        return scan

    def remove_temps(self, temps: Iterable[str], *, locked: bool) -> int:
        """Delete part files: all but this process's own when ``locked`` (no other writer exists), else dead writers' only."""
        from ._proc import pid_alive

        removed = 0
        me = os.getpid()
        for rel in temps:
            m = _TEMP_RE.match(rel.rsplit("/", 1)[-1])
            if m is None:
                continue
            pid = int(m["pid"])
            if pid == me or (not locked and pid_alive(pid)):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.root, rel))
                removed += 1
        if removed:
            logger.info("removed %d partial download(s) left by an interrupted run", removed)
        return removed

    def prune(self, rels: Iterable[str]) -> list[str]:
        """Delete these regular files (relpaths from a scan); returns the ones deleted."""
        gone = []
        for rel in rels:
            full = self.path(rel)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(os.lstat(full).st_mode):
                    os.unlink(full)
                    gone.append(rel)
        if gone:
            logger.info("pruned %d file(s) that the manifest does not list", len(gone))
        return gone

    @contextlib.contextmanager
    def lock(self, what: str = "fetch") -> Iterator[Path]:
        """Hold the destination's exclusive lock; :class:`DestinationError` at once if another process holds it."""
        path = self.lock_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DestinationError(
                f"{path}: cannot create the destination lock ({err.strerror or err}); the destination's folder "
                "must be writable: check the mount and permissions"
            ) from err
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "holder unknown"
                raise DestinationError(
                    f"{self.root} is being written by another isc-kit process ({holder}); "
                    "wait for it to finish or stop it, then rerun (a rerun resumes where it stopped)"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(
                fd, f"pid {os.getpid()}, {what} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0
            )
            yield path
        finally:
            os.close(fd)

    def record_writer(self, *, best_effort: bool = False) -> records.RecordWriter:
        return records.RecordWriter(self.record_path, best_effort=best_effort)


def list_folder(folder: str) -> tuple[list[str], array, array, list[tuple[str, str]]]:
    """One folder: its regular files' names, sizes and mtimes (ns), and its other entries as (kind, name).

    Kinds: ``d`` folder, ``l`` symlink, ``o`` anything else; nothing is followed. The C lister
    (``isc_kit._scanx``: readdir, then ``lstat`` over all cores with the GIL released) when it
    was built, else :func:`os.scandir`; both skip an entry that vanishes while listed.
    """
    if _scanx is None:
        return _list_folder_py(folder)
    joined, sizes, mtimes, entries = _list_folder_c(folder)
    return _split(joined), sizes, mtimes, entries


def _list_folder_c(folder: str) -> tuple[bytes, array, array, list[tuple[str, str]]]:
    """:func:`list_folder` by ``_scanx``, the files' names left as its buffer (each followed by NUL)."""
    joined, raw_sizes, raw_mtimes, raw_others = _scanx.scan_dir(folder, _SCAN_THREADS)
    sizes, mtimes = array("q"), array("q")
    sizes.frombytes(raw_sizes)
    mtimes.frombytes(raw_mtimes)
    entries = [(other[0], other[1:]) for other in os.fsdecode(raw_others).split("\0")[:-1]]
    return joined, sizes, mtimes, entries


def _split(joined: bytes) -> list[str]:
    """The lister's buffer (each name followed by NUL) as names, undecodable bytes surrogate-escaped."""
    names = os.fsdecode(joined).split("\0")
    names.pop()
    return names


def _list_folder_py(folder: str) -> tuple[list[str], array, array, list[tuple[str, str]]]:
    names: list[str] = []
    sizes, mtimes = array("q"), array("q")
    entries: list[tuple[str, str]] = []
    with os.scandir(folder) as it:
        for entry in it:
            try:
                if entry.is_symlink():
                    entries.append(("l", entry.name))
                elif entry.is_dir(follow_symlinks=False):
                    entries.append(("d", entry.name))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    names.append(entry.name)
                    sizes.append(st.st_size)
                    mtimes.append(st.st_mtime_ns)
                else:
                    entries.append(("o", entry.name))
            except FileNotFoundError:
                continue  # removed while listed
    return names, sizes, mtimes, entries


def _is_destination(parent: str, name: str) -> bool:
    meta = os.path.join(parent, META_DIR, name)
    return os.path.exists(meta + ".verified") or os.path.exists(meta + ".lock")


def as_destination(dest: Destination | str | os.PathLike[str]) -> Destination:
    return dest if isinstance(dest, Destination) else Destination(dest)
