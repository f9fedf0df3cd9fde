"""``isc-kit verify``: hash a local tree against a pinned manifest; ``--repair`` re-fetches the bad files."""

from __future__ import annotations

import argparse
import sys

from .._format import human_bytes
from ._common import positive_int, print_json, print_table
from .fetch import MAX_SHOWN, add_transfer_args, fetch_options, make_progress, report_failures

NAME = "verify"
HELP = "check a local folder against a pinned manifest (MD5, in parallel); --repair fixes it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pinned", metavar="PINNED", help="pinned manifest (from `isc-kit manifest`)")
    p.add_argument("dest", metavar="DEST", help="folder to check")
    p.add_argument("--repair", action="store_true", help="re-fetch missing and corrupt files")
    p.add_argument(
        "--hash-jobs", type=positive_int, metavar="N", help="hashing processes (default: all cores)"
    )
    add_transfer_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")


def run(args: argparse.Namespace) -> int:
    from ..pinned import load_pinned
    from ..verify import verify

    manifest = load_pinned(args.pinned)
    progress = make_progress(args, "verify", len(manifest))
    try:
        report = verify(manifest, args.dest, jobs=args.hash_jobs, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    bad = [(r, "missing") for r in report.missing[:MAX_SHOWN]]
    bad += [(r, f"corrupt: {report.reasons.get(r, '')}") for r in report.corrupt[:MAX_SHOWN]]
    for rel, why in bad[:MAX_SHOWN]:
        print(f"  {rel}: {why}", file=sys.stderr)
    out = report.to_dict()
    ok = report.ok
    if args.repair and not report.ok:
        from ..transfer import repair

        options = fetch_options(args, manifest.bucket)
        progress = make_progress(args, "repair", len(report.missing) + len(report.corrupt))
        try:
            result = repair(manifest, args.dest, report=report, progress=progress, **options)
        finally:
            if progress is not None:
                progress.close()
        report_failures(result.failed)
        out["repair"] = result.to_dict()
        ok = result.ok
    out["ok"] = ok
    if args.json:
        print_json(out)
    else:
        table = [
            {"what": "verified", "files": f"{report.verified:,}"},
            {"what": "missing", "files": f"{len(report.missing):,}"},
            {"what": "corrupt", "files": f"{len(report.corrupt):,}"},
            {"what": "extra (not listed)", "files": f"{len(report.extra):,}"},
            {"what": "unverified (no md5)", "files": f"{report.unverified:,}"},
            {"what": "hashed", "files": human_bytes(report.bytes)},
        ]
        if "repair" in out:
            table.append({"what": "repaired", "files": f"{out['repair']['transferred']:,}"})
        print_table(table, ["what", "files"])
    return 0 if ok else 1
