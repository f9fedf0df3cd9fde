"""The ``isc://`` fsspec filesystem against the embedded S3: open, cat, ls, info, MD5 refusals, mirrors, simplecache."""

from __future__ import annotations

import csv
import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path

import fsspec
import pytest

from isc_kit.errors import ChecksumMismatchError, ConfigError, IscKitError
from isc_kit.isc_fs import IscFileSystem
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.pinned import load_pinned, write_pinned

pytestmark = pytest.mark.usefixtures("s3_env")


def publisher_md5(tiny_root: Path, set_name: str) -> dict[str, str]:
    """The publisher CSV's md5 per image id, read directly (not through isc_kit)."""
    with open(tiny_root / f"metadata/{set_name}_images_metadata.csv", newline="") as f:
        return {row["image_id"]: row["md5_checksum"] for row in csv.DictReader(f)}


def test_the_protocol_is_registered_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    (spec,) = [e for e in entry_points(group="fsspec.specs") if e.name == "isc"]
    assert spec.value == "isc_kit.isc_fs:IscFileSystem"
    assert fsspec.get_filesystem_class("isc") is IscFileSystem


def test_open_and_cat_without_a_manifest(tiny_root: Path) -> None:
    md5 = publisher_md5(tiny_root, "reference")
    with fsspec.open("isc://reference/R000003.jpg") as f:
        data = f.read()
    assert hashlib.md5(data).hexdigest() == md5["R000003"]
    fs = fsspec.filesystem("isc")
    assert fs.cat("isc://reference/R000003.jpg") == data
    assert fs.cat_file("reference/R000003.jpg", start=10, end=20) == data[10:20]
    assert fs.cat_file("reference/R000003.jpg", start=-5) == data[-5:]
    assert data == (tiny_root / "all/reference_images/R000003.jpg").read_bytes()


def test_ls_and_info(tiny_root: Path, pinned: Path) -> None:
    fs = fsspec.filesystem("isc")
    assert fs.ls("isc://", detail=False) == ["query", "reference", "training", "phase2"]
    listed = fs.ls("isc://query/", detail=False)
    assert listed == [f"query/Q{n:05d}.jpg" for n in range(20)]
    md5 = publisher_md5(tiny_root, "query")
    detail = {e["name"]: e for e in fs.ls("query")}
    assert detail["query/Q00004.jpg"]["md5"] == md5["Q00004"]  # single-part ETag
    info = fs.info("isc://query/Q00004.jpg")
    assert info["type"] == "file"
    assert info["size"] == (tiny_root / "all/query_images/Q00004.jpg").stat().st_size
    assert fs.info("query") == {"name": "query", "size": 0, "type": "directory"}
    assert fs.isdir("isc://reference")
    assert fs.isfile("isc://reference/R000001.jpg")
    assert not fs.exists("isc://reference/R000999.jpg")
    with pytest.raises(FileNotFoundError, match=r"not found \(404\)"):
        fs.info("reference/R000999.jpg")
    with pytest.raises(FileNotFoundError, match="'photos' is not an ISC set"):
        fs.cat("isc://photos/x.jpg")

    checked = fsspec.filesystem("isc", manifests={"reference": str(pinned)})
    names = checked.ls("reference", detail=False)  # from the manifest, no bucket listing
    assert names == [f"reference/R{n:06d}.jpg" for n in range(40)]
    assert checked.info("reference/R000002.jpg")["md5"] == publisher_md5(tiny_root, "reference")["R000002"]


def test_reads_are_checked_against_the_manifest(tiny_root: Path, pinned: Path) -> None:
    fs = fsspec.filesystem("isc", manifests={"reference": pinned})
    data = fs.cat("isc://reference/R000007.jpg")
    assert hashlib.md5(data).hexdigest() == publisher_md5(tiny_root, "reference")["R000007"]
    with fs.open("reference/R000007.jpg") as f:
        assert f.read() == data


def wrong_md5_manifest(pinned: Path, tmp_path: Path, image_id: str) -> Path:
    manifest = load_pinned(pinned)
    table = manifest.table.copy()
    table.loc[table["image_id"] == image_id, "md5"] = "0" * 32
    path = tmp_path / "wrong.pinned"
    write_pinned(Manifest.from_pandas(manifest.set_name, manifest.bucket, manifest.prefix, table), path)
    return path


def test_a_wrong_md5_is_refused_on_every_mirror(tiny_root: Path, pinned: Path, tmp_path: Path) -> None:
    wrong = wrong_md5_manifest(pinned, tmp_path, "R000011")
    fs = fsspec.filesystem("isc", manifests={"reference": str(wrong)})
    actual = publisher_md5(tiny_root, "reference")["R000011"]
    with pytest.raises(ChecksumMismatchError) as info:
        fs.cat("reference/R000011.jpg")
    message = str(info.value)
    assert message.startswith("md5 of isc://reference/R000011.jpg (s3://drivendata-competition-fb-isc-data")
    assert f"is {actual}, manifest says {'0' * 32}; the bytes were refused" in message
    with (
        pytest.raises(ValueError, match=r"manifest says 0{32}"),
        fsspec.open("isc://reference/R000011.jpg", manifests={"reference": str(wrong)}) as f,
    ):
        f.read()
    assert fs.cat("reference/R000012.jpg")  # the others still read
    with pytest.raises(FileNotFoundError, match="not in the reference manifest given"):
        fsspec.filesystem("isc", manifests={"reference": load_pinned(pinned).subset([False] * 40)}).cat(
            "reference/R000001.jpg"
        )


