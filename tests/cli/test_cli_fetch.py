"""``isc-kit fetch`` / ``isc-kit verify`` end to end: exit codes, stdout JSON, one-line errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, expected_md5s, tree_md5s

from isc_kit.cli.main import main
from isc_kit.metadata import read_metadata
from isc_kit.pinned import write_pinned


def test_fetch_json_then_rerun_then_verify(
    s3_env: str, pinned: Path, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "data" / "ref"
    assert main(["-q", "fetch", str(pinned), str(dest), "--json", "--jobs", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["transferred"], out["skipped"], out["failed"], out["ok"]) == (40, 0, [], True)
    assert out["bytes"] == sum(p.stat().st_size for p in (tiny_root / PREFIX).iterdir())
    assert tree_md5s(dest) == expected_md5s(tiny_root)

    assert main(["-q", "fetch", str(pinned), str(dest), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["transferred"], again["skipped"]) == (0, 40)

    assert main(["-q", "verify", str(pinned), str(dest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["verified"], report["ok"]) == (40, True)


def test_dry_run_prints_the_plan_and_writes_nothing(
    pinned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ref"
    assert main(["-q", "fetch", str(pinned), str(dest), "--dry-run"]) == 0
    assert "fetch 40 of 40 reference files" in capsys.readouterr().out
    assert not dest.exists()
    assert main(["-q", "fetch", str(pinned), str(dest), "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing"] == 40


def test_verify_repair_fixes_a_corrupted_file(
    s3_env: str, pinned: Path, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ref"
    assert main(["-q", "fetch", str(pinned), str(dest)]) == 0
    (dest / "R000003.jpg").write_bytes(b"corrupted")
    assert main(["-q", "verify", str(pinned), str(dest)]) == 1
    captured = capsys.readouterr()
    assert "R000003.jpg: corrupt: md5 is" in captured.err
    assert main(["-q", "verify", str(pinned), str(dest), "--repair", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["corrupt_count"] == 1
    assert out["repair"]["transferred"] == 1
    assert out["ok"] is True
    assert tree_md5s(dest) == expected_md5s(tiny_root)


def test_failures_exit_nonzero_with_reasons(
    s3_env: str, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    m = read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference")
    path = tmp_path / "bad.pinned"
    write_pinned(replace(m.subset(m.table.index < 3), bucket="no-such-bucket"), path)
    assert main(["-q", "fetch", str(path), str(tmp_path / "ref"), "--json"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert len(out["failed"]) == 3
    assert not out["ok"]
    assert "not found (404)" in captured.err
    assert "check the bucket name" in captured.err
    assert "Traceback" not in captured.err


def test_bad_manifest_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.pinned"
    bad.write_text("image_id,relpath\n")
    assert main(["fetch", str(bad), str(tmp_path / "ref")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("isc-kit fetch: error:")
    assert "not a pinned manifest" in err
    assert "Traceback" not in err
    assert main(["fetch", str(tmp_path / "missing.pinned"), str(tmp_path / "ref")]) == 3
    assert "no such file" in capsys.readouterr().err


def test_region_auto_is_accepted(
    s3_env: str, pinned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "fetch", str(pinned), str(tmp_path / "ref"), "--region", "auto", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["region"] in ("us-west", "eu", "asia")
