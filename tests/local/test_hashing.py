"""Hashing local files in batches (multi-buffer MD5 into one reusable buffer; big files streamed)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from isc_kit._hashing import hash_files


def _tree(tmp_path: Path) -> dict[str, bytes]:
    rng = random.Random(3)
    sizes = [0, 1, 55, 56, 64, 177_000, 9 << 20, 30 << 20, *(rng.randrange(1, 400_000) for _ in range(150))]
    bodies = {f"f{i:03d}.bin": rng.randbytes(n) for i, n in enumerate(sizes)}
    for name, body in bodies.items():
        (tmp_path / name).write_bytes(body)
    return bodies


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_file_hashed_like_hashlib_whatever_its_size(tmp_path: Path, jobs: int) -> None:
    bodies = _tree(tmp_path)
    names = sorted(bodies)
    items = [(i, str(tmp_path / n), len(bodies[n])) for i, n in enumerate(names)]
    total = sum(len(b) for b in bodies.values())
    got = {h.row: h for h in hash_files(items, jobs=jobs, total_bytes=total if jobs == 1 else 1 << 40)}
    assert len(got) == len(names)
    for i, name in enumerate(names):
        st = os.stat(tmp_path / name)
        assert got[i].md5 == hashlib.md5(bodies[name]).hexdigest(), name
        assert (got[i].size, got[i].mtime_ns, got[i].error) == (st.st_size, st.st_mtime_ns, "")


def test_unreadable_entries_are_reported_without_stopping_the_batch(tmp_path: Path) -> None:
    (tmp_path / "ok.bin").write_bytes(b"fine")
    (tmp_path / "target.bin").write_bytes(b"secret")
    (tmp_path / "link.bin").symlink_to(tmp_path / "target.bin")
    items = [
        (0, str(tmp_path / "ok.bin"), 4),
        (1, str(tmp_path / "link.bin"), 6),  # never followed
        (2, str(tmp_path / "missing.bin"), 3),
        (3, str(tmp_path / "target.bin"), 6),
    ]
    got = {h.row: h for h in hash_files(items, jobs=1)}
    assert got[0].md5 == hashlib.md5(b"fine").hexdigest()
    assert got[1].md5 is None  # O_NOFOLLOW: a symlink is an error, not its target's bytes
    assert "symbolic links" in got[1].error or "ELOOP" in got[1].error
    assert got[2].md5 is None
    assert "FileNotFoundError" in got[2].error
    assert got[3].md5 == hashlib.md5(b"secret").hexdigest()


def test_hashlib_backend_gives_the_same_digests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = _tree(tmp_path)
    items = [(i, str(tmp_path / n), len(bodies[n])) for i, n in enumerate(sorted(bodies))]
    fast = {h.row: h.md5 for h in hash_files(items, jobs=1)}
    monkeypatch.setenv("ISC_KIT_MD5_BACKEND", "hashlib")
    slow = {h.row: h.md5 for h in hash_files(items, jobs=1)}
    assert fast == slow
