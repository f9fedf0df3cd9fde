"""Argument groups and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, TYPE_CHECKING, Any, NoReturn

from ..catalog import REGIONS, SETS

if TYPE_CHECKING:
    from ..select import Selection
    from ..source import Source


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (what, which option, where to read more), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (counts of workers, shard sizes)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: a whole number of 0 or more (retries, sample sizes, limits where 0 means none)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535, or 0 for a free one."""
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535 (or 0: a free one), not {value}")
    return value


class _OrderedFilter(argparse.Action):
    """Collect ``--exclude``/``--include`` in command-line order into ``args.filters``."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        filters = list(getattr(namespace, "filters", None) or [])
        filters.append((self.dest, values))
        namespace.filters = filters


def add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("source")
    g.add_argument(
        "--region", choices=list(REGIONS), help="bucket mirror (default: $ISC_KIT_REGION or us-west)"
    )
    g.add_argument("--bucket", help="base bucket name (default: the publisher's)")
    g.add_argument(
        "--endpoint-url",
        help="S3 endpoint (default: $ISC_KIT_ENDPOINT_URL, $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS)",
    )
    g.add_argument(
        "--no-anon",
        dest="anon",
        action="store_false",
        default=None,
        help="sign requests with AWS credentials",
    )


def source_from_args(args: argparse.Namespace) -> Source:
    from ..source import resolve_source  # lazy: main imports this module for its parser class

    return resolve_source(
        bucket=getattr(args, "bucket", None),
        region=getattr(args, "region", None),
        endpoint_url=getattr(args, "endpoint_url", None),
        anon=getattr(args, "anon", None),
    )


def add_set_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("set", metavar="SET", help=f"one of {', '.join(SETS)}")
    p.add_argument("--prefix", help="key prefix of the set (default: the catalog's)")


def add_input_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--metadata", metavar="CSV", help="publisher metadata CSV (local path or s3:// URL)")
    src.add_argument("--from-listing", action="store_true", help="list the bucket instead of reading a CSV")


def add_selection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("selection (combined with AND; sample last)")
    g.add_argument(
        "--exclude", action=_OrderedFilter, metavar="P", help="AWS CLI filter: exclude keys matching glob P"
    )
    g.add_argument(
        "--include",
        action=_OrderedFilter,
        metavar="P",
        help="AWS CLI filter; filters apply in order and the last match wins",
    )
    g.add_argument(
        "--ids", action="append", default=[], metavar="A:B", help="inclusive id range, e.g. Q00000:Q00999"
    )
    g.add_argument("--id-file", metavar="FILE", help="text file with one id per line")
    g.add_argument("--sample", type=nonnegative_int, metavar="N", help="seeded random sample of N images")
    g.add_argument("--seed", type=int, default=0, help="sample seed, any whole number (default 0)")
    g.add_argument("--ground-truth", metavar="GT", help="ground-truth CSV for a pair-aware subset")
    g.add_argument(
        "--gt-queries", type=nonnegative_int, metavar="K", help="with --ground-truth: sample K queries"
    )
    g.add_argument(
        "--gt-distractors",
        type=nonnegative_int,
        default=0,
        metavar="M",
        help="with --ground-truth: add M unmatched references",
    )
    g.add_argument(
        "--allow-empty",
        action="store_true",
        help="an empty selection is not an error (by default it is, so a typo cannot empty a set)",
    )
    p.set_defaults(filters=[])


def selection_from_args(args: argparse.Namespace) -> Selection:
    from ..select import Selection

    return Selection(
        filters=tuple(args.filters or ()),
        ranges=tuple(args.ids or ()),
        id_file=args.id_file,
        sample=args.sample,
        seed=args.seed,
        allow_empty=bool(getattr(args, "allow_empty", False)),
    )


def print_json(obj: Any, file: IO[str] | None = None) -> None:
    out = file if file is not None else sys.stdout
    json.dump(obj, out, indent=2, sort_keys=True, default=str)
    out.write("\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned text table on stdout."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print(
            "  ".join(v.rjust(w) if v[:1].isdigit() else v.ljust(w) for v, w in zip(row, widths, strict=True))
        )
