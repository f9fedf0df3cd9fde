"""``isc-kit push [TARGET ...]``: cached objects of DVC-tracked outputs up to the team remote, concurrently."""

from __future__ import annotations

import argparse
import sys

from ._common import print_json

NAME = "push"
HELP = (
    "upload the cached objects of DVC-tracked outputs that the team remote lacks (like dvc push, concurrent)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "targets", metavar="TARGET", nargs="*", help=".dvc files, dvc.yaml or tracked paths (default: all)"
    )
    p.add_argument("--remote", metavar="NAME", help="DVC remote to push to (default: the repository's)")
    p.add_argument("--jobs", type=int, metavar="N", help="concurrent uploads (default 64)")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(args: argparse.Namespace) -> int:
    from ..dvcfiles import find_repo
    from ..push import push

    repo = find_repo(".")
    result = push(repo.root, args.targets, remote=args.remote, jobs=args.jobs)
    print(f"isc-kit push: {result.summary()}", file=sys.stderr)
    for what, why in result.failed[:20]:
        print(f"  FAILED {what}: {why}", file=sys.stderr)
    if len(result.failed) > 20:
        print(f"  ... and {len(result.failed) - 20:,} more (--json lists them all)", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
    return 0 if result.ok else 1
