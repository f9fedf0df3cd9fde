"""Helpers shared by the fetch/verify tests: manifests built by hand, expected MD5s computed independently."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from isc_kit.manifest import Manifest

PREFIX = "all/reference_images/"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def manifest_for(
    bucket: str, rows: dict[str, tuple[str | None, int | None]], prefix: str = PREFIX
) -> Manifest:
    """A reference-set manifest of ``{relpath: (md5, size)}`` for ``bucket``."""
    rels = sorted(rows)
    table = pd.DataFrame(
        {
            "image_id": pd.array([r.removesuffix(".jpg") for r in rels], dtype=pd.StringDtype("pyarrow")),
            "relpath": pd.array(rels, dtype=pd.StringDtype("pyarrow")),
            "md5": pd.array([rows[r][0] for r in rels], dtype=pd.StringDtype("pyarrow")),
            "size": pd.array([rows[r][1] for r in rels], dtype="Int64"),
        }
    )
    return Manifest.from_pandas("reference", bucket, prefix, table)


def tree_md5s(root: Path) -> dict[str, str]:
    """relpath -> md5 of every regular file below root (hashlib, independent of isc_kit)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = md5(p.read_bytes())
    return out


def expected_md5s(tiny_root: Path, prefix: str = PREFIX) -> dict[str, str]:
    return tree_md5s(tiny_root / prefix)


def fetch_cmd(pinned: Path, dest: Path, *extra: str, jobs: int | None = None) -> list[str]:
    """``isc-kit -q fetch PINNED DEST`` as a subprocess argv (quiet, no progress bar unless jobs is None)."""
    cmd = [sys.executable, "-m", "isc_kit", "-q", "fetch", str(pinned), str(dest)]
    if jobs is not None:
        cmd += ["--jobs", str(jobs), "--no-progress"]
    return [*cmd, *extra]


class Recorded(NamedTuple):
    size: int
    mtime_ns: int
    md5: str


def recorded(dest: str | os.PathLike[str]) -> dict[str, Recorded]:
    """What the verified record beside ``dest`` says, latest line per file (read with isc_kit's one reader)."""
    from isc_kit.local import Destination
    from isc_kit.records import iter_entries

    return {rel: Recorded(s, m, h) for rel, s, m, h in iter_entries(Destination(dest).record_path)}
