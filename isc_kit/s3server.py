"""The embedded default: moto's S3 server on loopback, seeded with the synthetic mini-ISC.

Clients reach it through an endpoint URL only (``ISC_KIT_ENDPOINT_URL``), exactly as they would
reach AWS; nothing in the toolkit knows it is not AWS. The three regional buckets hold the
real key layout (``all/query_images/Q00000.jpg`` ...), public-read, and the publisher-format
metadata CSVs and ground truth below ``metadata/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from .catalog import DEFAULT_BUCKET, REGIONS, aws_region, bucket_for_region

logger = logging.getLogger(__name__)

METADATA_PREFIX = "metadata/"


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
    ):
        self.scale, self.seed, self.host, self.port = scale, seed, host, port
        self.bucket, self.regions = bucket, tuple(regions)
        self._server: object | None = None
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
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self.host, self.port = server.get_host_and_port()
        self._server = server
        if root is not None:
            self.objects = seed_buckets(root, self.bucket, self.regions)
        logger.info("embedded S3 at %s (%d objects)", self.endpoint_url, self.objects)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
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
