"""Gallery page times: cold (thumbnails made from originals) vs warm (read from the thumbnail cache).

    .venv/bin/python -m bench.thumbnails --scale demo --page-size 24 --pages 10

Each page is a real :class:`~isc_kit.widgets.Gallery` page turn (the ``next`` button clicked,
tiles filled; no frontend). Sources: the local fixture tree, and lazy reads from the embedded S3
(over HTTP, MD5-checked, cached). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _turn_pages(gallery: Any, pages: int) -> list[float]:
    times = []
    for _ in range(pages):
        start = time.perf_counter()
        gallery._next.click()
        times.append(time.perf_counter() - start)
    return times


def _run(label: str, make_images: Any, manifest: Any, cache: Path, pages: int, page_size: int) -> list[str]:
    from isc_kit.widgets import Gallery, ThumbnailCache

    rows = []
    for phase in ("cold", "warm"):
        thumbs = ThumbnailCache(cache)
        gallery = Gallery(manifest, make_images(), thumbnails=thumbs, page_size=page_size)
        gallery.page = 0
        times = _turn_pages(gallery, pages)
        rows.append(
            f"| {label} | {phase} | {page_size} | {pages} | {statistics.median(times) * 1000:,.0f} ms "
            f"| {max(times) * 1000:,.0f} ms | {thumbs.made} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo", choices=["tiny", "demo", "bench"])
    parser.add_argument("--page-size", type=int, default=24)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args(argv)

    from isc_kit.fixture import materialize
    from isc_kit.metadata import read_metadata
    from isc_kit.s3server import EmbeddedS3
    from isc_kit.source import resolve_source
    from isc_kit.widgets import LocalImages, S3Images

    root = materialize(args.scale)
    manifest = read_metadata(root / "metadata/reference_images_metadata.csv", "reference")
    rows = [
        "| source | cache | page size | pages | median page | slowest page | thumbnails made |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rows += _run(
            "local tree",
            lambda: LocalImages(root, layout="bucket"),
            manifest,
            Path(tmp) / "local",
            args.pages,
            args.page_size,
        )
        with EmbeddedS3(args.scale) as server:
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
            source = resolve_source(endpoint_url=server.endpoint_url)
            cache = Path(tmp) / "s3"
            rows += _run(
                "embedded S3 (lazy)",
                lambda: S3Images(source, cache_dir=cache),
                manifest,
                cache,
                args.pages,
                args.page_size,
            )
    print(f"scale {args.scale}: {len(manifest):,} reference images\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
