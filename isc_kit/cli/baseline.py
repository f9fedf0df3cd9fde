"""``isc-kit baseline``: a Pillow+numpy copy-detection baseline: matching predictions and/or descriptors.

Locally it reads two folders of JPEGs. With ``--dask ADDRESS`` it describes two pinned selections on a
Dask cluster instead (see :mod:`isc_kit.distributed`), writing the descriptor-track HDF5 files.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from ..baseline import run_baseline
from ..errors import ConfigError
from ..outputs import check_output
from ._common import add_source_args, positive_int, source_from_args

NAME = "baseline"
HELP = "match query JPEGs against reference JPEGs with a simple descriptor (locally or on Dask)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dirs",
        nargs="*",
        metavar="QUERY_DIR REFERENCE_DIR",
        help="folders of <id>.jpg files (with --dask: optional folders every worker reads the pinned "
        "images from; without them each worker fetches its chunks, MD5-verified)",
    )
    p.add_argument("-o", "--output", metavar="PREDICTIONS", help="predictions CSV to write")
    p.add_argument(
        "--descriptors-out",
        nargs=2,
        metavar=("QUERY_H5", "REFERENCE_H5"),
        help="also (with --dask: only) write descriptor-track HDF5 files (isc-kit eval --descriptors)",
    )
    p.add_argument(
        "--top-k", type=positive_int, default=10, metavar="K", help="references kept per query (default 10)"
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="processes for descriptors (default: CPUs)",
    )
    d = p.add_argument_group("on a Dask cluster")
    d.add_argument("--dask", metavar="ADDRESS", help="scheduler address, e.g. tcp://10.0.0.5:8786")
    d.add_argument(
        "--pinned", nargs=2, metavar=("QUERY_PINNED", "REFERENCE_PINNED"), help="the selections to describe"
    )
    d.add_argument("--chunk-size", type=int, default=1000, metavar="N", help="images per task (1000)")
    d.add_argument("--retries", type=int, default=3, metavar="N", help="retries of a failed task (3)")
    add_source_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _stderr_progress(futures: list) -> threading.Thread:
    """Dask's own text progress bar, drawn on stderr (stdout carries the results) from a thread."""
    from distributed.diagnostics.progressbar import TextProgressBar

    class _Bar(TextProgressBar):
        def _draw_bar(self, remaining: int, all: int, **kwargs: object) -> None:
            frac = (1 - remaining / all) if all else 1.0
            sys.stderr.write(
                f"\r[{'#' * int(self.width * frac):<{self.width}}] | {int(100 * frac)}% of chunks"
            )
            sys.stderr.flush()

        def _draw_stop(self, **kwargs: object) -> None:
            sys.stderr.write("\n")

    thread = threading.Thread(target=_Bar, args=(futures,), daemon=True)
    thread.start()
    return thread


def _run_dask(args: argparse.Namespace) -> int:
    from distributed import Client

    from ..distributed import describe_on_dask
    from ..pinned import load_pinned

    if not args.pinned or not args.descriptors_out or args.output:
        raise ConfigError("--dask takes --pinned Q R and --descriptors-out Q.h5 R.h5 (and no -o)")
    if args.dirs and len(args.dirs) != 2:
        raise ConfigError("with --dask, give no folders (workers fetch) or QUERY_DIR REFERENCE_DIR (shared)")
    source = source_from_args(args)  # resolved here, passed to the workers as is
    results = []
    with Client(args.dask) as client:
        for i, (pinned, out) in enumerate(zip(args.pinned, args.descriptors_out, strict=True)):
            results.append(
                describe_on_dask(
                    client,
                    load_pinned(pinned),
                    out,
                    source=source,
                    shared_dir=args.dirs[i] if args.dirs else None,
                    chunk_size=args.chunk_size,
                    retries=args.retries,
                    progress=None if args.json or not sys.stderr.isatty() else _stderr_progress,
                )
            )
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        for r in results:
            print(
                f"wrote {r.n_written} {r.set_name} descriptors to {r.output} in {r.seconds:.1f} s "
                f"({r.n_chunks} chunks" + (f", {r.n_unreadable} unreadable" if r.n_unreadable else "") + ")"
            )
    return 0


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--top-k", args.top_k), ("--chunk-size", args.chunk_size), ("--jobs", args.jobs)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if args.retries < 0:
        raise ConfigError(f"--retries must be 0 or more, got {args.retries}")
    if args.dask:
        return _run_dask(args)
    if len(args.dirs) != 2:
        raise ConfigError("give QUERY_DIR REFERENCE_DIR (or --dask ADDRESS --pinned Q R)")
    if not args.output and not args.descriptors_out:
        raise ConfigError("nothing to write: give -o PREDICTIONS and/or --descriptors-out Q.h5 R.h5")
    query_dir, reference_dir = args.dirs
    if args.output:
        check_output(args.output)  # a folder or a missing folder fails before any image is read
    result = run_baseline(
        query_dir,
        reference_dir,
        args.output,
        top_k=args.top_k,
        jobs=args.jobs,
        descriptors_out=tuple(args.descriptors_out) if args.descriptors_out else None,
    )
    out = sys.stderr if args.output == "-" else sys.stdout  # stdout carries the predictions then
    if args.json:
        json.dump(result.to_dict(), out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        wrote = []
        if result.output:
            wrote.append(f"{result.n_predictions} predictions to {result.output}")
        if result.descriptors:
            wrote.append(f"descriptors to {' and '.join(result.descriptors)}")
        print(
            f"wrote {', '.join(wrote)} for {result.n_queries} queries against {result.n_references} "
            f"references in {result.seconds:.1f} s"
            + (f" ({result.n_unreadable} unreadable images skipped)" if result.n_unreadable else ""),
            file=out,
        )
    return 0
