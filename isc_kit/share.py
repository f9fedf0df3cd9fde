"""Pin a selection straight into a team's S3 DVC remote by server-side copies, checked against the manifest.

Each image is copied server-side (``CopyObject``) from the public bucket to
``<remote>/files/md5/<2 hex>/<30 hex>``, the layout ``dvc push`` writes. A copy is accepted when
the ETag S3 returns equals the manifest MD5; any other ETag (a multipart ``<hex>-N``, or the
opaque ETag of an SSE-KMS/SSE-C remote) is checked by downloading and hashing the copy. A copy
whose bytes contradict the manifest, or that could not be read back, is deleted and reported.
Then the ``.dir`` object is uploaded and ``PATH.dvc`` written, so a fresh clone's ``dvc pull``
gets exactly the verified bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .catalog import aws_region
from .dvcfiles import (
    HASH_NAME,
    add_to_gitignore,
    dvcfile_text,
    find_repo,
    tree_bytes,
    tree_oid,
    write_text_atomic,
    write_tree,
)
from .errors import ConfigError, IscKitError
from .manifest import Manifest
from .results import Result
from .source import Source, resolve_source, translate_error

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """A DVC remote on S3: bucket, key prefix, endpoint and signing (credentials from the AWS chain)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None, region: str | None = None) -> Remote:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"remote {url!r} must be an s3://bucket/path URL (the team's DVC remote)")
        return cls(parsed.netloc, parsed.path.strip("/"), endpoint_url, region)

    def key(self, oid: str) -> str:
        rel = f"files/{HASH_NAME}/{oid[:2]}/{oid[2:]}"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass
class ShareResult(Result):
    """What :func:`share` did."""

    dvcfile: str
    oid: str
    nfiles: int
    bytes: int | None  # None when the manifest does not know every size (publisher CSVs don't)
    copied: int = 0
    present: int = 0
    hashed: int = 0


def _client(endpoint_url: str | None, region: str | None, *, anon: bool = False) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(signature_version=UNSIGNED) if anon else Config()
    config = config.merge(Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32))
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def share(
    manifest: Manifest,
    path: str | os.PathLike[str],
    remote: Remote,
    *,
    source: Source | None = None,
    jobs: int = 16,
) -> ShareResult:
    """Copy every image of ``manifest`` into ``remote`` server-side, upload the ``.dir``, write ``PATH.dvc``.

    Entries without a known MD5 cannot be content-addressed before reading them: they are
    refused (pin them after ``isc-kit fetch`` instead). ``PATH.dvc`` is written only when every
    object is in the remote and verified.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a whole number of 1 or more, not {jobs!r}")
    started = time.perf_counter()
    source = source or resolve_source(bucket=manifest.bucket)
    target = Path(os.path.abspath(path))
    repo = find_repo(target)
    table = manifest.table
    if table["md5"].isna().any():
        n = int(table["md5"].isna().sum())
        raise ConfigError(
            f"{n} entries have no md5 in the manifest (multipart ETags); share needs known MD5s: "
            "fetch and `isc-kit pin` them instead"
        )
    client = _client(remote.endpoint_url, remote.region or aws_region(source.region))
    entries = list(zip(table["relpath"], table["md5"], strict=True))
    unique = {md5: rel for rel, md5 in entries}
    result = ShareResult("", "", len(entries), manifest.total_bytes)
    logger.info(
        "copying %d objects from %s to %s server-side", len(unique), source.url(manifest.prefix), remote.url
    )

    def one(item: tuple[str, str]) -> tuple[str, str, str]:
        md5, rel = item
        return md5, rel, _copy_one(client, source, manifest.prefix + rel, remote, md5)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for _md5, rel, outcome in pool.map(one, unique.items()):
            if outcome == "copied":
                result.copied += 1
            elif outcome == "present":
                result.present += 1
            elif outcome == "hashed":
                result.hashed += 1
                result.copied += 1
            else:
                result.failed.append((rel, outcome))
    if result.failed:
        result.seconds = time.perf_counter() - started
        return result
    data = tree_bytes(entries)
    result.oid = tree_oid(data)
    try:
        client.put_object(Bucket=remote.bucket, Key=remote.key(result.oid), Body=data)
    except Exception as err:
        raise _remote_error(err, remote) from err
    write_tree(repo, entries)
    dvcfile = target.with_name(target.name + ".dvc")
    write_text_atomic(dvcfile, dvcfile_text(target.name, result.oid, result.bytes, len(entries)))
    add_to_gitignore(target)
    result.dvcfile = str(dvcfile)
    result.seconds = time.perf_counter() - started
    logger.info(
        "shared %d files as %s: %d copied, %d already in the remote",
        len(entries),
        result.oid,
        result.copied,
        result.present,
    )
    return result


def _copy_one(client: Any, source: Source, key: str, remote: Remote, md5: str) -> str:
    """``copied``, ``present``, ``hashed`` (ETag not an MD5, verified by download) or a failure reason."""
    from botocore.exceptions import BotoCoreError, ClientError

    dst = remote.key(md5)
    where = f"s3://{remote.bucket}/{dst}"
    try:
        head = client.head_object(Bucket=remote.bucket, Key=dst)
        if head["ETag"].strip('"').lower() == md5:
            return "present"
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            return f"remote: {err}"
    except BotoCoreError as err:
        return f"remote: {err}; check the remote's endpoint and network"
    try:
        reply = client.copy_object(
            Bucket=remote.bucket, Key=dst, CopySource={"Bucket": source.bucket_name, "Key": key}
        )
    except (BotoCoreError, ClientError) as err:
        return f"copy from s3://{source.bucket_name}/{key} failed: {err}"
    etag = reply.get("CopyObjectResult", {}).get("ETag", "").strip('"').lower()
    if etag == md5:
        return "copied"
    # a multipart copy (<hex>-N) or an SSE-KMS/SSE-C remote: the ETag is not the MD5 of the bytes
    logger.debug("ETag %s of %s is not the manifest's md5 %s; downloading it to hash", etag, where, md5)
    try:
        actual = _md5_of_object(client, remote.bucket, dst)
    except (BotoCoreError, ClientError) as err:
        deleted = _delete(client, remote.bucket, dst)
        return (
            f"could not read back the copy {where} to check its md5 (its ETag {etag} is not the md5): {err}; "
            f"{deleted}; check the remote's endpoint, network and read access, then rerun"
        )
    if actual == md5:
        return "hashed"
    return f"md5 of the copy is {actual}, manifest says {md5}; {_delete(client, remote.bucket, dst)}"


def _md5_of_object(client: Any, bucket: str, key: str) -> str:
    """MD5 of an object's bytes, read in 1 MB chunks."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.md5()
    try:
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()


def _delete(client: Any, bucket: str, key: str) -> str:
    """Delete an unverified copy; what happened, as the end of a failure reason."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as err:
        return f"deleting the copy failed ({err}): rerun, or delete s3://{bucket}/{key}"
    return "the copy was deleted"


def _remote_error(err: BaseException, remote: Remote) -> IscKitError:
    code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
    if code in ("404", "NoSuchBucket"):
        err = FileNotFoundError(str(err))
    elif code in ("403", "AccessDenied"):
        err = PermissionError(str(err))
    return translate_error(err, remote.url, Source(endpoint_url=remote.endpoint_url, anon=False))
