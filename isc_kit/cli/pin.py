"""``isc-kit pin PINNED PATH``: put a verified fetch into the DVC cache and write ``PATH.dvc`` (no re-hashing)."""

from __future__ import annotations

import argparse
import sys

from .._format import human_bytes
from ._common import positive_int, print_json

NAME = "pin"
HELP = "track a verified local tree with DVC without hashing it again (writes PATH.dvc)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pinned", metavar="PINNED", help="pinned manifest the folder was fetched from")
    p.add_argument("path", metavar="PATH", help="the fetched folder, inside a DVC repository")
    p.add_argument(
        "--hash",
        action="store_true",
        help="hash files that have no verified record (and check them against the manifest)",
    )
    p.add_argument(
        "--shard",
        type=positive_int,
        metavar="N",
        help="split into PATH/<first>-<last>/ folders of N files, one .dvc file each (for 100,000+ files)",
    )
    p.add_argument("--jobs", type=positive_int, metavar="N", help="threads for --hash")
    p.add_argument(
        "--link",
        choices=["hardlink", "reflink", "copy"],
        default="hardlink",
        help="how files enter the DVC cache: hardlink (default, no extra disk; the workspace file is the cache "
        "object), reflink (copy-on-write, btrfs/XFS), copy (twice the disk, nothing shared)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def progress_bar(desc: str) -> object | None:
    """A tqdm progress callback on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None
    from fsspec.callbacks import TqdmCallback

    return TqdmCallback(tqdm_kwargs={"desc": desc, "unit": "file", "file": sys.stderr, "leave": False})


def run(args: argparse.Namespace) -> int:
    from ..pin import pin, pin_shards
    from ..pinned import load_pinned

    manifest = load_pinned(args.pinned)
    if args.shard:
        results = pin_shards(
            manifest,
            args.path,
            args.shard,
            hash_unverified=args.hash,
            manifest_path=args.pinned,
            jobs=args.jobs,
            link=args.link,
        )
    else:
        results = [
            pin(
                manifest,
                args.path,
                hash_unverified=args.hash,
                manifest_path=args.pinned,
                jobs=args.jobs,
                progress=progress_bar("pin"),
                link=args.link,
            )
        ]
    if args.json:
        print_json(results[0].to_dict() if len(results) == 1 else {"shards": [r.to_dict() for r in results]})
        return 0
    for r in results:
        print(
            f"{r.dvcfile}: {r.nfiles:,} files, {human_bytes(r.bytes)}, {r.oid} "
            f"({r.linked:,} linked into the cache, {r.already_cached:,} already there, {r.hashed:,} hashed)"
        )
    if results:
        print(f"next: git add {' '.join(r.dvcfile for r in results)} && dvc push")
    return 0
