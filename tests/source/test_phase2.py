"""Phase 2 as a first-class path: the catalog's phases, the synthetic Phase-2 set and its served ground truth."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isc_kit import fixture
from isc_kit.catalog import PHASES, get_phase, phase_of_set
from isc_kit.errors import ConfigError
from isc_kit.fixture import Scale
from isc_kit.groundtruth import load_ground_truth

BUCKET = "drivendata-competition-fb-isc-data"
SMALL = Scale("p2small", 60, 10, 0, 40, min_side=64, max_side=128, quality=80)


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- the catalog


def test_phases_name_their_query_set_and_the_publishers_ground_truth_file() -> None:
    assert (PHASES[1].query_set, PHASES[1].ground_truth_name) == ("query", "public_ground_truth.csv")
    assert (PHASES[2].query_set, PHASES[2].ground_truth_name) == ("phase2", "final_ground_truth.csv")
    assert PHASES[2].queries.first_id == "Q50000"
    assert get_phase("2") is get_phase(2) is get_phase("phase2") is PHASES[2]
    assert phase_of_set("phase2") is PHASES[2]
    assert phase_of_set("reference") is None


@pytest.mark.parametrize("bad", [0, 3, "three", "", True, None])
def test_an_unknown_phase_is_one_line_naming_the_choices(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        get_phase(bad)
    message = str(err.value)
    assert "\n" not in message
    assert "unknown phase" in message
    assert "2 = Phase 2" in message


def test_the_ground_truth_location_is_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    phase = PHASES[2]
    monkeypatch.delenv("ISC_KIT_PHASE2_GROUND_TRUTH", raising=False)
    assert phase.ground_truth() == f"s3://{BUCKET}/metadata/final_ground_truth.csv"
    assert phase.ground_truth(bucket="my-mirror-eu") == "s3://my-mirror/metadata/final_ground_truth.csv"
    monkeypatch.setenv("ISC_KIT_PHASE2_GROUND_TRUTH", "/data/isc/final_ground_truth.csv")
    assert phase.ground_truth() == "/data/isc/final_ground_truth.csv"  # the environment beats the default
    assert phase.ground_truth("gt.csv") == "gt.csv"  # an explicit value beats both
    assert PHASES[1].ground_truth() == f"s3://{BUCKET}/metadata/public_ground_truth.csv"  # per phase


# ---------------------------------------------------------------- the synthetic Phase-2 set


def test_phase2_fixture_is_byte_identical_when_made_twice(tmp_path: Path) -> None:
    first = fixture.materialize(SMALL, cache_dir=tmp_path / "a", workers=1)
    second = fixture.materialize(SMALL, cache_dir=tmp_path / "b", workers=2)
    a, b = _tree(first), _tree(second)
    phase2 = {k for k in a if k.startswith("all/query_images_phase2/")}
    assert len(phase2) == 40
    assert a == b
    assert "metadata/final_ground_truth.csv" in a
    assert "metadata/query_images_phase2_metadata.csv" in a
    assert fixture.materialize(SMALL, seed=1, cache_dir=tmp_path / "c") != first
    assert _tree(fixture.materialize(SMALL, seed=1, cache_dir=tmp_path / "c")) != a


def test_phase2_csvs_are_in_the_publishers_format(tmp_path: Path) -> None:
    root = fixture.materialize(SMALL, cache_dir=tmp_path)
    meta = (root / "metadata/query_images_phase2_metadata.csv").read_text().splitlines()
    assert meta[0] == "image_id,s3_uri,md5_checksum"
    first = meta[1].split(",")
    assert first[0] == "Q50000"
    assert first[1] == f"s3://{BUCKET}/all/query_images_phase2/Q50000.jpg"
    assert first[2] == hashlib.md5((root / "all/query_images_phase2/Q50000.jpg").read_bytes()).hexdigest()
    rows = list(csv.reader(io.StringIO((root / "metadata/final_ground_truth.csv").read_text())))
    assert rows[0] == ["query_id", "reference_id"]
    assert [q for q, _ in rows[1:]] == [f"Q{n:05d}" for n in range(50_000, 50_040)]
    matched = [(q, r) for q, r in rows[1:] if r]
    assert len(matched) == 8  # match_fraction 0.2 of 40; the rest are distractors (empty reference_id)
    gt = load_ground_truth(root / "metadata/final_ground_truth.csv")
    assert gt.n_pairs == 8
    assert len(gt.distractors) == 32
    for _, r in matched:
        assert (root / "all/reference_images" / f"{r}.jpg").is_file()


def _gray(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("L").resize((16, 16), Image.Resampling.BOX), np.float32)
    return (a - a.mean()) / (a.std() + 1e-6)


def test_phase2_copies_are_real_edits_and_some_are_mirrored() -> None:
    scale = Scale("p2sim", 200, 0, 0, 200, min_side=96, max_side=160, quality=85)
    refs = np.stack([_gray(fixture.render("reference", n, scale)).ravel() for n in range(scale.references)])
    mirrored = beats = 0
    pairs = [(int(q[1:]), int(r[1:])) for q, r in fixture.ground_truth(scale, set_name="phase2") if r]
    assert len(pairs) == 40
    for q, r in pairs:
        query = _gray(fixture.render("phase2", q, scale))
        assert fixture.render("phase2", q, scale) != fixture.render("reference", r, scale)
        plain = np.abs(refs - query.ravel()).sum(axis=1)
        flipped = np.abs(refs - query[:, ::-1].ravel()).sum(axis=1)
        best = np.minimum(plain, flipped)
        beats += best[r] < np.median(best)
        mirrored += flipped[r] < plain[r]
    assert beats >= 0.7 * len(pairs), "matched Phase-2 queries resemble their reference"
    assert 4 <= mirrored <= 24, f"about 30% mirrored (a Phase-2-only transform), got {mirrored}"


def test_the_embedded_s3_serves_phase2_and_its_ground_truth_in_all_regions(
    boto_client: object, tiny_root: Path
) -> None:
    expected = (tiny_root / "metadata/final_ground_truth.csv").read_bytes()
    for suffix in ("", "-eu", "-asia"):
        bucket = BUCKET + suffix
        body = boto_client.get_object(Bucket=bucket, Key="metadata/final_ground_truth.csv")["Body"].read()  # type: ignore[attr-defined]
        assert body == expected
        listed = boto_client.list_objects_v2(Bucket=bucket, Prefix="all/query_images_phase2/")  # type: ignore[attr-defined]
        assert [o["Key"] for o in listed["Contents"]] == [
            f"all/query_images_phase2/Q{n:05d}.jpg" for n in range(50_000, 50_010)
        ]
        meta = boto_client.get_object(Bucket=bucket, Key="metadata/query_images_phase2_metadata.csv")  # type: ignore[attr-defined]
        assert meta["Body"].read().startswith(b"image_id,s3_uri,md5_checksum\nQ50000,")
