"""``isc-kit``: one subcommand per step, thin over the library.

Results go to stdout (``--json`` for machines), logs and progress to stderr. An
:class:`~isc_kit.errors.IscKitError` becomes one line on stderr and its exit code; a
traceback is shown only with ``-v``. Only the module of the subcommand being run is imported.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import InputFileError, IscKitError
from ._parser import COMMANDS, PUBLIC, build_parser

#: Set by the completion script: print candidate words for COMP_WORDS / COMP_CWORD instead of running.
COMPLETE_ENV = "ISC_KIT_COMPLETE"

logger = logging.getLogger("isc_kit")


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
