"""A fast local S3 stand-in for benchmarks: nginx serves object GET/HEAD (sendfile), a tiny Python
sidecar answers ListObjects(V2) and GetBucketLocation, and an optional per-request delay is added
in the server (nginx echo module), because the kernel here has no netem.

moto tops out near 250 requests/s, far below the clients being compared; nginx does not (see
``wrk`` figures in bench/RESULTS.md). Every regional bucket name maps to the same folder.

    python -m bench.fastserver --scale bench --delay-ms 20      # prints "endpoint: URL"
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.server
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from xml.sax.saxutils import escape

from isc_kit.catalog import DEFAULT_BUCKET, REGIONS, bucket_for_region

ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Listing:
    """Sorted keys of a folder with sizes and md5s (from the metadata CSVs when present)."""

    def __init__(self, root: Path):
        md5s: dict[str, str] = {}
        for meta in (root / "metadata").glob("*_metadata.csv"):
            with open(meta, newline="") as fh:
                for row in csv.DictReader(fh):
                    md5s[row["s3_uri"].split("/", 3)[3]] = row["md5_checksum"]
        entries = []
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                key = p.relative_to(root).as_posix()
                entries.append((key, p.stat().st_size, md5s.get(key, "")))
        entries.sort()
        self.keys = [e[0] for e in entries]
        self.entries = entries

    def page(self, prefix: str, start_after: str, max_keys: int) -> tuple[list[tuple[str, int, str]], bool]:
        import bisect

        i = (
            bisect.bisect_right(self.keys, start_after)
            if start_after
            else bisect.bisect_left(self.keys, prefix)
        )
        i = max(i, bisect.bisect_left(self.keys, prefix))
        out = []
        while i < len(self.keys) and self.keys[i].startswith(prefix) and len(out) < max_keys:
            out.append(self.entries[i])
            i += 1
        truncated = i < len(self.keys) and self.keys[i].startswith(prefix)
        return out, truncated


def _list_handler(listing: _Listing) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            bucket = url.path.strip("/")
            if "location" in q:
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?><LocationConstraint '
                    'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">us-west-2</LocationConstraint>'
                )
                return self._send(body)
            prefix = q.get("prefix", "")
            max_keys = min(int(q.get("max-keys", "1000") or 1000), 1000)
            v2 = q.get("list-type") == "2"
            after = q.get("continuation-token") or q.get("start-after") or "" if v2 else q.get("marker", "")
            rows, truncated = listing.page(prefix, after, max_keys)
            parts = [
                '<?xml version="1.0" encoding="UTF-8"?>',
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
                f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
            ]
            if v2:
                parts.append(f"<KeyCount>{len(rows)}</KeyCount>")
                if truncated:
                    parts.append(f"<NextContinuationToken>{escape(rows[-1][0])}</NextContinuationToken>")
            elif truncated:
                parts.append(f"<NextMarker>{escape(rows[-1][0])}</NextMarker>")
            for key, size, md5 in rows:
                etag = f"<ETag>&quot;{md5}&quot;</ETag>" if md5 else ""
                parts.append(
                    f"<Contents><Key>{escape(key)}</Key><LastModified>2021-06-01T00:00:00.000Z</LastModified>"
                    f"{etag}<Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
                )
            parts.append("</ListBucketResult>")
            self._send("".join(parts))

        def _send(self, body: str) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_HEAD = do_GET

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is not news
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FastS3:
    """nginx + listing sidecar over ``root`` for every regional bucket; ``delay_ms`` per request."""

    def __init__(
        self,
        root: Path,
        *,
        delay_ms: float = 0.0,
        port: int = 0,
        workers: int = 1,
        empty: bool = False,
        etag: bool = False,
    ):
        """``empty=True`` answers every object GET with an empty 200 body (for the 1M-entry memory run).
        ``etag=True`` sends nginx's ETags and honours If-Match (s3fs, so ``dvc pull``, sends If-Match)."""
        self.root, self.delay_ms, self.port, self.workers = Path(root), delay_ms, port, workers
        self.empty = empty
        self.etag = etag
        self._tmp: Path | None = None
        self._nginx: subprocess.Popen[bytes] | None = None
        self._sidecar: http.server.ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FastS3:
        if not os.path.exists(NGINX):
            raise RuntimeError("nginx is not installed; run bench/setup-tools.sh")
        self._tmp = Path(tempfile.mkdtemp(prefix="isc-kit-fastserver-"))
        www = self._tmp / "www"
        www.mkdir()
        for region in REGIONS:
            (www / bucket_for_region(DEFAULT_BUCKET, region)).symlink_to(self.root)
        self._sidecar = _QuietServer(("127.0.0.1", 0), _list_handler(_Listing(self.root)))
        threading.Thread(target=self._sidecar.serve_forever, daemon=True).start()
        list_port = self._sidecar.server_address[1]
        self.port = self.port or _free_port()
        delay = ""
        load = ""
        if self.delay_ms > 0:
            load = f"load_module {ECHO_MODULE};"
            delay = f"echo_sleep {self.delay_ms / 1000:.3f}; echo_exec @file;"
        serve = 'return 200 "";' if self.empty else "try_files $uri =404;"
        conf = f"""
{load}
user root;
worker_processes {self.workers};
daemon off;
master_process on;
pid {self._tmp}/nginx.pid;
error_log {self._tmp}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 10000000; keepalive_timeout 120;
  etag {"on" if self.etag else "off"};
  default_type application/octet-stream;
  client_body_temp_path {self._tmp}/t1; proxy_temp_path {self._tmp}/t2; fastcgi_temp_path {self._tmp}/t3;
  uwsgi_temp_path {self._tmp}/t4; scgi_temp_path {self._tmp}/t5;
  upstream listing {{ server 127.0.0.1:{list_port}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    root {www};
    location ~ ^/[^/]+/?$ {{
      proxy_pass http://listing; proxy_http_version 1.1; proxy_set_header Connection "";
    }}
    location / {{ {delay} {serve} }}
    location @file {{ try_files $uri =404; }}
  }}
}}
"""
        (self._tmp / "nginx.conf").write_text(conf)
        self._nginx = subprocess.Popen(
            [NGINX, "-p", str(self._tmp), "-c", str(self._tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._nginx.poll() is not None:
                err = self._nginx.stderr.read().decode() if self._nginx.stderr else ""
                raise RuntimeError(f"nginx did not start: {err}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening within 10 s")

    def stop(self) -> None:
        if self._nginx is not None:
            self._nginx.send_signal(signal.SIGQUIT)
            try:
                self._nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._nginx.kill()
                self._nginx.wait()
            self._nginx = None
        if self._sidecar is not None:
            self._sidecar.shutdown()
            self._sidecar.server_close()
            self._sidecar = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> FastS3:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="bench")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    from isc_kit.fixture import materialize

    with FastS3(materialize(args.scale), delay_ms=args.delay_ms, port=args.port) as server:
        print(f"endpoint: {server.endpoint_url}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
