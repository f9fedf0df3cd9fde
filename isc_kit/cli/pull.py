"""``isc-kit pull [TARGET ...]``: a DVC-tracked version from the team remote, at engine speed, MD5-checked."""

from __future__ import annotations

import argparse
import sys

from ._common import print_json

NAME = "pull"
HELP = (
    "fetch DVC-tracked outputs from the team remote into the cache and workspace (like dvc pull, MD5-checked)"
)

MAX_SHOWN = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "targets", metavar="TARGET", nargs="*", help=".dvc files, dvc.yaml or tracked paths (default: all)"
    )
    p.add_argument("--remote", metavar="NAME", help="DVC remote to pull from (default: the repository's)")
    p.add_argument("--jobs", type=int, metavar="N", help="concurrent requests (default 128)")
    p.add_argument("--retries", type=int, default=5, metavar="N", help="retries per object (default 5)")
    p.add_argument("--force", action="store_true", help="replace workspace files that were modified locally")
    p.add_argument(
        "--from-source",
        metavar="PINNED",
        help="fetch objects the remote lacks from the public bucket, by md5, through this pinned manifest",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(args: argparse.Namespace) -> int:
    from ..dvcfiles import find_repo
    from ..pull import pull

    repo = find_repo(".")

    def progress(n: int) -> object:
        if args.no_progress or (args.json and not sys.stderr.isatty()):
            return None
        from ..progress import TqdmProgress

        return TqdmProgress("pull", files=n, notebook=False, disable=None if not args.quiet else True)

    result = pull(
        repo.root,
        args.targets,
        remote=args.remote,
        jobs=args.jobs,
        retries=args.retries,
        force=args.force,
        make_progress=progress,
        from_source=args.from_source,
    )
    print(f"isc-kit pull: {result.summary()}", file=sys.stderr)
    for what, why in result.failed[:MAX_SHOWN]:
        print(f"  FAILED {what}: {why}", file=sys.stderr)
    for path in result.conflicts[:MAX_SHOWN]:
        print(f"  MODIFIED {path}: not replaced (rerun with --force to replace it)", file=sys.stderr)
    hidden = max(0, len(result.failed) - MAX_SHOWN) + max(0, len(result.conflicts) - MAX_SHOWN)
    if hidden:
        print(f"  ... and {hidden:,} more (--json lists them all)", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
    return 0 if result.ok else 1
