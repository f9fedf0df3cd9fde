"""``isc-kit``: one subcommand per step, thin over the library.

Results go to stdout (``--json`` for machines), logs and progress to stderr. An
:class:`~isc_kit.errors.IscKitError` becomes one line on stderr and its exit code; a
traceback is shown only with ``-v``. Only the module of the subcommand being run is imported.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import InputFileError, IscKitError
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
#: Set by the completion script: print candidate words for COMP_WORDS / COMP_CWORD instead of running.
COMPLETE_ENV = "ISC_KIT_COMPLETE"

logger = logging.getLogger("isc_kit")


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


def _first_positional(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named by the first positional argument, if it is a known one."""
    first = _first_positional(argv)
    return first if first in COMMANDS else None


def unknown_command_message(word: str) -> str:
    """``isc-kit: error: unknown command 'fech'; did you mean `fetch`?`` (or the list of commands)."""
    close = difflib.get_close_matches(word, PUBLIC, n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`?" if close else f"commands: {', '.join(PUBLIC)}"
    return f"isc-kit: error: unknown command {word!r}; {hint} (see isc-kit --help)"


def configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("isc_kit")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def error_lines(command: str, err: IscKitError, verbose: int) -> list[str]:
    """What an expected error prints: one line; a bad input file's full problem list only with ``-v``."""
    line = f"isc-kit {command}: error: {err}"
    if isinstance(err, InputFileError) and err.total > 1:
        if not verbose:
            return [f"{line} (-v lists the first {len(err.problems)})"]
        return [line, err.details()]
    return [line]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(COMPLETE_ENV):
        from ._complete import complete

        print("\n".join(complete(os.environ.get("COMP_WORDS", ""), os.environ.get("COMP_CWORD", ""))))
        return 0
    first = _first_positional(argv)
    if first is not None and first not in COMMANDS:
        print(unknown_command_message(first), file=sys.stderr)
        return 2
    parser = build_parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a bad option (one line already on stderr): a return code
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 2
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except IscKitError as err:
        if args.verbose:
            logger.exception("isc-kit %s failed", args.command)
        print("\n".join(error_lines(args.command, err, args.verbose)), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"isc-kit {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug, not bad input: still one line, the traceback with -v
        if args.verbose:
            logger.exception("isc-kit %s failed", args.command)
        print(
            f"isc-kit {args.command}: internal error: {type(err).__name__}: {err} "
            "(run with -v for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 70


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
