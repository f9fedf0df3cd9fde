"""``isc-kit catalog``: the sets and regional buckets."""

from __future__ import annotations

import argparse
from typing import Any

from .._format import human_bytes
from ..catalog import DEFAULT_BUCKET, REGIONS, SETS, bucket_for_region
from ._common import print_json, print_table

NAME = "catalog"
HELP = "list the image sets and the regional buckets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    sets: list[dict[str, Any]] = [
        {
            "set": s.name,
            "ids": f"{s.first_id}-{s.last_id}",
            "count": s.count,
            "bytes": s.approx_bytes,
            "prefix": s.prefix,
            "description": s.description,
        }
        for s in SETS.values()
    ]
    regions = [
        {"region": r, "bucket": bucket_for_region(DEFAULT_BUCKET, r), "aws_region": code}
        for r, (_, code) in REGIONS.items()
    ]
    if args.json:
        print_json({"sets": sets, "regions": regions})
        return 0
    print_table(
        [{**s, "size": human_bytes(s["bytes"]), "count": f"{s['count']:,}"} for s in sets],
        ["set", "ids", "count", "size", "prefix"],
    )
    print()
    print_table(regions, ["region", "bucket", "aws_region"])
    return 0
