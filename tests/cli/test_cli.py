"""The spine's commands, run as a user would: a subprocess, stdout for results, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BUCKET = "drivendata-competition-fb-isc-data"
QUERY_CSV = f"s3://{BUCKET}/metadata/query_images_metadata.csv"


def isc_kit(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "isc_kit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def test_catalog_json() -> None:
    out = isc_kit("catalog", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    sets = {s["set"]: s for s in data["sets"]}
    assert sets["query"]["count"] == 50_000
    assert sets["reference"]["ids"] == "R000000-R999999"
    assert sets["training"]["prefix"] == "all/training_images/"
    assert {r["bucket"] for r in data["regions"]} == {BUCKET, BUCKET + "-eu", BUCKET + "-asia"}
    phases = {p["phase"]: p for p in data["phases"]}
    assert (phases[2]["queries"], phases[2]["ground_truth"]) == ("phase2", "final_ground_truth.csv")
    assert phases[1]["location"] == f"s3://{BUCKET}/metadata/public_ground_truth.csv"


def test_ls_json_from_publisher_csv(s3_env: str, tiny_root: Path) -> None:
    out = isc_kit("ls", "query", "--metadata", QUERY_CSV, "--exclude", "*", "--include", "Q0001*", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["count"] == 10
    assert data["first_ids"][0] == "Q00010"
    assert data["bytes"] is None  # the publisher's CSV has no sizes


def test_ls_json_from_listing_has_bytes(s3_env: str, tiny_root: Path) -> None:
    out = isc_kit("ls", "reference", "--from-listing", "--ids", "R000000:R000004", "--json", "--region", "eu")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    expected = sum((tiny_root / f"all/reference_images/R00000{i}.jpg").stat().st_size for i in range(5))
    assert (data["count"], data["bytes"]) == (5, expected)


def test_manifest_from_csv_and_listing_agree(s3_env: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pinned", tmp_path / "b.pinned"
    sel = ["--sample", "7", "--seed", "11"]
    assert isc_kit("manifest", "query", "--metadata", QUERY_CSV, "-o", str(a), *sel).returncode == 0
    assert isc_kit("manifest", "query", "--from-listing", "-o", str(b), *sel).returncode == 0
    ids_a = [line.split(",")[0] for line in a.read_text().splitlines() if line.startswith("Q")]
    ids_b = [line.split(",")[0] for line in b.read_text().splitlines() if line.startswith("Q")]
    assert len(ids_a) == 7
    assert ids_a == ids_b


def test_manifest_rejects_bad_csv_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "image_id,s3_uri,md5_checksum\nQ00001,s3://elsewhere/all/query_images/Q00001.jpg," + "a" * 32 + "\n"
    )
    out = isc_kit("manifest", "query", "--metadata", str(csv), "-o", str(tmp_path / "out.pinned"))
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1
    assert "line 2" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out.pinned").exists()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["ls", "movies", "--metadata", "x.csv"], 2, "unknown set 'movies'"),
        (["ls", "query", "--metadata", "nope.csv"], 3, "no such file"),
        (["ls", "query", "--metadata", "q.csv", "--ids", "Q9:Q1"], 2, "id range"),
        (["ls", "query", "--from-listing", "--endpoint-url", "localhost:1"], 2, "http://"),
    ],
)
def test_errors_are_one_line_with_exit_codes(tmp_path: Path, args: list[str], code: int, words: str) -> None:
    row = "Q00000,s3://drivendata-competition-fb-isc-data/all/query_images/Q00000.jpg," + "0" * 32
    (tmp_path / "q.csv").write_text(f"image_id,s3_uri,md5_checksum\n{row}\n")
    out = isc_kit(*args, cwd=tmp_path)
    assert out.returncode == code, out.stderr
    assert words in out.stderr
    assert "Traceback" not in out.stderr


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    out = isc_kit("-v", "ls", "query", "--metadata", str(tmp_path / "nope.csv"))
    assert out.returncode == 3
    assert "Traceback" in out.stderr


def test_unreachable_endpoint_is_one_clear_line() -> None:
    out = isc_kit("ls", "query", "--from-listing", "--endpoint-url", "http://127.0.0.1:9")
    assert out.returncode == 4, out.stderr
    assert "cannot reach S3 at http://127.0.0.1:9" in out.stderr
    assert "Traceback" not in out.stderr
