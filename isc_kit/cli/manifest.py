"""``isc-kit manifest``: publisher CSV (or bucket listing) + selection -> pinned manifest."""

from __future__ import annotations

import argparse
import logging
import sys

from ..outputs import check_output, write_output
from ..pinned import pinned_bytes
from ._common import (
    add_input_args,
    add_selection_args,
    add_set_arg,
    add_source_args,
    print_json,
)
from ._load import selected_manifest

NAME = "manifest"
HELP = "validate a metadata CSV (or list the bucket), select, and write a pinned manifest"

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_set_arg(p)
    add_input_args(p)
    p.add_argument(
        "-o", "--output", required=True, metavar="PINNED", help="pinned manifest to write ('-': stdout)"
    )
    add_selection_args(p)
    add_source_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    check_output(args.output)  # a typo in -o fails before the CSV is read
    manifest = selected_manifest(args)
    write_output(args.output, pinned_bytes(manifest))
    fingerprint = manifest.fingerprint()
    logger.info(
        "pinned %d %s images to %s (%s)", len(manifest), manifest.set_name, args.output, fingerprint[:19]
    )
    to_stdout = args.output == "-"  # then the summary goes to stderr, after the manifest's bytes
    if args.json:
        print_json(
            {
                "set": manifest.set_name,
                "count": len(manifest),
                "bytes": manifest.total_bytes,
                "output": args.output,
                "fingerprint": fingerprint,
            },
            file=sys.stderr if to_stdout else sys.stdout,
        )
    else:
        line = f"{args.output}: {len(manifest):,} {manifest.set_name} images, {fingerprint}"
        print(line, file=sys.stderr if to_stdout else sys.stdout)
    return 0
