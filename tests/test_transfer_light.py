"""The CLI's pandas-free fetch path: same outcome as the full path, and it hands over when it must."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, expected_md5s, md5, tree_md5s

from isc_kit.cli.main import main
from isc_kit.records import HEADER, load_verified, record_path


def _fetch(pinned: Path, dest: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["-q", "fetch", str(pinned), str(dest), "--json", "--no-progress", "--jobs", "8"]) == 0
    return json.loads(capsys.readouterr().out)


def test_fresh_fetch_never_imports_pandas(s3_env: str, pinned: Path, tiny_root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ref"
    code = (
        "import json, sys; from isc_kit.cli.main import main; "
        f"rc = main(['-q', 'fetch', {str(pinned)!r}, {str(dest)!r}, '--no-progress', '--jobs', '8']); "
        "print(json.dumps([rc, sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [0, []]
    assert tree_md5s(dest) == expected_md5s(tiny_root)
    assert {r: e.md5 for r, e in load_verified(dest).items()} == expected_md5s(tiny_root)


def test_resume_transfers_only_what_is_missing_or_recorded_bad(
    s3_env: str, pinned: Path, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ref"
    assert _fetch(pinned, dest, capsys)["transferred"] == 40
    (dest / "R000004.jpg").unlink()
    (dest / "R000007.jpg").write_bytes(b"truncated")  # size differs from the record: refetched
    again = _fetch(pinned, dest, capsys)
    assert (again["transferred"], again["skipped"], again["ok"]) == (2, 38, True)
    assert tree_md5s(dest) == expected_md5s(tiny_root)
    lines = record_path(dest).read_text().splitlines()
    assert lines[0] + "\n" == HEADER
    rels = [line.split("\t")[0] for line in lines[1:]]
    assert rels == sorted(set(rels))  # compacted: one line per file
    assert len(rels) == 40


def test_unrecorded_files_are_hashed_by_the_full_path(
    s3_env: str, pinned: Path, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ref"
    shutil.copytree(tiny_root / PREFIX, dest)  # written by another tool: no record
    good = (dest / "R000009.jpg").read_bytes()
    (dest / "R000009.jpg").write_bytes(bytes([good[0] ^ 1]) + good[1:])  # same size, wrong bytes
    out = _fetch(pinned, dest, capsys)
    assert (out["transferred"], out["skipped"], out["ok"]) == (1, 39, True)
    assert md5((dest / "R000009.jpg").read_bytes()) == md5(good)
    assert len(load_verified(dest)) == 40
