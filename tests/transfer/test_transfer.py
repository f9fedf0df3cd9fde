"""Fetch against the real embedded S3 server: full, resumed, bad bytes, 403/404, mirrors, prune, paths."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, expected_md5s, manifest_for, md5, recorded, tree_md5s

from isc_kit.local import Destination
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.transfer import FetchPlan, fetch, plan_fetch


@pytest.fixture
def ref_manifest(tiny_root: Path) -> Manifest:
    return read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference")


def _temps(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".isc-part-" in p.name]


def test_full_fetch_is_verified_and_dest_holds_only_images(
    s3_env: str, ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    result = fetch(ref_manifest, dest, jobs=8)
    expected = expected_md5s(tiny_root)
    assert len(expected) == 40
    assert result.ok, result.failed
    assert (result.transferred, result.skipped, result.failed) == (40, 0, [])
    assert result.bytes == sum((tiny_root / PREFIX / r).stat().st_size for r in expected)
    assert tree_md5s(dest) == expected  # exactly the images, nothing else in the folder
    verified = recorded(dest)
    assert {r: e.md5 for r, e in verified.items()} == expected
    assert Destination(dest).record_path.parent == tmp_path / ".isc-kit"
    d = result.to_dict()
    assert d["transferred"] == 40
    assert d["failed"] == []
    assert d["bytes"] == result.bytes


def test_rerun_transfers_nothing_and_reads_nothing(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    assert fetch(ref_manifest, dest).ok
    plan = plan_fetch(ref_manifest, dest)
    assert plan.counts == {"missing": 0, "verified": 40, "unverified": 0, "corrupt": 0, "unchecked": 0}
    assert plan.hashed == 0
    assert len(plan.to_fetch) == 0
    again = fetch(ref_manifest, dest)
    assert (again.transferred, again.skipped, again.ok) == (0, 40, True)


def test_plan_of_a_tree_written_by_another_tool_hashes_once(
    ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    shutil.copytree(tiny_root / PREFIX, dest)  # like `aws s3 cp --recursive`
    (dest / "R000005.jpg").write_bytes(b"garbage")
    (dest / "R000006.jpg").unlink()
    plan = plan_fetch(ref_manifest, dest)
    assert plan.counts == {"missing": 1, "verified": 38, "unverified": 0, "corrupt": 1, "unchecked": 0}
    assert plan.hashed == 39  # metadata CSVs carry no sizes: every present file is read once
    assert sorted(plan.to_fetch.table["relpath"]) == ["R000005.jpg", "R000006.jpg"]
    assert "2 of 40" in str(plan)
    again = plan_fetch(ref_manifest, dest)
    assert again.hashed == 1  # only the corrupt file is read again
    assert plan_fetch(ref_manifest, dest, rehash=True).hashed == 39


def test_corrupt_local_file_is_replaced(
    s3_env: str, ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    assert fetch(ref_manifest, dest).ok
    (dest / "R000007.jpg").write_bytes(b"not a jpeg")
    result = fetch(ref_manifest, dest)
    assert (result.transferred, result.skipped, result.ok) == (1, 39, True)
    assert tree_md5s(dest) == expected_md5s(tiny_root)


def test_bucket_bytes_that_disagree_with_the_manifest_are_never_kept(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    good, evil = b"the publisher's bytes", b"something else entirely"
    bucket = make_bucket({PREFIX + "R000001.jpg": evil, PREFIX + "R000002.jpg": good})
    m = manifest_for(bucket, {"R000001.jpg": (md5(good), None), "R000002.jpg": (md5(good), None)})
    dest = tmp_path / "ref"
    result = fetch(m, dest, retries=1)
    assert not result.ok
    assert result.transferred == 1
    [(rel, reason)] = result.failed
    assert rel == "R000001.jpg"
    assert md5(evil) in reason
    assert md5(good) in reason
    assert "discarded" in reason
    assert not (dest / "R000001.jpg").exists()
    assert _temps(dest) == []
    assert (dest / "R000002.jpg").read_bytes() == good
    assert "R000001.jpg" not in recorded(dest)


def test_size_that_disagrees_with_the_manifest_is_a_failure(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    body = b"x" * 100
    bucket = make_bucket({PREFIX + "R000001.jpg": body})
    m = manifest_for(bucket, {"R000001.jpg": (md5(body), 99)})
    result = fetch(m, tmp_path / "ref", retries=1)
    [(_, reason)] = result.failed
    assert "size is 100 bytes, manifest says 99" in reason
    assert not (tmp_path / "ref" / "R000001.jpg").exists()


def test_404_and_403_fail_fast_with_what_to_check(
    s3_env: str, make_bucket: Callable[..., str], boto_client: object, tmp_path: Path
) -> None:
    import uuid

    bucket = f"private-{uuid.uuid4().hex[:12]}"  # not public-read: anonymous GETs are refused
    boto_client.create_bucket(  # type: ignore[attr-defined]
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    boto_client.put_object(Bucket=bucket, Key=PREFIX + "R000002.jpg", Body=b"private")  # type: ignore[attr-defined]
    m = manifest_for(bucket, {"R000001.jpg": (md5(b"a"), None), "R000002.jpg": (md5(b"private"), None)})
    result = fetch(m, tmp_path / "ref", retries=3)
    reasons = dict(result.failed)
    assert "not found (404)" in reasons["R000001.jpg"]
    assert "check the bucket name, the region" in reasons["R000001.jpg"]
    assert "access denied (403)" in reasons["R000002.jpg"]
    assert "credentials" in reasons["R000002.jpg"]
    assert result.seconds < 5  # no backoff on 403/404
    assert not (tmp_path / "ref").exists() or not any((tmp_path / "ref").iterdir())


def test_unknown_bucket_names_the_bucket(s3_env: str, tmp_path: Path) -> None:
    m = manifest_for("no-such-bucket-here", {"R000001.jpg": (md5(b"a"), None)})
    [(_, reason)] = fetch(m, tmp_path / "ref").failed
    assert "s3://no-such-bucket-here/all/reference_images/R000001.jpg" in reason
    assert "404" in reason


def test_mismatch_is_retried_from_a_mirror(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    good = b"good bytes"
    base = make_bucket({PREFIX + "R000001.jpg": b"stale copy"})
    make_bucket({PREFIX + "R000001.jpg": good}, name=base + "-eu")
    m = manifest_for(base, {"R000001.jpg": (md5(good), len(good))})
    result = fetch(m, tmp_path / "ref", mirrors=["eu"], retries=3)
    assert result.ok, result.failed
    assert (tmp_path / "ref" / "R000001.jpg").read_bytes() == good


def test_region_auto_and_explicit_mirror(
    s3_env: str, ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    auto = fetch(ref_manifest.subset(ref_manifest.table.index < 5), tmp_path / "a", region="auto")
    assert auto.ok
    assert auto.transferred == 5
    assert auto.region in ("us-west", "eu", "asia")
    eu = fetch(ref_manifest.subset(ref_manifest.table.index < 5), tmp_path / "b", region="eu")
    assert eu.ok
    assert eu.region == "eu"
    assert tree_md5s(tmp_path / "b") == {r: h for r, h in expected_md5s(tiny_root).items() if r < "R000005"}


def test_unknown_md5_is_fetched_but_reported_unverified(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path
) -> None:
    bucket = make_bucket({PREFIX + "R000001.jpg": b"multipart"})
    m = manifest_for(bucket, {"R000001.jpg": (None, 9)})
    result = fetch(m, tmp_path / "ref")
    assert result.ok
    assert result.unverified == 1
    assert "unverified" in result.summary()
    strict = fetch(m, tmp_path / "strict", require_md5=True)
    assert not strict.ok
    assert "--require-md5" in strict.failed[0][1]
    assert not (tmp_path / "strict" / "R000001.jpg").exists()


def test_prune_deletes_only_unlisted_regular_files_inside_dest(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    small = ref_manifest.subset(ref_manifest.table.index < 3)
    assert fetch(small, dest).ok
    (dest / "R000039.jpg").write_bytes(b"from a wider selection")
    (dest / "sub").mkdir()
    (dest / "sub" / "old.jpg").write_bytes(b"old")
    outside = tmp_path / "keep.txt"
    outside.write_text("mine")
    (dest / "link.txt").symlink_to(outside)
    plan = plan_fetch(small, dest)
    assert sorted(plan.extra) == ["R000039.jpg", "sub/old.jpg"]
    result = fetch(plan, prune=True)
    assert result.pruned == 2
    assert result.ok
    assert sorted(p.name for p in dest.iterdir()) == [
        "R000000.jpg",
        "R000001.jpg",
        "R000002.jpg",
        "link.txt",
        "sub",
    ]
    assert outside.read_text() == "mine"


def test_prune_waits_for_the_destination_lock(s3_env: str, ref_manifest: Manifest, tmp_path: Path) -> None:
    from isc_kit.errors import DestinationError
    from isc_kit.local import Destination

    dest = tmp_path / "ref"
    small = ref_manifest.subset(ref_manifest.table.index < 2)
    assert fetch(small, dest).ok
    (dest / "R000039.jpg").write_bytes(b"another writer's file")
    with Destination(dest).lock(what="test"), pytest.raises(DestinationError):
        fetch(small, dest, prune=True)
    assert (dest / "R000039.jpg").read_bytes() == b"another writer's file"  # untouched while locked
    assert fetch(small, dest, prune=True).pruned == 1
    assert not (dest / "R000039.jpg").exists()


def test_stale_temp_files_are_cleaned_and_never_count(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    dest.mkdir()
    stale = dest / ".R000000.jpg.isc-part-999999999-abcd1234"  # a pid that cannot exist
    stale.write_bytes(b"half")
    small = ref_manifest.subset(ref_manifest.table.index < 2)
    plan = plan_fetch(small, dest)
    assert plan.temps == [stale.name]
    assert plan.extra == []
    assert fetch(plan).ok
    assert _temps(dest) == []


def test_paths_never_leave_dest(s3_env: str, make_bucket: Callable[..., str], tmp_path: Path) -> None:
    bucket = make_bucket({"all/R000001.jpg": b"a", PREFIX + "sub/R000002.jpg": b"b"})
    m = manifest_for(bucket, {"../R000001.jpg": (md5(b"a"), 1), "sub/R000002.jpg": (md5(b"b"), 1)})
    dest = tmp_path / "ref"
    dest.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dest / "sub").symlink_to(elsewhere)
    result = fetch(m, dest)
    reasons = dict(result.failed)
    assert "outside" in reasons["../R000001.jpg"]
    assert "symlink" in reasons["sub/R000002.jpg"]
    assert not (tmp_path / "R000001.jpg").exists()
    assert list(elsewhere.iterdir()) == []


def test_plan_is_a_value(ref_manifest: Manifest, tmp_path: Path) -> None:
    plan = plan_fetch(ref_manifest, tmp_path / "nothing-yet")
    assert isinstance(plan, FetchPlan)
    assert plan.counts["missing"] == 40
    assert len(plan.to_fetch) == 40
    assert not (tmp_path / "nothing-yet").exists()  # planning creates nothing
    assert plan.to_dict()["to_fetch"] == 40


def test_unreachable_endpoint_stops_early_with_a_clear_reason(
    ref_manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    from isc_kit.errors import SourceError

    with pytest.raises(SourceError, match=f"cannot reach S3 at http://127.0.0.1:{port}.*isc-kit s3 serve"):
        fetch(ref_manifest, tmp_path / "ref", retries=0, jobs=4, mirrors=[])  # one HEAD first: no 40 failures
    assert os.path.isdir(tmp_path / "ref") is False or _temps(tmp_path / "ref") == []


def test_signed_access_goes_through_s3fs(boto_client: object, s3_env: str, tmp_path: Path) -> None:
    import uuid

    from isc_kit.source import resolve_source

    bucket = f"private-{uuid.uuid4().hex[:12]}"
    boto_client.create_bucket(  # type: ignore[attr-defined]
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    body = b"signed bytes" * 1000
    boto_client.put_object(Bucket=bucket, Key=PREFIX + "R000001.jpg", Body=body)  # type: ignore[attr-defined]
    m = manifest_for(bucket, {"R000001.jpg": (md5(body), len(body))})
    result = fetch(m, tmp_path / "ref", source=resolve_source(bucket=bucket, anon=False))
    assert result.ok, result.failed
    assert (tmp_path / "ref" / "R000001.jpg").read_bytes() == body
