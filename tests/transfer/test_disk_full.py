"""A full disk and a read-only destination: a clear error, no partial file, and a rerun with space completes.

The small filesystem is a real tmpfs mounted by the test (root only; skipped with the reason otherwise),
so the kernel itself answers ENOSPC / EROFS in the middle of a transfer.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, manifest_for, md5, recorded, tree_md5s

from isc_kit.cli.main import main
from isc_kit.pinned import write_pinned


def _mount(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """A 2 MB tmpfs at tmp_path/small; the fixture value remounts it with other options."""
    target = tmp_path / "small"
    _mount(target, "size=2m,mode=0755")

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(target)], check=True)

    yield remount
    subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def three_mb(make_bucket: Callable[..., str], tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """30 objects of 100 KB (incompressible) and their pinned manifest; relpath -> md5 (hashlib)."""
    rng = random.Random(42)
    bodies = {f"R{i:06d}.jpg": rng.randbytes(100_000) for i in range(30)}
    bucket = make_bucket({PREFIX + k: v for k, v in bodies.items()})
    pinned = tmp_path / "m.pinned"
    write_pinned(manifest_for(bucket, {k: (md5(v), len(v)) for k, v in bodies.items()}), pinned)
    return pinned, {k: md5(v) for k, v in bodies.items()}


def _fetch(pinned: Path, dest: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code = main(["-q", "fetch", str(pinned), str(dest), "--json", "--jobs", "4", "--retries", "1"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".isc-part-" in p.name or ".tmp-" in p.name]


def test_disk_full_fails_clearly_leaves_no_partial_file_and_resumes(
    s3_env: str, small_fs: Callable[[str], None], three_mb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned, want = three_mb
    dest = tmp_path / "small" / "data" / "ref"
    code, out, err = _fetch(pinned, dest, capsys)
    assert code == 1
    assert "No space left on device" in err, err
    assert "free space" in err  # what to do about it
    assert "Traceback" not in err
    on_disk = tree_md5s(dest)
    assert 0 < len(on_disk) < len(want)
    assert all(want[r] == h for r, h in on_disk.items())  # no partial or wrong file under a final name
    assert _leftovers(tmp_path / "small") == []
    failed = {f["relpath"] for f in out["failed"]}
    assert failed == set(want) - set(on_disk)
    assert out["transferred"] == len(on_disk)
    assert {r: e.md5 for r, e in recorded(dest).items()}.items() <= on_disk.items()

    small_fs("size=8m")
    code, out, err = _fetch(pinned, dest, capsys)
    assert code == 0, err
    assert out["transferred"] == len(failed)
    assert tree_md5s(dest) == want
    assert _leftovers(tmp_path / "small") == []


def test_read_only_destination_is_one_clear_error(
    s3_env: str, small_fs: Callable[[str], None], three_mb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned, _want = three_mb
    dest = tmp_path / "small" / "ref"
    dest.mkdir()
    small_fs("ro")
    code, _out, err = _fetch(pinned, dest, capsys)
    assert code not in (0, 70), err  # 70 would be an internal error
    assert "Read-only file system" in err, err
    assert "Traceback" not in err
    assert list(dest.iterdir()) == []


def test_read_only_parent_of_a_new_destination(
    s3_env: str, small_fs: Callable[[str], None], three_mb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned, _want = three_mb
    small_fs("ro")
    dest = tmp_path / "small" / "new" / "ref"
    code, _out, err = _fetch(pinned, dest, capsys)
    assert code not in (0, 70), err
    assert "Read-only file system" in err
    assert "Traceback" not in err
    assert not dest.exists()
