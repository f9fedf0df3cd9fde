"""The ``isc-kit`` parser: the subcommands, their examples, and :func:`build_parser`, which imports
only the subcommand being run. Below :mod:`.main` (which runs it) and :mod:`._complete` (which
completes from it)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from ._common import OneLineParser

#: Subcommand modules in ``isc_kit.cli``; each has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``.
COMMANDS = (
    "catalog",
    "ls",
    "manifest",
    "s3",
    "fetch",
    "verify",
    "eval",
    "baseline",
    "augment",
    "pin",
    "stage",
    "demo",
    "share",
    "pull",
    "push",
    "completion",
)
#: Run by dvc.yaml, not by people: accepted, but not listed in ``--help`` or completions.
HIDDEN = ("stage",)
PUBLIC = tuple(c for c in COMMANDS if c not in HIDDEN)

_M = "s3://drivendata-competition-fb-isc-data/metadata/query_images_metadata.csv"
#: One or two typical invocations per command, shown at the end of its ``--help``.
EXAMPLES = {
    "catalog": "isc-kit catalog\nisc-kit catalog --json",
    "ls": f'isc-kit ls query --metadata {_M} --exclude "*" --include "Q00*"\n'
    f"isc-kit ls query --metadata {_M} --sample 100 --seed 1 --head 5",
    "manifest": f'isc-kit manifest query --metadata {_M} --exclude "*" --include "Q00*" -o query.pinned',
    "s3": "isc-kit s3 serve --scale demo --port 9555 &\nexport ISC_KIT_ENDPOINT_URL=http://127.0.0.1:9555",
    "fetch": "isc-kit fetch query.pinned data/query\nisc-kit fetch query.pinned data/query --dry-run --json",
    "verify": "isc-kit verify query.pinned data/query\nisc-kit verify query.pinned data/query --repair",
    "eval": "isc-kit eval predictions.csv --ground-truth public_ground_truth.csv \\\n"
    "    --selection manifests/query.pinned --selection manifests/reference.pinned",
    "baseline": "isc-kit baseline data/query data/reference -o predictions.csv --top-k 10",
    "augment": "isc-kit augment manifests/training.pinned data/training augmented/training \\\n"
    "    --pairs augmented/training.pairs.csv --manifest augmented/training.pinned",
    "pin": "isc-kit pin manifests/query.pinned data/query",
    "stage": "isc-kit stage manifest query   # as dvc.yaml runs it",
    "demo": "isc-kit demo\nisc-kit demo --scale tiny",
    "share": "isc-kit share manifests/query.pinned data/query --remote team",
    "pull": "isc-kit pull                        # every tracked output, from the default remote\n"
    "isc-kit pull data/query.dvc --remote team --json",
    "push": "isc-kit push                        # what the default remote lacks, each object MD5-checked\n"
    "isc-kit push data/query.dvc --remote team",
    "completion": 'eval "$(isc-kit completion bash)"     # in ~/.bashrc\n'
    'eval "$(isc-kit completion zsh)"      # in ~/.zshrc',
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("isc-kit")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: the installed version, read only when asked (keeps start-up fast)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object):
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"isc-kit {_version()}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported (a fast start)."""
    parser = OneLineParser(
        prog="isc-kit",
        description="Fetch, verify, pin and explore the Image Similarity Challenge image sets.",
        epilog="Run `isc-kit COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging; -v shows tracebacks"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PUBLIC if only is None else (only,):
        module = importlib.import_module(f".{name}", __package__)
        listed = {} if name in HIDDEN else {"help": module.HELP}  # no help= keeps it out of --help
        p = sub.add_parser(
            module.NAME,
            description=module.HELP,
            epilog="examples:\n" + _indent(EXAMPLES[name]),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **listed,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
