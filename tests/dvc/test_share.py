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
from typing import Any

import pytest
from faultproxy import FaultMix, FaultProxy
from test_pin import DVC, make_repo, run

from isc_kit.metadata import read_metadata
from isc_kit.pinned import write_pinned
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
    assert "size" not in (repo / "data" / "query.dvc").read_text()  # unknown sizes: left out, as dvc does

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

    from isc_kit.manifest import Manifest

    table = pd.DataFrame(
        {
            "image_id": pd.array(["Q00000", "Q00001"], dtype="string[pyarrow]"),
            "relpath": pd.array(["Q00000.jpg", "Q00001.jpg"], dtype="string[pyarrow]"),
            "md5": pd.array(
                [hashlib.md5(good).hexdigest(), hashlib.md5(b"original").hexdigest()], dtype="string[pyarrow]"
            ),
            "size": pd.array([len(good), 8], dtype="Int64"),
        }
    )
    manifest = Manifest.from_pandas("query", source_bucket, "all/query_images/", table)
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

    from isc_kit.manifest import Manifest

    table = pd.DataFrame(
        {
            "image_id": pd.array(["Q00000"], dtype="string[pyarrow]"),
            "relpath": pd.array(["Q00000.jpg"], dtype="string[pyarrow]"),
            "md5": pd.array([md5], dtype="string[pyarrow]"),
            "size": pd.array([size], dtype="Int64"),
        }
    )
    return Manifest.from_pandas("query", bucket, "all/query_images/", table)


class CopyETagProxy(FaultProxy):
    """Pass-through proxy to the embedded S3 that rewrites the ETag of CopyObject answers, and can fault GETs.

    ``etag`` is put on every copy: a fixed value (some S3-compatible servers keep a multipart source's ETag
    on the copy; AWS and moto give it the MD5 of its bytes), or with ``None`` a fresh random 32-hex value per
    copy, as AWS answers for an SSE-KMS or SSE-C bucket. ``fault_gets`` maps ``bucket/key`` to the fault (see
    faultproxy) every GET of it gets. Everything else, the copy itself included, is the real server's doing.
    """

    def __init__(self, upstream: str, etag: str | None, *, fault_gets: dict[str, str] | None = None) -> None:
        super().__init__(upstream, FaultMix())
        self.etag = etag
        self.fault_gets = fault_gets or {}
        self.rewritten: list[str] = []
        self._rng = random.Random(0)

    def decide(self, method: str, path: str) -> tuple[str, random.Random]:
        fault, rng = super().decide(method, path)
        key = path.split("?", 1)[0].lstrip("/")  # path-style: /bucket/key
        return (self.fault_gets.get(key, "") if method == "GET" else fault), rng

    async def _forward(self, method: str, path: str, headers: list[str], body: bytes) -> tuple[bytes, bytes]:
        head, answer = await super()._forward(method, path, headers, body)
        if method == "PUT" and any(h.lower().startswith("x-amz-copy-source:") for h in headers):
            etag = self.etag or f"{self._rng.getrandbits(128):032x}"
            answer, n = re.subn(rb'<ETag>"[^"<]*"</ETag>', b'<ETag>"%s"</ETag>' % etag.encode(), answer)
            self.rewritten += [etag] * n
            head = re.sub(rb"(?im)^content-length: *\d+", b"Content-Length: %d" % len(answer), head)
            head = re.sub(rb'(?im)^etag: *"[^"]*"', b'ETag: "%s"' % etag.encode(), head)
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


def share_multipart(
    tmp_path: Path, s3_endpoint: str, team: str, source: tuple[str, bytes, str], md5: str, keeps_etag: bool
) -> tuple[Any, list[str]]:
    """Share the one multipart object under ``md5``; with ``keeps_etag`` the copy keeps its multipart ETag."""
    bucket, data, etag = source
    (tmp_path / ".dvc").mkdir()
    with CopyETagProxy(s3_endpoint, etag) as proxy:
        result = share(
            one_entry_manifest(bucket, md5, len(data)),
            tmp_path / "q",
            Remote.from_url(f"s3://{team}/store", endpoint_url=proxy.url if keeps_etag else s3_endpoint),
            source=Source(bucket=bucket, endpoint_url=s3_endpoint),
        )
    return result, proxy.rewritten


