"""One writer per destination: an advisory lock file beside the folder, never inside it.

``<dest parent>/.isc-kit/<dest name>.lock`` (next to the verified record) is locked with
``flock`` for as long as a transfer writes into the folder. A second writer fails at once with a
clear message naming the holder; readers (planning, ``verify`` without ``--repair``) never lock.
The kernel releases the lock when its process ends in any way, ``kill -9`` included, so a stale
lock cannot block anyone; the small file itself stays, like the record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import DestinationError
from .records import RECORD_DIR

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks; temp files + os.replace keep writers safe anyway
    fcntl = None  # type: ignore[assignment]


def lock_path(dest: str | os.PathLike[str]) -> Path:
    d = Path(os.path.abspath(dest))
    return d.parent / RECORD_DIR / f"{d.name}.lock"


@contextlib.contextmanager
def destination_lock(dest: str | os.PathLike[str], *, what: str = "fetch") -> Iterator[Path]:
    """Hold the destination's lock for the ``with`` block; :class:`DestinationError` if another process holds it."""
    path = lock_path(dest)
    if fcntl is None:
        yield path
        return
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
                f"{os.path.abspath(dest)} is being written by another isc-kit process ({holder}); "
                "wait for it to finish or stop it, then rerun (a rerun resumes where it stopped)"
            ) from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {what} since {stamp}\n".encode(), 0)
        logger.debug("locked %s", path)
        yield path
    finally:
        os.close(fd)  # releases the lock
