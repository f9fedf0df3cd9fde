"""``isc-kit baseline``: a Pillow+numpy copy-detection baseline that writes matching predictions."""

from __future__ import annotations

import argparse
import json
import sys

from ..baseline import run_baseline
from ..outputs import check_output
from ._common import positive_int

NAME = "baseline"
HELP = "match a folder of query JPEGs against a folder of reference JPEGs with a simple descriptor"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query_dir", metavar="QUERY_DIR", help="folder of <query id>.jpg files")
    p.add_argument("reference_dir", metavar="REFERENCE_DIR", help="folder of <reference id>.jpg files")
    p.add_argument(
        "-o", "--output", required=True, metavar="PREDICTIONS", help="predictions CSV to write ('-': stdout)"
    )
    p.add_argument(
        "--top-k", type=positive_int, default=10, metavar="K", help="references kept per query (default 10)"
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="processes for descriptors (default: CPUs)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    check_output(args.output)  # a folder or a missing folder fails before any image is read
    result = run_baseline(args.query_dir, args.reference_dir, args.output, top_k=args.top_k, jobs=args.jobs)
    out = sys.stderr if args.output == "-" else sys.stdout  # stdout carries the predictions then
    if args.json:
        json.dump(result.to_dict(), out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        print(
            f"wrote {result.n_predictions} predictions for {result.n_queries} queries against "
            f"{result.n_references} references to {result.output} in {result.seconds:.1f} s"
            + (f" ({result.n_unreadable} unreadable images skipped)" if result.n_unreadable else ""),
            file=out,
        )
    return 0