@pytest.mark.parametrize("keeps_etag", [False, True], ids=["copy-gets-md5-etag", "copy-keeps-multipart-etag"])
def test_share_verifies_a_multipart_object_by_its_bytes(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client, multipart_source, keeps_etag: bool
) -> None:
    """A multipart source is copied and kept only as the exact bytes; with a multipart ETag on the copy,
    share downloads and hashes it (``hashed``) before writing the .dvc."""
    _, data, etag = multipart_source
    md5 = hashlib.md5(data).hexdigest()
    assert not etag.startswith(md5)
    team = make_bucket({})
    result, rewritten = share_multipart(tmp_path, s3_endpoint, team, multipart_source, md5, keeps_etag)
    assert rewritten == ([etag] if keeps_etag else [])
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
    _, data, etag = multipart_source
    actual = hashlib.md5(data).hexdigest()
    claimed = hashlib.md5(b"the publisher's original").hexdigest()
    team = make_bucket({})
    result, rewritten = share_multipart(tmp_path, s3_endpoint, team, multipart_source, claimed, keeps_etag)
    assert rewritten == ([etag] if keeps_etag else [])
    assert not result.ok
    assert result.failed == [
        ("Q00000.jpg", f"md5 of the copy is {actual}, manifest says {claimed}; the copy was deleted")
    ]
    assert (result.copied, result.hashed) == (0, 0)
    assert remote_keys(boto_client, team) == [], "the unverified copy was deleted"
    assert not (tmp_path / "q.dvc").exists()


# ---------------------------------------------------------------------------------------------- opaque ETags

IMAGES = {f"Q{i:05d}.jpg": f"image {i} bytes".encode() * (i + 1) for i in range(4)}


def manifest_of(bucket: str, md5s: dict[str, str]):
    """A query manifest of ``{relpath: md5}`` under all/query_images/ in ``bucket``."""
    import pandas as pd

    from isc_kit.manifest import Manifest

    rels = sorted(md5s)
    table = pd.DataFrame(
        {
            "image_id": pd.array([r.removesuffix(".jpg") for r in rels], dtype="string[pyarrow]"),
            "relpath": pd.array(rels, dtype="string[pyarrow]"),
            "md5": pd.array([md5s[r] for r in rels], dtype="string[pyarrow]"),
            "size": pd.array([len(IMAGES[r]) for r in rels], dtype="Int64"),
        }
    )
    return Manifest.from_pandas("query", bucket, "all/query_images/", table)


def md5_key(md5: str) -> str:
    return f"store/files/md5/{md5[:2]}/{md5[2:]}"


