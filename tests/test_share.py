"""`isc-kit share`: server-side copy into a team remote on the embedded S3; a fresh clone's `dvc pull` gets the bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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
