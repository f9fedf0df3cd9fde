"""``isc-kit``: one subcommand per step, thin over the library.

Results go to stdout (``--json`` for machines), logs and progress to stderr. An
:class:`~isc_kit.errors.IscKitError` becomes one line on stderr and its exit code; a
traceback is shown only with ``-v``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ..errors import InputFileError, IscKitError

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
    "pin",
    "stage",
    "demo",
    "share",
    "pull",
    "push",
)

logger = logging.getLogger("isc_kit")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported (a fast start)."""
    parser = argparse.ArgumentParser(
        prog="isc-kit",
        description="Fetch, verify, pin and explore the Image Similarity Challenge image sets.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging; -v shows tracebacks"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f".{name}", __package__)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named by the first positional argument, if it is a known one."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("isc_kit")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except IscKitError as err:
        if args.verbose:
            logger.exception("isc-kit %s failed", args.command)
        print(f"isc-kit {args.command}: error: {err}", file=sys.stderr)
        if isinstance(err, InputFileError) and err.total > 1:
            print(err.details(), file=sys.stderr)
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