@pytest.mark.parametrize("tampered", [False, True], ids=["all-good", "one-contradicts"])
def test_share_hashes_copies_whose_etag_is_not_their_md5(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client, tampered: bool, caplog
) -> None:
    """An SSE-KMS/SSE-C remote gives each copy a random 32-hex ETag: good bytes are hashed and kept,
    bytes that contradict the manifest are deleted and reported."""
    bucket = make_bucket({f"all/query_images/{r}": b for r, b in IMAGES.items()})
    md5s = {r: hashlib.md5(b).hexdigest() for r, b in IMAGES.items()}
    if tampered:
        md5s["Q00002.jpg"] = hashlib.md5(b"the publisher's original").hexdigest()
    team = make_bucket({})
    (tmp_path / ".dvc").mkdir()
    with caplog.at_level("DEBUG", logger="isc_kit.share"), CopyETagProxy(s3_endpoint, None) as proxy:
        result = share(
            manifest_of(bucket, md5s),
            tmp_path / "q",
            Remote.from_url(f"s3://{team}/store", endpoint_url=proxy.url),
            source=Source(bucket=bucket, endpoint_url=s3_endpoint),
            jobs=2,
        )
    assert len(proxy.rewritten) == 4
    assert all(re.fullmatch("[0-9a-f]{32}", etag) for etag in proxy.rewritten)
    assert not set(proxy.rewritten) & set(md5s.values()), "no rewritten ETag is an MD5 of the bytes"
    good = {r: m for r, m in md5s.items() if r != "Q00002.jpg" or not tampered}
    assert sorted(remote_keys(boto_client, team)) == sorted(
        [md5_key(m) for m in good.values()] + ([] if tampered else [md5_key(result.oid)])
    )
    for rel, md5 in good.items():
        assert boto_client.get_object(Bucket=team, Key=md5_key(md5))["Body"].read() == IMAGES[rel]
    assert (result.copied, result.hashed, result.present) == (len(good), len(good), 0)
    assert sum("is not the manifest's md5" in r.getMessage() for r in caplog.records) == 4, (
        "one debug line per copy"
    )
    if tampered:
        actual, claimed = hashlib.md5(IMAGES["Q00002.jpg"]).hexdigest(), md5s["Q00002.jpg"]
        assert result.failed == [
            ("Q00002.jpg", f"md5 of the copy is {actual}, manifest says {claimed}; the copy was deleted")
        ]
        assert not (tmp_path / "q.dvc").exists()
    else:
        assert result.ok, result.failed
        assert f"md5: {result.oid}" in (tmp_path / "q.dvc").read_text()


# error500: a ClientError after botocore's retries (~10 s of backoff); truncate: the body read fails at once
# (a reset before the answer takes the same branch as truncate, after the same retries as error500)
@pytest.mark.parametrize("fault", [pytest.param("error500", marks=pytest.mark.slow), "truncate"])
def test_share_reports_a_copy_it_cannot_read_back_and_shares_the_others(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client, fault: str
) -> None:
    """The check-download of one copy fails (500, body cut halfway): that object alone fails with
    a one-line reason and its unchecked copy is deleted; the others are shared; the CLI exits 1; a rerun
    without the fault completes."""
    bucket = make_bucket({f"all/query_images/{r}": b for r, b in IMAGES.items()})
    md5s = {r: hashlib.md5(b).hexdigest() for r, b in IMAGES.items()}
    team = make_bucket({})
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    write_pinned(manifest_of(bucket, md5s), repo / "q.pinned")
    bad = md5_key(md5s["Q00001.jpg"])

    def cli(endpoint: str) -> tuple[int, dict]:
        proc = subprocess.run(
            [sys.executable, "-m", "isc_kit", "share", "q.pinned", "data/q", "--json", "--jobs", "2",
             "--remote", f"s3://{team}/store", "--remote-endpoint-url", endpoint],
            cwd=repo, env=env_for(s3_endpoint), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.stdout, proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    multipart = hashlib.md5(b"parts").hexdigest() + "-2"  # a multipart ETag on every copy
    with CopyETagProxy(s3_endpoint, multipart, fault_gets={f"{team}/{bad}": fault}) as proxy:
        code, out = cli(proxy.url)
    assert proxy.injected[fault] >= 1, "the fault was injected"
    assert code == 1
    [failure] = out["failed"]
    assert failure["relpath"] == "Q00001.jpg"
    reason = failure["reason"]
    assert "\n" not in reason
    assert reason.startswith(f"could not read back the copy s3://{team}/{bad} to check its md5")
    assert "the copy was deleted; check the remote's endpoint, network and read access, then rerun" in reason
    assert (out["copied"], out["hashed"], out["present"]) == (3, 3, 0)
    others = sorted(md5_key(m) for r, m in md5s.items() if r != "Q00001.jpg")
    assert sorted(remote_keys(boto_client, team)) == others, (
        "the others are shared, the unchecked copy deleted"
    )
    assert not (repo / "data" / "q.dvc").exists()

    with CopyETagProxy(s3_endpoint, multipart) as proxy:
        code, out = cli(proxy.url)
    assert code == 0, out
    assert (out["copied"], out["hashed"], out["present"]) == (1, 1, 3)
    assert (repo / "data" / "q.dvc").is_file()
