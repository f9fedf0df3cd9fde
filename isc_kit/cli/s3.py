"""``isc-kit s3 serve``: run the embedded S3 server with the synthetic mini-ISC in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from ..catalog import REGIONS
from ._common import nonnegative_int, port_number

NAME = "s3"
HELP = "the embedded S3 server (synthetic mini-ISC on loopback)"

#: What each ``--scale`` serves (queries / references / training images), for ``--help``.
SCALES = {
    "tiny": "20 queries, 40 references, 20 training, 10 phase-2 (unit tests; seconds to generate)",
    "demo": "250 queries, 1,000 references, 1,000 training, 50 phase-2 (README, notebooks, make demo)",
    "bench": "1,000 queries, 10,000 references (benchmarks; minutes to generate once)",
    "empty": "no objects, just the buckets' server",
}

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="s3_command", metavar="ACTION", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve until interrupted",
        description="Serve the synthetic mini-ISC in all three regional buckets until Ctrl-C or SIGTERM.",
        epilog="scales:\n"
        + "\n".join(f"  {k:<6} {v}" for k, v in SCALES.items())
        + "\n\nexamples:\n  isc-kit s3 serve --scale demo --port 9555 &\n"
        "  export ISC_KIT_ENDPOINT_URL=http://127.0.0.1:9555",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--scale",
        choices=list(SCALES),
        default="demo",
        help="how much synthetic data to serve (default demo)",
    )
    serve.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the synthetic data (default 0)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=0, help="port (default: a free one)")
    serve.add_argument("--regions", default=",".join(REGIONS), help="comma-separated regions to seed")
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="print one line per request on stderr (also ISC_KIT_S3_ACCESS_LOG=1); quiet by default",
    )


def run(args: argparse.Namespace) -> int:
    from ..s3server import EmbeddedS3

    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    scale = None if args.scale == "empty" else args.scale
    server = EmbeddedS3(
        scale,
        seed=args.seed,
        host=args.host,
        port=args.port,
        regions=regions,
        access_log=True if args.access_log else None,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"endpoint: {server.endpoint_url}", flush=True)
    print(f"export ISC_KIT_ENDPOINT_URL={server.endpoint_url}", flush=True)
    logger.info("serving %d objects; Ctrl-C to stop", server.objects)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    sys.stdout.flush()
    return 0
