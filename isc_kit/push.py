"""``isc-kit push``: the local cache's objects for DVC-tracked outputs up to the team remote, concurrently.

The counterpart of :mod:`isc_kit.pull` for trees whose objects are not on the remote yet (a
pinned fetch, a pipeline's outputs). The remote is listed once (``files/md5/``), so only objects
it lacks are sent; each S3 upload is a single PUT over the lean HTTP client (SigV4-signed when
there are credentials), after checking that the cache file's MD5 is its name (``dvc push`` does
not), and with ``Content-MD5``, so S3 refuses a body damaged on the way. Folder remotes get a copy through a temp name. ``.dir`` objects go
last, so a reader never finds a listing whose files are not there yet. Objects over 64 MB are
refused with a pointer to ``dvc push`` (they need multipart uploads).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ._dvcremote import DvcRemote, resolve_remote
from .errors import DvcError
from .results import Result

logger = logging.getLogger(__name__)

MAX_BODY = 64 << 20
DEFAULT_JOBS = 64


@dataclass
class PushResult(Result):
    """What :func:`push` did. ``ok`` when nothing failed."""

    objects: int = 0
    present: int = 0
    uploaded: int = 0
    bytes: int = 0

    FAILED_KEY: ClassVar[str] = "object"

    def summary(self) -> str:
        return (
            f"{self.objects:,} objects: {self.uploaded:,} uploaded ({self.bytes / 1e6:,.1f} MB), "
            f"{self.present:,} already on the remote, {len(self.failed):,} failed in {self.seconds:.1f} s"
        )


def push(
    repo_root: str | os.PathLike[str] = ".",
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
) -> PushResult:
    """Upload the cached objects of ``targets`` (default: every tracked output) that the remote lacks."""
    from dvc.repo import Repo

    from .pull import PullResult, _locked, collect_outs

    started = time.perf_counter()
    try:
        repo = Repo(os.fspath(repo_root))
    except Exception as err:
        raise DvcError(
            f"{repo_root}: cannot open the DVC repository ({err}); run inside a `dvc init` repo"
        ) from None
    result = PushResult()
    try:
        with _locked(repo):
            outs = collect_outs(repo, targets, PullResult())
            cache = repo.cache.local.path
            groups: dict[str | None, list[Any]] = {}
            for out in outs:
                groups.setdefault(out.remote or remote, []).append(out)
            for key, group in groups.items():
                rem = resolve_remote(repo.config, key)
                files, dirs = _objects(cache, group, result)
                _push_group(rem, cache, files, dirs, jobs or DEFAULT_JOBS, result)
    finally:
        repo.close()
    result.seconds = time.perf_counter() - started
    return result


def _objects(cache: str, outs: list[Any], result: PushResult) -> tuple[list[str], list[str]]:
    """(file object ids, .dir ids) of ``outs`` that the local cache holds; the rest are reported."""
    files: dict[str, None] = {}
    dirs: list[str] = []
    for out in outs:
        if out.is_dir:
            try:
                with open(_path(cache, out.oid), "rb") as fh:
                    out.listing = fh.read()
            except FileNotFoundError:
                result.failed.append((out.oid, f"{out.path}: its .dir object is not in the local cache"))
                continue
            dirs.append(out.oid)
        for _rel, md5 in out.entries():
            files[md5] = None
    have = []
    for md5 in files:
        if os.path.exists(_path(cache, md5)):
            have.append(md5)
        else:
            result.failed.append((md5, "not in the local cache (run `isc-kit pull` or `dvc fetch` first)"))
    return have, dirs


def _path(cache: str, oid: str) -> str:
    return f"{cache}{os.sep}{oid[:2]}{os.sep}{oid[2:]}"


def _push_group(
    rem: DvcRemote, cache: str, files: list[str], dirs: list[str], jobs: int, result: PushResult
) -> None:
    present = _on_remote(rem)
    for batch in (files, dirs):
        if batch is dirs and result.failed:
            result.failed += [(d, "its .dir object was not pushed: some of its files failed") for d in dirs]
            return
        todo = [o for o in batch if o not in present]
        result.objects += len(batch)
        result.present += len(batch) - len(todo)
        if not todo:
            continue
        logger.info("uploading %d objects to %s", len(todo), rem.describe())
        if rem.folder is not None:
            _copy_to_folder(rem, cache, todo, result)
        else:
            from .transfer.engine import run_sync
            from .transfer.getters import _needs_proxy

            if _needs_proxy(rem.source):
                raise DvcError(
                    f"{rem.describe()} is reached through an HTTP(S) proxy, which isc-kit push does not use; "
                    "push with `dvc push`, or set NO_PROXY for the remote's host"
                )

            run_sync(functools.partial(_upload_all, rem, cache, todo, jobs, result))


def _on_remote(rem: DvcRemote) -> set[str]:
    """Object ids already on the remote (S3: listed once; single-part ETags must equal the md5)."""
    if rem.folder is not None:
        return {
            d + name
            for d in _listdir(os.path.join(rem.folder, "files", "md5"))
            if len(d) == 2
            for name in _listdir(os.path.join(rem.folder, "files", "md5", d))
        }
    from .source import list_objects, make_filesystem

    prefix = f"{rem.prefix}/files/md5/" if rem.prefix else "files/md5/"
    found = set()
    for obj in list_objects(rem.source, prefix, make_filesystem(rem.source)):
        oid = obj["key"][len(prefix) :].replace("/", "", 1)
        etag = obj["etag"].lower()
        if "-" in etag or etag == oid.removesuffix(".dir"):
            found.add(oid)
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _copy_to_folder(rem: DvcRemote, cache: str, oids: list[str], result: PushResult) -> None:
    from .dvc_checkout import Placer

    placer = Placer(["copy"])
    assert rem.folder is not None
    for oid in oids:
        dest = os.path.join(rem.folder, "files", "md5", oid[:2], oid[2:])
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            placer.place(_path(cache, oid), dest)
            os.chmod(dest, 0o444)
        except OSError as err:
            result.failed.append((oid, f"{dest}: {err.strerror or err}"))
            continue
        result.uploaded += 1
        result.bytes += os.path.getsize(dest)


async def _upload_all(rem: DvcRemote, cache: str, oids: list[str], jobs: int, result: PushResult) -> None:
    from .transfer.rawhttp import RawClient

    client = RawClient()
    signer = _signer(rem)
    it = iter(oids)
    try:

        async def worker() -> None:
            for oid in it:
                reason = await _upload_one(client, signer, rem, cache, oid, result)
                if reason:
                    result.failed.append((rem.key(oid), reason))

        await asyncio.gather(*(worker() for _ in range(min(jobs, len(oids)))))
    finally:
        client.close()


def _signer(rem: DvcRemote) -> Any:
    """A SignedRawGetter (for its credentials and region) when the remote needs signing, else None."""
    if rem.source.anon:
        return None
    getter = rem.getter(1)
    return getter if hasattr(getter, "creds") else None


async def _upload_one(
    client: Any, signer: Any, rem: DvcRemote, cache: str, oid: str, result: PushResult
) -> str:
    from .transfer.rawhttp import Origin, ProtocolError

    path = _path(cache, oid)
    size = os.path.getsize(path)
    if size > MAX_BODY:
        return f"{size / 1e6:.0f} MB needs a multipart upload: push it with `dvc push`"
    with open(path, "rb") as fh:
        body = fh.read()
    actual = hashlib.md5(body).hexdigest()
    if actual != oid.removesuffix(".dir"):
        return (
            f"the local cache file {path} has md5 {actual}, not the {oid} it is named: not uploaded; "
            "delete it and `isc-kit pull` (or `dvc fetch`) it again"
        )
    md5 = base64.b64encode(bytes.fromhex(oid.removesuffix(".dir"))).decode()
    if rem.source.endpoint_url:
        url = f"{rem.source.endpoint_url}/{rem.source.bucket_name}/{rem.key(oid)}"
    else:
        region = signer.region if signer is not None else "us-east-1"
        url = f"https://{rem.source.bucket_name}.s3.{region}.amazonaws.com/{rem.key(oid)}"
    origin, target = Origin.of(url)
    for attempt in range(4):
        head = [
            f"PUT {target} HTTP/1.1",
            f"Host: {origin.host_header}",
            f"Content-Length: {size}",
            f"Content-MD5: {md5}",
        ]
        if signer is not None:
            from ._s3sign import sign_request

            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            signed = sign_request("PUT", signer.creds, signer.region, origin.host_header, target, stamp)
            head += [f"{n}: {v}" for n, v in signed]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            resp = await client.request(origin, request, None)
        except ProtocolError as err:
            reason = f"{url}: {err.reason}"
        else:
            if resp.status == 200:
                result.uploaded += 1
                result.bytes += size
                return ""
            reason = f"{url}: HTTP {resp.status} {resp.error_body[:200].decode('utf-8', 'replace')}"
            if resp.status < 500 and resp.status != 429:
                if b"BadDigest" in resp.error_body:
                    return f"the local cache file {path} is not the bytes of {oid}: S3 refused it (BadDigest)"
                return reason
        await asyncio.sleep(0.2 * 2**attempt)
    return reason
