"""The local side of a transfer: what a destination folder holds, safe paths in it, temp files.

Nothing here follows a symlink: a scan lists regular files only (``lstat``), a path derived
from a manifest must stay inside the destination after normalisation, and parent folders that
turn out to be symlinks are refused.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._proc import pid_alive
from .errors import UnsafePathError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TEMP_MARK = ".isc-part-"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.isc-part-(?P<pid>\d+)-[0-9a-f]+$")


@dataclass
class TreeScan:
    """Regular files below a folder (relpath, size, mtime_ns), and what was set aside.

    Kept compact (one Python string per file, sizes and mtimes in ``array('q')``) and free of
    pandas; :attr:`files` builds the DataFrame view on demand.
    """

    rels: list[str]
    sizes: array  # int64
    mtimes: array  # int64, st_mtime_ns
    temps: list[str] = field(default_factory=list)  # relpaths of isc-kit temp files
    symlinks: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rels)

    @property
    def files(self) -> pd.DataFrame:
        """``relpath, size, mtime_ns`` as a DataFrame (imports pandas)."""
        import numpy as np
        import pandas as pd

        return pd.DataFrame(
            {
                "relpath": pd.array(self.rels, dtype=pd.StringDtype("pyarrow")),
                "size": np.frombuffer(self.sizes, dtype=np.int64)
                if len(self.sizes)
                else np.zeros(0, np.int64),
                "mtime_ns": np.frombuffer(self.mtimes, dtype=np.int64)
                if len(self.mtimes)
                else np.zeros(0, np.int64),
            }
        )


def temp_name(final_name: str) -> str:
    """``.<name>.isc-part-<pid>-<random>``: recognisable, hidden, unique per writer."""
    return f".{final_name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


def is_temp(name: str) -> bool:
    return TEMP_MARK in name and _TEMP_RE.match(name) is not None


def scan(dest: str) -> TreeScan:
    """Walk ``dest`` without following symlinks. A missing folder scans as empty."""
    rels: list[str] = []
    sizes = array("q")
    mtimes = array("q")
    temps: list[str] = []
    links: list[str] = []
    stack = [("", dest)]
    while stack:
        prefix, folder = stack.pop()
        try:
            it = os.scandir(folder)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            raise UnsafePathError(f"{folder} is not a folder; pass a folder as the destination") from None
        with it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_symlink():
                    links.append(rel)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    if is_temp(entry.name):
                        temps.append(rel)
                        continue
                    st = entry.stat(follow_symlinks=False)
                    rels.append(rel)
                    sizes.append(st.st_size)
                    mtimes.append(st.st_mtime_ns)
    return TreeScan(rels, sizes, mtimes, temps, links)


def remove_stale_temps(dest: str, temps: list[str]) -> int:
    """Delete temp files whose writing process is gone; returns how many."""
    removed = 0
    for rel in temps:
        m = _TEMP_RE.match(rel.rsplit("/", 1)[-1])
        if m is None or pid_alive(int(m["pid"])):
            continue
        try:
            os.unlink(os.path.join(dest, rel))
            removed += 1
        except FileNotFoundError:
            pass
    if removed:
        logger.info("removed %d partial download(s) left by an interrupted run", removed)
    return removed


class SafeDest:
    """Joins relpaths to a destination, refusing anything that leaves it; creates parent folders safely."""

    def __init__(self, dest: str | os.PathLike[str]):
        self.root = os.path.abspath(dest)
        self._checked: set[str] = set()

    def path(self, relpath: str) -> str:
        """The absolute path of ``relpath`` inside the destination (UnsafePathError otherwise)."""
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

    def prune(self, files: Any, keep: Any) -> list[str]:
        """Delete the regular files in ``files`` (relpaths from a scan) not in ``keep``; returns them."""
        gone = []
        for rel in files:
            if rel in keep:
                continue
            full = self.path(rel)
            if os.path.isfile(full) and not os.path.islink(full):
                os.unlink(full)
                gone.append(rel)
        if gone:
            logger.info("pruned %d file(s) that the manifest does not list", len(gone))
        return gone
