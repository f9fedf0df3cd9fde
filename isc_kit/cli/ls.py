"""``isc-kit ls``: what a selection matches (count, bytes, first ids)."""

from __future__ import annotations

import argparse

from .._format import human_bytes
from ._common import (
    add_input_args,
    add_selection_args,
    add_set_arg,
    add_source_args,
    nonnegative_int,
    print_json,
)
from ._load import selected_manifest

NAME = "ls"
HELP = "show what a selection of a set matches"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_set_arg(p)
    add_input_args(p)
    add_selection_args(p)
    add_source_args(p)
    p.add_argument(
        "--head", type=nonnegative_int, default=10, metavar="N", help="how many ids to show (default 10)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    manifest = selected_manifest(args)
    total = manifest.total_bytes
    approx = manifest.image_set.approx_bytes / manifest.image_set.count * len(manifest)
    head = manifest.ids[: max(args.head, 0)]
    if args.json:
        print_json(
            {
                "set": manifest.set_name,
                "count": len(manifest),
                "bytes": total,
                "approx_bytes": None if total is not None else int(approx),
                "md5_known": manifest.md5_known,
                "selection": manifest.selection or "all",
                "first_ids": head,
                "fingerprint": manifest.fingerprint(),
            }
        )
        return 0
    size = human_bytes(total) if total is not None else f"~{human_bytes(approx)} (estimated)"
    print(f"{manifest.set_name}: {len(manifest):,} images, {size}; selection: {manifest.selection or 'all'}")
    if head:
        more = f" … (+{len(manifest) - len(head):,})" if len(manifest) > len(head) else ""
        print("  " + " ".join(head) + more)
    return 0
