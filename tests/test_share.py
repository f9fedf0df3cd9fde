"""`isc-kit share`: server-side copy into a team remote on the embedded S3; a fresh clone's `dvc pull` gets the bytes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultMix, FaultProxy
from test_pin import DVC, make_repo, run

from isc_kit.manifest import read_metadata, write_pinned
from isc_kit.select import Selection, select
from isc_kit.share import Remote, share
from isc_kit.source import Source

BUCKET = "drivendata-competition-fb-isc-data"


def add_remote(repo: Path, bucket: str, endpoint: str) -> None:
    run([DVC, "remote", "add", "-d", "team", f"s3://{bucket}/dvcstore"], repo)
    run([DVC, "remote", "modify", "team", "endpointurl", endpoint], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)


def env_for(endpoint: str) -> dict[str, str]:
    return {**os.environ, "ISC_KIT_ENDPOINT_URL": endpoint, "DVC_NO_ANALYTICS": "1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # fmt: skip


@pytest.mark.dvc
def test_share_then_fresh_clone_pulls_verified_bytes(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client, tiny_root: Path
) -> None:
    team = make_bucket({})
    repo = make_repo(tmp_path / "a")
    add_remote(repo, team, s3_endpoint)
    full = read_metadata(tiny_root / "metadata" / "query_images_metadata.csv", "query")
    manifest = select(full, Selection(ranges=("Q00000:Q00011",)))
    write_pinned(manifest, repo / "q.pinned")

    proc = subprocess.run(
        [sys.executable, "-m", "isc_kit", "share", "q.pinned", "data/query", "--json"],
        cwd=repo, env=env_for(s3_endpoint), capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["copied"] == 12
    assert out["nfiles"] == 12
    assert not (repo / "data" / "query").exists(), "nothing was downloaded"
    expected = {f"Q{i:05d}.jpg": hashlib.md5((tiny_root / "all/query_images" / f"Q{i:05d}.jpg").read_bytes()).hexdigest()
                for i in range(12)}  # fmt: skip
    listed = boto_client.list_objects_v2(Bucket=team, Prefix="dvcstore/files/md5/")["Contents"]
    keys = {o["Key"].removeprefix("dvcstore/files/md5/").replace("/", "", 1) for o in listed}
    listing = [{"md5": m, "relpath": r} for r, m in sorted(expected.items())]
    dir_oid = hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"
    assert keys == set(expected.values()) | {dir_oid}
    assert out["oid"] == dir_oid

    again = subprocess.run(
        [sys.executable, "-m", "isc_kit", "share", "q.pinned", "data/query", "--json"],
        cwd=repo, env=env_for(s3_endpoint), capture_output=True, text=True,
    )  # fmt: skip
    assert json.loads(again.stdout)["present"] == 12, "a rerun copies nothing"

    run(["git", "add", "data/query.dvc", "data/.gitignore"], repo)
    run(["git", "commit", "-qm", "share query"], repo)
    clone = tmp_path / "b"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    subprocess.run([DVC, "pull", "-q"], cwd=clone, env=env_for(s3_endpoint), check=True, capture_output=True)
    got = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in (clone / "data" / "query").iterdir()}
    assert got == expected
    status = subprocess.run(
        [DVC, "status", "--json"], cwd=clone, env=env_for(s3_endpoint), capture_output=True, text=True
    )
    assert json.loads(status.stdout) == {}


def test_share_rejects_a_copy_whose_etag_contradicts_the_manifest(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client
) -> None:
    """The source object's bytes are not what the manifest says: the copy is deleted and no .dvc is written."""
    good, bad = b"good image bytes", b"tampered bytes"
    source_bucket = make_bucket({"all/query_images/Q00000.jpg": good, "all/query_images/Q00001.jpg": bad})
    team = make_bucket({})
    (tmp_path / ".dvc").mkdir()
    import pandas as pd

    from isc_kit.manifest import STRING, Manifest

    table = pd.DataFrame(
        {
            "image_id": pd.array(["Q00000", "Q00001"], dtype=STRING),
            "relpath": pd.array(["Q00000.jpg", "Q00001.jpg"], dtype=STRING),
            "md5": pd.array(
                [hashlib.md5(good).hexdigest(), hashlib.md5(b"original").hexdigest()], dtype=STRING
            ),
            "size": pd.array([len(good), 8], dtype="Int64"),
        }
    )
    manifest = Manifest("query", source_bucket, "all/query_images/", table)
    result = share(
        manifest,
        tmp_path / "q",
        Remote.from_url(f"s3://{team}/store", endpoint_url=s3_endpoint),
        source=Source(bucket=source_bucket, endpoint_url=s3_endpoint),
    )
    assert not result.ok
    assert result.failed[0][0] == "Q00001.jpg"
    assert hashlib.md5(bad).hexdigest() in result.failed[0][1]
    keys = [o["Key"] for o in boto_client.list_objects_v2(Bucket=team).get("Contents", [])]
    md5 = hashlib.md5(good).hexdigest()
    assert keys == [f"store/files/md5/{md5[:2]}/{md5[2:]}"], "only the verified copy stays"
    assert not (tmp_path / "q.dvc").exists()


# ---------------------------------------------------------------------------------------------- multipart ETags

PART = 5 << 20  # S3's smallest part (all but the last)


