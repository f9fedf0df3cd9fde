"""Verify and repair: every byte re-read (in parallel), missing/corrupt/extra reported, only bad files re-fetched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, expected_md5s, md5, recorded, tree_md5s

from isc_kit import _hashing
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.transfer import fetch, plan_fetch, repair
from isc_kit.verify import verify


@pytest.fixture
def ref_manifest(tiny_root: Path) -> Manifest:
    return read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference")


def test_verify_a_tree_copied_by_another_tool(
    ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    shutil.copytree(tiny_root / PREFIX, dest)
    report = verify(ref_manifest, dest)
    assert report.ok
    assert report.verified == 40
    assert (report.missing, report.corrupt, report.extra) == ([], [], [])
    assert report.bytes == sum(p.stat().st_size for p in dest.iterdir())
    # the record now lets fetch skip without reading
    assert plan_fetch(ref_manifest, dest).hashed == 0


def test_bit_rot_with_unchanged_mtime_is_found_and_repaired(
    s3_env: str, ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    assert fetch(ref_manifest, dest).ok
    victim = dest / "R000010.jpg"
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only hashing can tell
    (dest / "R000011.jpg").unlink()
    (dest / "notes.txt").write_text("extra")
    report = verify(ref_manifest, dest)
    assert not report.ok
    assert report.corrupt == ["R000010.jpg"]
    assert report.missing == ["R000011.jpg"]
    assert report.extra == ["notes.txt"]
    assert report.verified == 38
    assert md5(bytes(data)) in report.reasons["R000010.jpg"]
    assert "R000010.jpg" not in recorded(dest)
    d = report.to_dict()
    assert (d["corrupt_count"], d["missing_count"], d["extra_count"], d["ok"]) == (1, 1, 1, False)
    result = repair(ref_manifest, dest, report=report)
    assert result.ok
    assert result.transferred == 2
    expected = expected_md5s(tiny_root)
    assert tree_md5s(dest) == {**expected, "notes.txt": md5(b"extra")}
    assert verify(ref_manifest, dest).ok


def test_parallel_hashing_matches_hashlib(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_hashing, "_INLINE_BYTES", 0)  # force worker processes on tiny files
    files = sorted((tiny_root / PREFIX).iterdir())
    items = [(i, str(p), p.stat().st_size) for i, p in enumerate(files)]
    got = {h.row: h.md5 for h in _hashing.hash_files(items, jobs=2)}
    assert got == {i: md5(p.read_bytes()) for i, p in enumerate(files)}


def test_unreadable_entry_is_reported_not_raised(tmp_path: Path) -> None:
    [h] = list(_hashing.hash_files([(0, str(tmp_path / "gone.jpg"), 1)], jobs=1))
    assert h.md5 is None
    assert "FileNotFoundError" in h.error
