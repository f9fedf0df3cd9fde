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

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="s3_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve until interrupted", description="serve until interrupted")
    serve.add_argument("--scale", choices=["tiny", "demo", "bench", "empty"], default="demo")
    serve.add_argument("--seed", type=nonnegative_int, default=0, help="fixture seed (default 0)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=0, help="port (default: a free one)")
    serve.add_argument("--regions", default=",".join(REGIONS), help="comma-separated regions to seed")


def run(args: argparse.Namespace) -> int:
    from ..s3server import EmbeddedS3

    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    scale = None if args.scale == "empty" else args.scale
    server = EmbeddedS3(scale, seed=args.seed, host=args.host, port=args.port, regions=regions).start()
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
