"""Lazy S3 reads for the widgets, over HTTP against the real moto server: cache, MD5 check, errors."""

from __future__ import annotations

import hashlib

import pandas as pd

from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.source import Source, resolve_source
from isc_kit.widgets import Gallery, S3Images, ThumbnailCache
from isc_kit.widgets.imagesource import entries


def test_gallery_reads_lazily_through_s3_and_caches_verified_bytes(s3_env, tiny_root, tmp_path):
    manifest = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    images = S3Images(resolve_source(), cache_dir=tmp_path / "cache")
    assert images.source.endpoint_url == s3_env
    g = Gallery(manifest, images, thumbnails=ThumbnailCache(tmp_path / "cache"), page_size=12)
    assert g.shown_ids == [f"Q{i:05d}" for i in range(12)]
    assert g.tile_captions == g.shown_ids  # every tile decoded, none a placeholder
    cached = sorted((tmp_path / "cache/objects").rglob("*.jpg"))
    expected = {
        hashlib.md5((tiny_root / f"all/query_images/{i}.jpg").read_bytes()).hexdigest() for i in g.shown_ids
    }
    assert {p.stem for p in cached} == expected
    assert all(hashlib.md5(p.read_bytes()).hexdigest() == p.stem for p in cached)
    (entry,) = entries(manifest, ["Q00005"])
    assert images.state(manifest, entry) == "verified"
    (later,) = entries(manifest, ["Q00015"])
    assert images.state(manifest, later) == "not cached yet"
    g.click("Q00005")
    assert g.detail_text.startswith("Q00005 · ")
    assert g.detail_text.endswith(" px · verified")


def _manifest(bucket: str, rows: list[tuple[str, str | None]]) -> Manifest:
    table = pd.DataFrame(
        {
            "image_id": pd.array([r[0] for r in rows], dtype="string[pyarrow]"),
            "relpath": pd.array([f"{r[0]}.jpg" for r in rows], dtype="string[pyarrow]"),
            "md5": pd.array([r[1] for r in rows], dtype="string[pyarrow]"),
            "size": pd.array([None] * len(rows), dtype="Int64"),
        }
    )
    return Manifest.from_pandas("query", bucket, "all/query_images/", table)


def test_corrupt_and_missing_objects_are_marked_and_never_cached(
    s3_endpoint, make_bucket, tiny_root, tmp_path
):
    good = (tiny_root / "all/query_images/Q00000.jpg").read_bytes()
    other = (tiny_root / "all/query_images/Q00001.jpg").read_bytes()
    bucket = make_bucket({"all/query_images/Q00000.jpg": good, "all/query_images/Q00001.jpg": other})
    manifest = _manifest(
        bucket,
        [
            ("Q00000", hashlib.md5(good).hexdigest()),
            ("Q00001", hashlib.md5(b"what the publisher listed").hexdigest()),
            ("Q00002", hashlib.md5(b"gone").hexdigest()),
        ],
    )
    images = S3Images(Source(bucket=bucket, endpoint_url=s3_endpoint), cache_dir=tmp_path / "cache")
    g = Gallery(manifest, images, thumbnails=ThumbnailCache(tmp_path / "cache"))
    assert g.tile_captions == ["Q00000", "Q00001 (corrupt)", "Q00002 (missing)"]
    cached = [p.stem for p in (tmp_path / "cache/objects").rglob("*.jpg")]
    assert cached == [hashlib.md5(good).hexdigest()]
    g.click("Q00001")
    assert g.detail_text.endswith("· corrupt")
    g.click("Q00002")
    assert g.detail_text.endswith("· missing")
    assert "not found (404)" in g._grid.children[2].button.tooltip
