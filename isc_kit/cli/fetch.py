"""``isc-kit fetch``: transfer a pinned manifest's files into a folder, every byte MD5-checked."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from .._format import human_bytes
from ..catalog import REGIONS
from ..source import resolve_source
from ._common import add_source_args, nonnegative_int, positive_int, print_json, print_table

if TYPE_CHECKING:
    from .._fetchcore import FetchResult

NAME = "fetch"
HELP = "download a pinned manifest's images (resumable, MD5-verified)"

logger = logging.getLogger(__name__)

MAX_SHOWN = 20


def add_transfer_args(p: argparse.ArgumentParser) -> None:
    """Source and transfer options shared by ``fetch`` and ``verify --repair``."""
    add_source_args(p)
    for action in p._actions:  # the shared --region also accepts "auto" here
        if action.dest == "region":
            action.choices = [*REGIONS, "auto"]
            action.help = "bucket mirror, or auto to probe them and take the fastest (default: $ISC_KIT_REGION or us-west)"
    g = p.add_argument_group("transfer")
    g.add_argument("--jobs", type=positive_int, metavar="N", help="concurrent requests (default 128)")
    g.add_argument(
        "--retries", type=nonnegative_int, default=5, metavar="N", help="retries per object (default 5)"
    )
    g.add_argument(
        "--require-md5",
        action="store_true",
        help="fail entries whose md5 is unknown instead of fetching them unverified",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pinned", metavar="PINNED", help="pinned manifest (from `isc-kit manifest`)")
    p.add_argument("dest", metavar="DEST", help="destination folder (created if needed)")
    add_transfer_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan, transfer nothing")
    p.add_argument(
        "--prune", action="store_true", help="delete files in DEST that the manifest does not list"
    )
    p.add_argument(
        "--rehash", action="store_true", help="re-read every local file instead of trusting the record"
    )
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def fetch_options(args: argparse.Namespace, bucket: str) -> dict[str, Any]:
    region = getattr(args, "region", None)
    source = resolve_source(
        bucket=args.bucket or bucket,
        region=None if region == "auto" else region,
        endpoint_url=args.endpoint_url,
        anon=args.anon,
    )
    return {
        "source": source,
        "region": region,
        "jobs": args.jobs,
        "retries": args.retries,
        "require_md5": args.require_md5,
    }


def make_progress(args: argparse.Namespace, desc: str, files: int) -> object:
    if args.no_progress or (getattr(args, "json", False) and not sys.stderr.isatty()):
        return None
    from ..progress import TqdmProgress

    return TqdmProgress(desc, files=files, notebook=False, disable=None if not args.quiet else True)


def report_failures(failed: list[tuple[str, str]]) -> None:
    for rel, why in failed[:MAX_SHOWN]:
        print(f"  FAILED {rel}: {why}", file=sys.stderr)
    if len(failed) > MAX_SHOWN:
        print(f"  ... and {len(failed) - MAX_SHOWN:,} more failures (--json lists them all)", file=sys.stderr)


def _light_fetch(args: argparse.Namespace) -> FetchResult | None:
    """The pandas-free path for a plain fetch of a well-formed pinned file; ``None``: take the full one."""
    if args.dry_run or args.prune or args.rehash or args.require_md5 or args.region == "auto":
        return None
    from .._lightfetch import fetch_rows
    from .._pinned import read_rows

    rows = read_rows(args.pinned)
    if rows is None:
        return None
    options = fetch_options(args, rows.bucket)
    return fetch_rows(
        rows,
        args.dest,
        source=options["source"],
        region=options["region"],
        jobs=options["jobs"],
        retries=options["retries"],
        make_progress=lambda n: make_progress(args, "fetch", n),
    )


def run(args: argparse.Namespace) -> int:
    result = _light_fetch(args)
    if result is None:
        from ..manifest import load_pinned
        from ..transfer import fetch, plan_fetch

        manifest = load_pinned(args.pinned)
        options = fetch_options(args, manifest.bucket)
        plan = plan_fetch(manifest, args.dest, rehash=args.rehash)
        if args.dry_run:
            if args.json:
                print_json(plan.to_dict())
            else:
                print(plan)
            return 0
        todo = plan.counts["missing"] + plan.counts["corrupt"]
        progress = make_progress(args, "fetch", todo) if todo else None
        try:
            result = fetch(plan, progress=progress, prune=args.prune, **options)  # type: ignore[arg-type]
        finally:
            if progress is not None:
                progress.close()  # type: ignore[attr-defined]
    print(f"isc-kit fetch: {result.summary()}", file=sys.stderr)
    report_failures(result.failed)
    if args.json:
        print_json(result.to_dict())
    else:
        print_table(
            [
                {
                    "what": "transferred",
                    "files": f"{result.transferred:,}",
                    "bytes": human_bytes(result.bytes),
                },
                {"what": "already verified", "files": f"{result.skipped - result.unverified:,}"},
                {"what": "unverified (no md5)", "files": f"{result.unverified:,}"},
                {"what": "failed", "files": f"{len(result.failed):,}"},
                {"what": "pruned", "files": f"{result.pruned:,}"},
            ],
            ["what", "files", "bytes"],
        )
    return 0 if result.ok else 1