def test_a_bad_region_falls_back_to_a_mirror(tiny_root: Path, make_bucket: Callable[..., str]) -> None:
    """The base bucket serves flipped bytes and lacks one image; its -eu mirror is right."""
    good = {
        f"all/reference_images/R00000{n}.jpg": (
            tiny_root / f"all/reference_images/R00000{n}.jpg"
        ).read_bytes()
        for n in range(3)
    }
    bad = {k: v[:100] + bytes([v[100] ^ 0xFF]) + v[101:] for k, v in good.items() if not k.endswith("2.jpg")}
    base = make_bucket(bad)
    make_bucket(good, name=f"{base}-eu")
    manifest = read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference")
    fs = fsspec.filesystem(
        "isc", bucket=base, manifests={"reference": manifest.subset(manifest.table.index < 3)}
    )
    for n in range(3):
        assert fs.cat(f"reference/R00000{n}.jpg") == good[f"all/reference_images/R00000{n}.jpg"]
    one_region = fsspec.filesystem("isc", bucket=base, mirrors=False, manifests={"reference": manifest})
    with pytest.raises(ChecksumMismatchError):
        one_region.cat("reference/R000000.jpg")
    with pytest.raises(FileNotFoundError):
        one_region.cat("reference/R000002.jpg")
    assert (
        fsspec.filesystem("isc", bucket=base).cat("reference/R000000.jpg")
        == bad["all/reference_images/R000000.jpg"]
    )


def test_simplecache_composes_and_keeps_only_checked_bytes(
    tiny_root: Path, pinned: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    url = "simplecache::isc://reference/R000005.jpg"
    options = {"simplecache": {"cache_storage": str(cache)}, "isc": {"manifests": {"reference": str(pinned)}}}
    with fsspec.open(url, **options) as f:
        data = f.read()
    assert hashlib.md5(data).hexdigest() == publisher_md5(tiny_root, "reference")["R000005"]
    assert [p.read_bytes() for p in cache.iterdir() if p.is_file()] == [data]
    # the second read is served by the cache: an unreachable endpoint does not matter
    dead = {"simplecache": {"cache_storage": str(cache)}, "isc": {"endpoint_url": "http://127.0.0.1:9"}}
    with fsspec.open(url, **dead) as f:
        assert f.read() == data

    wrong = wrong_md5_manifest(pinned, tmp_path, "R000006")
    bad = {
        "simplecache": {"cache_storage": str(tmp_path / "cache2")},
        "isc": {"manifests": {"reference": str(wrong)}},
    }
    with (
        pytest.raises(ChecksumMismatchError),
        fsspec.open("simplecache::isc://reference/R000006.jpg", **bad) as f,
    ):
        f.read()
    assert not [p for p in (tmp_path / "cache2").rglob("*") if p.is_file()]  # nothing wrong was cached


def test_read_only_picklable_and_settings(pinned: Path, s3_env: str) -> None:
    fs = fsspec.filesystem("isc", manifests={"reference": str(pinned)}, region="eu")
    assert fs.source.region == "eu"
    assert fs.source.endpoint_url == s3_env  # from ISC_KIT_ENDPOINT_URL
    with pytest.raises(PermissionError, match="read-only"):
        fs.open("reference/R000001.jpg", "wb")
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat("reference/R000001.jpg") == fs.cat("reference/R000001.jpg")
    with pytest.raises(ConfigError, match="'photos' is not a set"):
        fsspec.filesystem("isc", manifests={"photos": str(pinned)})
    with pytest.raises(IscKitError, match="is a reference manifest"):
        fsspec.filesystem("isc", manifests={"query": str(pinned)}).cat("query/Q00001.jpg")


def test_recursive_get_of_a_set_is_checked(tiny_root: Path, tmp_path: Path) -> None:
    query = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    fs = fsspec.filesystem("isc", manifests={"query": query.subset(query.table.index < 4)})
    fs.get("isc://query/", str(tmp_path / "q"), recursive=True)
    got = sorted(p.name for p in (tmp_path / "q").rglob("*") if p.is_file())
    assert got == ["Q00000.jpg", "Q00001.jpg", "Q00002.jpg", "Q00003.jpg"]
    md5 = publisher_md5(tiny_root, "query")
    for name in got:
        found = next((tmp_path / "q").rglob(name))
        assert hashlib.md5(found.read_bytes()).hexdigest() == md5[name[:-4]]