def put_multipart(client, bucket: str, key: str, parts: list[bytes]) -> str:
    """Upload ``parts`` as one multipart object on the embedded S3; its ETag, checked against S3's formula."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for n, part in enumerate(parts, 1):
        reply = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=part)
        done.append({"PartNumber": n, "ETag": reply["ETag"]})
    etag = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
    )["ETag"].strip('"')
    # MD5 of the parts' binary MD5s, then -<parts>: not the MD5 of the bytes
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"
    assert etag == expected
    assert client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == etag
    return etag


def one_entry_manifest(bucket: str, md5: str, size: int):
    import pandas as pd

    from isc_kit.manifest import STRING, Manifest

    table = pd.DataFrame(
        {
            "image_id": pd.array(["Q00000"], dtype=STRING),
            "relpath": pd.array(["Q00000.jpg"], dtype=STRING),
            "md5": pd.array([md5], dtype=STRING),
            "size": pd.array([size], dtype="Int64"),
        }
    )
    return Manifest("query", bucket, "all/query_images/", table)


class CopyKeepsSourceETag(FaultProxy):
    """Pass-through proxy to the embedded S3 whose CopyObject answers carry the source's ETag.

    Some S3-compatible servers keep a multipart source's ETag on the copy (AWS and moto give the copy the
    MD5 of its bytes); everything else, the copy itself included, is the real server's doing.
    """

    def __init__(self, upstream: str, etag: str) -> None:
        super().__init__(upstream, FaultMix())
        self.etag = etag.encode()
        self.rewritten = 0

    async def _forward(self, method: str, path: str, headers: list[str], body: bytes) -> tuple[bytes, bytes]:
        head, answer = await super()._forward(method, path, headers, body)
        if method == "PUT" and any(h.lower().startswith("x-amz-copy-source:") for h in headers):
            answer, n = re.subn(rb'<ETag>"[^"<]*"</ETag>', b'<ETag>"%s"</ETag>' % self.etag, answer)
            self.rewritten += n
            head = re.sub(rb"(?im)^content-length: *\d+", b"Content-Length: %d" % len(answer), head)
            head = re.sub(rb'(?im)^etag: *"[^"]*"', b'ETag: "%s"' % self.etag, head)
        return head, answer


@pytest.fixture
def multipart_source(make_bucket, boto_client) -> tuple[str, bytes, str]:
    """A bucket holding Q00000.jpg as a real two-part upload: (bucket, bytes, multipart ETag)."""
    parts = [random.Random(0).randbytes(PART), b"the last part may be small"]
    bucket = make_bucket({})
    etag = put_multipart(boto_client, bucket, "all/query_images/Q00000.jpg", parts)
    return bucket, b"".join(parts), etag


def remote_keys(boto_client, bucket: str) -> list[str]:
    return [o["Key"] for o in boto_client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.parametrize("keeps_etag", [False, True], ids=["copy-gets-md5-etag", "copy-keeps-multipart-etag"])
def test_share_verifies_a_multipart_object_by_its_bytes(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client, multipart_source, keeps_etag: bool
) -> None:
    """A multipart source is copied and kept only as the exact bytes; with a multipart ETag on the copy,
    share downloads and hashes it (``hashed``) before writing the .dvc."""
    bucket, data, etag = multipart_source
    md5 = hashlib.md5(data).hexdigest()
    assert not etag.startswith(md5)
    team = make_bucket({})
    (tmp_path / ".dvc").mkdir()
    with CopyKeepsSourceETag(s3_endpoint, etag) as proxy:
        result = share(
            one_entry_manifest(bucket, md5, len(data)),
            tmp_path / "q",
            Remote.from_url(f"s3://{team}/store", endpoint_url=proxy.url if keeps_etag else s3_endpoint),
            source=Source(bucket=bucket, endpoint_url=s3_endpoint),
        )
    assert proxy.rewritten == (1 if keeps_etag else 0)
    assert result.ok, result.failed
    assert (result.copied, result.hashed, result.present) == (1, 1 if keeps_etag else 0, 0)
    key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
    assert boto_client.get_object(Bucket=team, Key=key)["Body"].read() == data
    listing = json.dumps([{"md5": md5, "relpath": "Q00000.jpg"}], sort_keys=True).encode()
    dir_oid = hashlib.md5(listing).hexdigest() + ".dir"
    assert sorted(remote_keys(boto_client, team)) == sorted(
        [key, f"store/files/md5/{dir_oid[:2]}/{dir_oid[2:]}"]
    )
    assert (tmp_path / "q.dvc").is_file()
    assert f"md5: {dir_oid}" in (tmp_path / "q.dvc").read_text()


@pytest.mark.parametrize("keeps_etag", [False, True], ids=["copy-gets-md5-etag", "copy-keeps-multipart-etag"])
def test_share_deletes_a_multipart_copy_whose_bytes_contradict_the_manifest(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client, multipart_source, keeps_etag: bool
) -> None:
    """The manifest's MD5 is not the bytes': the copy is deleted, the reason names the bytes' MD5, no .dvc."""
    bucket, data, etag = multipart_source
    actual = hashlib.md5(data).hexdigest()
    claimed = hashlib.md5(b"the publisher's original").hexdigest()
    team = make_bucket({})
    (tmp_path / ".dvc").mkdir()
    with CopyKeepsSourceETag(s3_endpoint, etag) as proxy:
        result = share(
            one_entry_manifest(bucket, claimed, len(data)),
            tmp_path / "q",
            Remote.from_url(f"s3://{team}/store", endpoint_url=proxy.url if keeps_etag else s3_endpoint),
            source=Source(bucket=bucket, endpoint_url=s3_endpoint),
        )
    assert proxy.rewritten == (1 if keeps_etag else 0)
    assert not result.ok
    assert result.failed == [
        ("Q00000.jpg", f"md5 of the copy is {actual}, manifest says {claimed}; the copy was deleted")
    ]
    assert (result.copied, result.hashed) == (0, 0)
    assert remote_keys(boto_client, team) == [], "the unverified copy was deleted"
    assert not (tmp_path / "q.dvc").exists()
