"""``isc-kit fetch``: transfer a pinned manifest's files into a folder, every byte MD5-checked."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .._format import human_bytes
from ..catalog import REGIONS
from ..source import resolve_source
from ._common import add_source_args, nonnegative_int, positive_int, print_json, print_table

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
    g.add_argument(
        "--low-speed-limit",
        type=int,
        metavar="B",
        help="abort and retry a transfer slower than B bytes/s over --low-speed-time (default 1000; 0: off)",
    )
    g.add_argument(
        "--low-speed-time",
        type=float,
        metavar="S",
        help="seconds the low-speed limit is measured over (default 30)",
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
        "--allow-empty", action="store_true", help="with --prune: allow an empty manifest to empty DEST"
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
        "low_speed": _low_speed(args),
    }


def _low_speed(args: argparse.Namespace) -> Any:
    """The ``--low-speed-*`` options over the environment's defaults; None when not given."""
    if args.low_speed_limit is None and args.low_speed_time is None:
        return None
    from ..errors import ConfigError
    from ..transfer.getters import low_speed_from_env
    from ..transfer.rawhttp import LowSpeed

    base = low_speed_from_env() or LowSpeed(0)
    limit = base.limit if args.low_speed_limit is None else args.low_speed_limit
    seconds = base.seconds if args.low_speed_time is None else args.low_speed_time
    if limit < 0 or seconds <= 0:
        raise ConfigError("--low-speed-limit must be 0 or more and --low-speed-time more than 0")
    return LowSpeed(limit, seconds)  # a limit of 0 turns the check off


def make_progress(args: argparse.Namespace, desc: str, files: int) -> Any:
    """A terminal bar on stderr (files as the total when sizes are unknown), or None when asked for none."""
    if args.no_progress or args.quiet or (getattr(args, "json", False) and not sys.stderr.isatty()):
        return None
    from ..progress import TqdmProgress

    return TqdmProgress(desc, files=files, notebook=False, disable=None)


def report_failures(failed: list[tuple[str, str]]) -> None:
    for rel, why in failed[:MAX_SHOWN]:
        print(f"  FAILED {rel}: {why}", file=sys.stderr)
    if len(failed) > MAX_SHOWN:
        print(f"  ... and {len(failed) - MAX_SHOWN:,} more failures (--json lists them all)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..pinned import load_pinned
    from ..transfer import fetch, plan_fetch

    manifest = load_pinned(args.pinned)
    options = fetch_options(args, manifest.bucket)
    plan = plan_fetch(manifest, args.dest, rehash=args.rehash)
    if args.dry_run:
        if args.json:
            print_json({**plan.to_dict(), "prune": plan.extra if args.prune else []})
        else:
            print(plan)
            if args.prune and plan.extra:
                shown = ", ".join(plan.extra[:MAX_SHOWN])
                more = f" (+{len(plan.extra) - MAX_SHOWN:,} more)" if len(plan.extra) > MAX_SHOWN else ""
                print(f"--prune would delete {len(plan.extra):,} file(s): {shown}{more}")
        return 0
    todo = len(plan.todo_rows)
    progress = make_progress(args, "fetch", todo) if todo else None
    try:
        result = fetch(plan, progress=progress, prune=args.prune, allow_empty=args.allow_empty, **options)
    finally:
        if progress is not None:
            progress.close()
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
                {"what": "from the DVC cache", "files": f"{result.from_cache:,}"},
                {"what": "already verified", "files": f"{result.skipped - result.unverified:,}"},
                {"what": "unverified (no md5)", "files": f"{result.unverified:,}"},
                {"what": "failed", "files": f"{len(result.failed):,}"},
                {"what": "pruned", "files": f"{result.pruned:,}"},
            ],
            ["what", "files", "bytes"],
        )
    return 0 if result.ok else 1
