"""``isc-kit catalog``: the sets, the challenge phases with their ground truth, and the regional buckets."""

from __future__ import annotations

import argparse
from typing import Any

from .._format import human_bytes
from ..catalog import DEFAULT_BUCKET, PHASES, REGIONS, SETS, bucket_for_region
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
    phases = [
        {
            "phase": p.number,
            "queries": p.query_set,
            "ground_truth": p.ground_truth_name,
            "location": p.ground_truth(),
            "override": p.env_name,
        }
        for p in PHASES.values()
    ]
    if args.json:
        print_json({"sets": sets, "phases": phases, "regions": regions})
        return 0
    print_table(
        [{**s, "size": human_bytes(s["bytes"]), "count": f"{s['count']:,}"} for s in sets],
        ["set", "ids", "count", "size", "prefix"],
    )
    print()
    print_table(phases, ["phase", "queries", "ground_truth", "location"])
    print()
    print_table(regions, ["region", "bucket", "aws_region"])
    return 0
