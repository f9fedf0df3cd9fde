"""The embedded default: moto's S3 server on loopback, seeded with the synthetic mini-ISC.

Clients reach it through an endpoint URL only (``ISC_KIT_ENDPOINT_URL``), exactly as they would
reach AWS; nothing in the toolkit knows it is not AWS. The three regional buckets hold the
real key layout (``all/query_images/Q00000.jpg`` ...), public-read, and the publisher-format
metadata CSVs and ground truth below ``metadata/``.

The server is quiet: werkzeug's per-request access lines (``127.0.0.1 - - [...] "GET ..." 200 -``)
are dropped unless asked for (``EmbeddedS3(access_log=True)``, ``ISC_KIT_S3_ACCESS_LOG=1`` or
``isc-kit s3 serve --access-log``); server errors are still logged. In a notebook,
:func:`ensure_embedded_s3` gives one server per kernel, restarted when it died, stopped at exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from .catalog import DEFAULT_BUCKET, REGIONS, aws_region, bucket_for_region

logger = logging.getLogger(__name__)

METADATA_PREFIX = "metadata/"
#: Set to 1/true/yes to print werkzeug's access line for every request.
ACCESS_LOG_ENV = "ISC_KIT_S3_ACCESS_LOG"
ENDPOINT_ENV = "ISC_KIT_ENDPOINT_URL"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _request_handler(access_log: bool) -> type:
    """moto's request handler, with werkzeug's access line dropped unless ``access_log``."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class Handler(MotoRequestHandler):  # type: ignore[misc]
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if access_log:
                super().log_request(code, size)

    return Handler


class _Server:
    """moto's WSGI app served by werkzeug in a daemon thread (what ThreadedMotoServer does, minus the log)."""

    def __init__(self, host: str, port: int, access_log: bool):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._httpd = make_server(host, port, app, True, request_handler=_request_handler(access_log))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="embedded-s3", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class EmbeddedS3:
    """A moto S3 server in a background thread; use as a context manager or call start/stop.

    Constructing it touches nothing; :meth:`start` binds the port (0 = a free one) and seeds
    the buckets from :func:`isc_kit.fixture.materialize` for ``scale`` (None = empty server).
    """

    def __init__(
        self,
        scale: str | None = "demo",
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        bucket: str = DEFAULT_BUCKET,
        regions: Iterable[str] = tuple(REGIONS),
        access_log: bool | None = None,
    ):
        self.scale, self.seed, self.host, self.port = scale, seed, host, port
        self.bucket, self.regions = bucket, tuple(regions)
        self.access_log = access_log  # None: from $ISC_KIT_S3_ACCESS_LOG when started
        self._server: _Server | None = None
        self.objects = 0

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the embedded S3 server is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedS3:
        """Generate (or reuse) the fixture, bind, serve in a thread and seed. Returns self."""
        os.environ.setdefault(
            "AWS_ACCESS_KEY_ID", "embedded"
        )  # moto wants some credentials for its own calls
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")
        root = None
        if self.scale:
            from .fixture import materialize

            root = materialize(self.scale, self.seed)  # before any thread starts: its pool may fork
        access_log = _env_flag(ACCESS_LOG_ENV) if self.access_log is None else self.access_log
        server = _Server(self.host, self.port, access_log)
        self.host, self.port = server.get_host_and_port()
        self._server = server
        if root is not None:
            self.objects = seed_buckets(root, self.bucket, self.regions)
        logger.info("embedded S3 at %s (%d objects)", self.endpoint_url, self.objects)
        return self

    @property
    def running(self) -> bool:
        """True while the server thread runs and accepts connections."""
        if self._server is None or not self._server.is_alive():
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedS3:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def seed_buckets(root: Path, bucket: str = DEFAULT_BUCKET, regions: Iterable[str] = tuple(REGIONS)) -> int:
    """Create the regional buckets public-read and upload every file below ``root`` with its relative key.

    Seeding talks to moto's in-process backend (the server's own storage), which is much faster
    than thousands of PUTs over HTTP; clients still read everything over HTTP.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import get_canned_acl, s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    acl = get_canned_acl("public-read")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    count = 0
    for region in regions:
        name = bucket_for_region(bucket, region)
        if name not in backend.buckets:
            backend.create_bucket(name, aws_region(region))
        backend.put_bucket_acl(name, acl)
        for path in files:
            key = path.relative_to(root).as_posix()
            obj = backend.put_object(name, key, path.read_bytes())
            obj.acl = acl
            count += 1
    return count


_shared: EmbeddedS3 | None = None
_shared_lock = threading.Lock()


def ensure_embedded_s3(scale: str | None = "demo", *, seed: int = 0) -> str:
    """This process's embedded S3 endpoint, for notebooks: safe to call in every Run All.

    If ``$ISC_KIT_ENDPOINT_URL`` names a server this function did not start, it is left alone
    and returned. Otherwise the shared server is reused while it answers, started (or restarted,
    on its old port when free) when it does not, exported as ``$ISC_KIT_ENDPOINT_URL``, and
    stopped when the process (the kernel) exits.
    """
    global _shared
    with _shared_lock:
        current = os.environ.get(ENDPOINT_ENV, "").strip()
        mine = f"http://{_shared.host}:{_shared.port}" if _shared is not None else None
        if current and current != mine:
            return current
        if _shared is not None and _shared.running and _shared.scale == scale:
            return _shared.endpoint_url
        port = 0
        if _shared is not None:
            port = _shared.port if _shared.scale == scale else 0
            _shared.stop()
        else:
            atexit.register(_stop_shared)
        try:
            server = EmbeddedS3(scale, seed=seed, port=port).start()
        except OSError:  # the old port was taken meanwhile
            server = EmbeddedS3(scale, seed=seed).start()
        _shared = server
        os.environ[ENDPOINT_ENV] = server.endpoint_url
        return server.endpoint_url


def _stop_shared() -> None:
    if _shared is not None:
        _shared.stop()
