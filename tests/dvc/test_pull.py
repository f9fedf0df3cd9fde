"""`isc-kit pull`: two clones of one repo and a team remote (embedded S3, or a folder); same result as `dvc pull`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_pin import DVC, FILES, make_repo, manifest_of, record_all, run, write_tree

pytestmark = pytest.mark.dvc

# nested folders, a space, non-ASCII, a duplicate body (one object, two files)
TREE = {
    **{f"img/{i:03d}.jpg": f"image {i} ".encode() * (i + 1) for i in range(40)},
    "a b/é.txt": b"non-ascii name",
    "a b/copy.jpg": b"image 3 " * 4,
    "top.txt": b"top level",
}

#: Runs `dvc status` in a real DVC process and prints how many files its hashing step read.
COUNT_HASHES = """
import sys
import dvc_data.hashfile.build as build
seen = [0]
real = build._hash_files
def counting(small, large, *args, **kwargs):
    seen[0] += len(small) + len(large)
    return real(small, large, *args, **kwargs)
build._hash_files = counting
from dvc.cli import main
rc = main(["status", "--quiet"])
print("HASHED", seen[0])
sys.exit(rc)
"""


def env_for(endpoint: str = "") -> dict[str, str]:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    env.pop("ISC_KIT_ENDPOINT_URL", None)
    return env


def isc(args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isc_kit", *args], cwd=cwd, env=env_for(), capture_output=True, text=True, **kw
    )  # type: ignore[call-overload]


def origin_with_remote(
    tmp_path: Path, url: str, endpoint: str | None = None, tree: dict[str, bytes] = TREE
) -> Path:
    """A repo tracking ``data`` (dvc add), pushed to ``url`` with `dvc push`, committed."""
    repo = make_repo(tmp_path / "origin")
    write_tree(repo / "data", tree)
    run([DVC, "add", "-q", "data"], repo)
    run([DVC, "remote", "add", "-d", "team", url], repo)
    if endpoint:
        run([DVC, "remote", "modify", "team", "endpointurl", endpoint], repo)
    subprocess.run([DVC, "push", "-q"], cwd=repo, env=env_for(), check=True, capture_output=True)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "data"], repo)
    return repo


def clone(origin: Path, path: Path, cache_type: str | None = None) -> Path:
    run(["git", "clone", "-q", str(origin), str(path)], origin.parent)
    if cache_type:
        run([DVC, "config", "--local", "cache.type", cache_type], path)
    return path


def snapshot(repo: Path) -> dict[str, object]:
    """Workspace and cache as DVC leaves them: bytes, modes, and how each workspace file relates to the cache."""
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    objects = {}
    for p in sorted(cache.rglob("*")):
        if p.is_file():
            objects[str(p.relative_to(cache))] = (p.read_bytes(), oct(p.stat().st_mode & 0o777))
    work = {}
    for p in sorted((repo / "data").rglob("*")):
        if p.is_dir():
            continue
        st = p.lstat()
        obj = (
            cache / hashlib.md5(p.read_bytes()).hexdigest()[:2] / hashlib.md5(p.read_bytes()).hexdigest()[2:]
        )
        link = "symlink" if p.is_symlink() else "hardlink" if st.st_ino == obj.stat().st_ino else "copy"
        mode = oct(p.stat().st_mode & 0o777) if link != "symlink" else "link"
        work[str(p.relative_to(repo))] = (p.read_bytes(), link, mode)
    return {"objects": objects, "workspace": work}


def hashes_in_status(repo: Path) -> int:
    """Files DVC hashed during `dvc status` (which must also report the workspace clean)."""
    proc = subprocess.run(
        [sys.executable, "-c", COUNT_HASHES], cwd=repo, env=env_for(), capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc status not clean: {proc.stdout} {proc.stderr}"
    return int(proc.stdout.split("HASHED")[-1])


def state_md5s(repo: Path) -> dict[str, str]:
    """What DVC's state database holds for every workspace file, read through DVC's API."""
    from dvc.repo import Repo

    from isc_kit.dvcstate import known_md5s

    paths = [str(p) for p in sorted((repo / "data").rglob("*")) if not p.is_dir()]
    r = Repo(str(repo))
    try:
        return {os.path.relpath(p, repo): m for p, m in known_md5s(r.state, paths).items()}
    finally:
        r.close()


def expected_md5s(tree: dict[str, bytes] = TREE) -> dict[str, str]:
    return {f"data/{rel}": hashlib.md5(body).hexdigest() for rel, body in tree.items()}


@pytest.fixture
def s3_origin(tmp_path: Path, s3_endpoint: str, make_bucket) -> tuple[Path, str]:
    bucket = make_bucket({})
    return origin_with_remote(tmp_path, f"s3://{bucket}/store", s3_endpoint), bucket


def test_pull_from_s3_matches_dvc_pull(tmp_path: Path, s3_origin: tuple[Path, str]) -> None:
    origin, _bucket = s3_origin
    ours, theirs = clone(origin, tmp_path / "ours"), clone(origin, tmp_path / "theirs")
    proc = isc(["pull", "--json"], ours)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"]
    assert out["files"] == len(TREE)
    assert out["placed"] == len(TREE)
    assert out["fetched"] == len(set(TREE.values())), "the duplicate body is fetched once"
    subprocess.run([DVC, "pull", "-q"], cwd=theirs, env=env_for(), check=True, capture_output=True)
    assert snapshot(ours) == snapshot(theirs)
    assert sorted(p.name for p in (ours / ".dvc" / "cache" / "files").iterdir()) == ["md5"]

    assert state_md5s(ours) == expected_md5s(), "DVC's state knows every file isc-kit placed"
    assert hashes_in_status(ours) == 0, "the first dvc status re-hashed files"
    assert run([DVC, "checkout"], ours).stdout.strip() == "", "dvc checkout has nothing to do"
    again = json.loads(isc(["pull", "--json"], ours).stdout)
    assert (again["fetched"], again["placed"], again["unchanged"]) == (0, 0, len(TREE))

    (ours / "data" / "top.txt").write_bytes(b"top level")  # same bytes, new mtime: the counter can see a hash
    assert hashes_in_status(ours) == 1


def test_corrupt_object_refused_rest_arrive(tmp_path: Path, s3_origin: tuple[Path, str], boto_client) -> None:
    origin, bucket = s3_origin
    md5 = hashlib.md5(TREE["img/007.jpg"]).hexdigest()
    key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
    boto_client.put_object(Bucket=bucket, Key=key, Body=b"not the bytes the .dir names")
    ours = clone(origin, tmp_path / "ours")
    proc = isc(["pull", "--json"], ours)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert [f["object"] for f in out["failed"]] == [key]
    assert md5 in out["failed"][0]["reason"]
    assert "mismatch" in out["failed"][0]["reason"].lower()
    assert f"FAILED {key}" in proc.stderr
    assert not (ours / "data" / "img" / "007.jpg").exists(), "a wrong object is never placed"
    assert not (ours / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()
    got = {k: v for k, v in expected_md5s().items() if k != "data/img/007.jpg"}
    assert {k: hashlib.md5((ours / k).read_bytes()).hexdigest() for k in got} == got


def test_kill_9_then_rerun_completes(tmp_path: Path, s3_endpoint: str, make_bucket) -> None:
    tree = {f"many/{i:04d}.bin": f"object {i}".encode() * 50 for i in range(1500)}
    origin = origin_with_remote(tmp_path, f"s3://{make_bucket({})}/store", s3_endpoint, tree)
    ours = clone(origin, tmp_path / "ours")
    cache = ours / ".dvc" / "cache" / "files" / "md5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "isc_kit", "pull", "--jobs", "2", "--no-progress"],
        cwd=ours, env=env_for(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while sum(1 for _ in cache.rglob("*")) < 400 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the pull finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list((ours / "data").rglob("*.bin"))) < len(tree)
    again = isc(["pull", "--json"], ours)
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert 0 < out["fetched"] < len(tree), "the rerun fetched only what the killed run had not"
    want = expected_md5s(tree)
    assert {k: hashlib.md5((ours / k).read_bytes()).hexdigest() for k in want} == want
    assert list(ours.rglob("*isc-part-*")) == []
    assert all((p.stat().st_mode & 0o777) == 0o444 for p in cache.rglob("*") if p.is_file())
    assert hashes_in_status(ours) == 0


@pytest.mark.parametrize("cache_type", [None, "hardlink", "symlink", "reflink,hardlink,copy"])
def test_folder_remote_matches_dvc_pull(tmp_path: Path, cache_type: str | None) -> None:
    origin = origin_with_remote(tmp_path, str(tmp_path / "remote-folder"))
    ours = clone(origin, tmp_path / "ours", cache_type)
    theirs = clone(origin, tmp_path / "theirs", cache_type)
    proc = isc(["pull", "--json"], ours)
    assert proc.returncode == 0, proc.stderr
    subprocess.run([DVC, "pull", "-q"], cwd=theirs, env=env_for(), check=True, capture_output=True)
    assert snapshot(ours) == snapshot(theirs)
    assert hashes_in_status(ours) == 0
    assert run([DVC, "checkout"], ours).stdout.strip() == ""


def test_missing_object_reported_with_hint(tmp_path: Path) -> None:
    origin = origin_with_remote(tmp_path, str(tmp_path / "remote-folder"))
    md5 = hashlib.md5(TREE["top.txt"]).hexdigest()
    (tmp_path / "remote-folder" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    ours = clone(origin, tmp_path / "ours")
    proc = isc(["pull", "--json"], ours)
    assert proc.returncode == 1
    failed = json.loads(proc.stdout)["failed"]
    assert len(failed) == 1
    assert "not in the remote" in failed[0]["reason"]
    assert not (ours / "data" / "top.txt").exists()
    assert (ours / "data" / "img" / "000.jpg").exists()


def test_modified_file_left_alone_unless_forced(tmp_path: Path) -> None:
    origin = origin_with_remote(tmp_path, str(tmp_path / "remote-folder"))
    ours = clone(origin, tmp_path / "ours")
    (ours / "data" / "a b").mkdir(parents=True)
    (ours / "data" / "a b" / "é.txt").write_bytes(b"my local edit")
    proc = isc(["pull", "--json"], ours)
    assert proc.returncode == 1
    assert "MODIFIED" in proc.stderr
    assert (ours / "data" / "a b" / "é.txt").read_bytes() == b"my local edit"
    assert isc(["pull", "--force"], ours).returncode == 0
    assert (ours / "data" / "a b" / "é.txt").read_bytes() == TREE["a b/é.txt"]


def test_pin_records_dvc_state(tmp_path: Path) -> None:
    """After `isc-kit pin`, DVC's first status reads no file: the state holds what the fetch verified."""
    from isc_kit.pin import pin

    repo = make_repo(tmp_path / "r")
    write_tree(repo / "imgs", FILES)
    record_all(repo / "imgs", FILES)
    pin(manifest_of(FILES), repo / "imgs")
    proc = subprocess.run(
        [sys.executable, "-c", COUNT_HASHES], cwd=repo, env=env_for(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split("HASHED")[-1]) == 0


def test_not_a_dvc_repo_one_line(tmp_path: Path) -> None:
    proc = isc(["pull"], tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "dvc init" in proc.stderr


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
def test_sigv4_headers_equal_botocores(token: str | None) -> None:
    """The lean signed getter's Authorization equals botocore's S3 SigV4 for the same request and instant."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials as BotoCredentials

    from isc_kit._s3sign import Credentials, sign_get

    host, path = (
        "team-bucket.s3.eu-west-1.amazonaws.com",
        "/store/files/md5/ab/cdef0123456789abcdef0123456789",
    )
    request = AWSRequest(method="GET", url=f"https://{host}{path}")
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(
        BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), "s3", "eu-west-1"
    ).add_auth(request)
    ours = dict(
        sign_get(
            Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
            "eu-west-1",
            host,
            path,
            request.headers["X-Amz-Date"],
        )
    )
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"


def test_pipeline_outs_and_targets(tmp_path: Path) -> None:
    """Outputs of dvc.lock are pulled like .dvc-tracked ones; a TARGET limits the pull to its output."""
    origin = make_repo(tmp_path / "origin")
    write_tree(origin / "data", {"x.txt": b"tracked by data.dvc"})
    run([DVC, "add", "-q", "data"], origin)
    run(
        [
            DVC,
            "stage",
            "add",
            "-q",
            "-n",
            "make",
            "-o",
            "made",
            "mkdir -p made/sub && echo built > made/sub/out.txt",
        ],
        origin,
    )
    run([DVC, "repro", "-q"], origin)
    run([DVC, "remote", "add", "-d", "team", str(tmp_path / "remote-folder")], origin)
    run([DVC, "push", "-q"], origin)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-qm", "pipeline"], origin)
    ours = clone(origin, tmp_path / "ours")
    proc = isc(["pull", "made", "--json"], ours)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outs"] == 1
    assert (ours / "made" / "sub" / "out.txt").read_text() == "built\n"
    assert not (ours / "data").exists(), "a target pulls only its output"
    assert isc(["pull", "data.dvc"], ours).returncode == 0
    assert (ours / "data" / "x.txt").read_bytes() == b"tracked by data.dvc"
    assert hashes_in_status(ours) == 0
    bad = isc(["pull", "nowhere"], ours)
    assert bad.returncode != 0
    assert "no DVC-tracked output" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("kind", ["s3", "folder"])
def test_push_then_dvc_pull_in_a_fresh_clone(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """`isc-kit push` sends what the remote lacks (Content-MD5 checked by S3); `dvc pull` elsewhere gets it."""
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        url, extra = f"s3://{request.getfixturevalue('make_bucket')({})}/store", endpoint
    else:
        url, extra = str(tmp_path / "remote-folder"), None
    origin = make_repo(tmp_path / "origin")
    write_tree(origin / "data", TREE)
    run([DVC, "add", "-q", "data"], origin)
    run([DVC, "remote", "add", "-d", "team", url], origin)
    if extra:
        run([DVC, "remote", "modify", "team", "endpointurl", extra], origin)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-qm", "data"], origin)
    proc = isc(["push", "--json"], origin)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["uploaded"] == len(set(TREE.values())) + 1, "every object once, and the .dir"
    again = json.loads(isc(["push", "--json"], origin).stdout)
    assert (again["uploaded"], again["present"]) == (0, out["uploaded"])
    theirs = clone(origin, tmp_path / "theirs")
    subprocess.run([DVC, "pull", "-q"], cwd=theirs, env=env_for(), check=True, capture_output=True)
    got = {k: hashlib.md5((theirs / k).read_bytes()).hexdigest() for k in expected_md5s()}
    assert got == expected_md5s()


def test_push_refuses_a_damaged_cache_object(
    tmp_path: Path, s3_endpoint: str, make_bucket, boto_client
) -> None:
    """A cache file that is not its name's bytes is not uploaded, and the .dir is held back."""
    bucket = make_bucket({})
    origin = make_repo(tmp_path / "origin")
    write_tree(origin / "data", TREE)
    run([DVC, "add", "-q", "data"], origin)
    run([DVC, "remote", "add", "-d", "team", f"s3://{bucket}/store"], origin)
    run([DVC, "remote", "modify", "team", "endpointurl", s3_endpoint], origin)
    md5 = hashlib.md5(TREE["top.txt"]).hexdigest()
    obj = origin / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"bit rot")
    proc = isc(["push", "--json"], origin)
    assert proc.returncode == 1
    failed = json.loads(proc.stdout)["failed"]
    key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
    assert any(f["object"] == key and "not uploaded" in f["reason"] for f in failed), failed
    keys = {o["Key"] for o in boto_client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert key not in keys
    assert not any(k.endswith(".dir") for k in keys), "no listing whose files are not all there"


def test_listing_reader_matches_json() -> None:
    """The compact .dir reader gives what json.loads gives: escapes, non-ASCII, and non-canonical JSON."""
    from isc_kit.dvc_checkout import iter_listing
    from isc_kit.dvcfiles import tree_bytes

    names = ["plain.jpg", 'quote".jpg', "back\\slash.jpg", "é/ü.jpg", "tab\t.jpg", "a b/c.jpg"]
    entries = [(n, hashlib.md5(n.encode()).hexdigest()) for n in names]
    canonical = tree_bytes(entries)
    want = [(e["relpath"], e["md5"]) for e in json.loads(canonical)]
    assert list(iter_listing(canonical)) == want
    other = json.dumps([{"relpath": r, "md5": m} for r, m in want], separators=(",", ":")).encode()
    assert list(iter_listing(other)) == want


def test_record_tree_spares_dvc_add_the_hashing(tmp_path: Path) -> None:
    """After a fetch's verified record is handed to DVC's state (record_tree), `dvc add` hashes nothing."""
    from isc_kit.dvcstate import record_tree

    repo = make_repo(tmp_path / "r")
    write_tree(repo / "imgs", FILES)
    record_all(repo / "imgs", FILES)
    (repo / "imgs" / "Zebra.jpg").write_bytes(b"changed after it was verified")  # must not be recorded
    assert record_tree(repo / "imgs") == len(FILES) - 1
    assert record_tree(tmp_path) == 0, "outside a DVC repository nothing is recorded"
    script = COUNT_HASHES.replace('main(["status", "--quiet"])', 'main(["add", "-q", "imgs"])')
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, env=env_for(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split("HASHED")[-1]) == 1, "only the file changed since its verification"


def test_from_source_fills_what_the_remote_lacks(
    tmp_path: Path, s3_endpoint: str, pinned: Path, tiny_root: Path
) -> None:
    """--from-source PINNED: objects missing from the team remote come from the public bucket, MD5-checked."""
    from isc_kit.pinned import load_pinned

    table = load_pinned(pinned).table.head(6)
    tree = {rel: (tiny_root / "all" / "reference_images" / rel).read_bytes() for rel in table["relpath"]}
    origin = origin_with_remote(tmp_path, str(tmp_path / "remote-folder"), tree=tree)
    lost = [hashlib.md5(tree[rel]).hexdigest() for rel in list(tree)[:2]]
    for md5 in lost:
        (tmp_path / "remote-folder" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    ours = clone(origin, tmp_path / "ours")
    env = {**env_for(), "ISC_KIT_ENDPOINT_URL": s3_endpoint}
    proc = subprocess.run(
        [sys.executable, "-m", "isc_kit", "pull", "--json", "--from-source", str(pinned)],
        cwd=ours, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["failed"] == []
    assert out["placed"] == len(tree)
    assert {
        k: hashlib.md5((ours / k).read_bytes()).hexdigest() for k in expected_md5s(tree)
    } == expected_md5s(tree)
    assert hashes_in_status(ours) == 0


def test_a_fetch_inside_a_dvc_repo_tells_dvc_what_it_verified(
    tmp_path: Path, s3_endpoint: str, pinned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fetch -> DVC's state holds each fetched file's md5, so the first `dvc add`/`status` reads nothing."""
    from isc_kit.pinned import load_pinned
    from isc_kit.transfer import fetch

    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", s3_endpoint)
    repo = make_repo(tmp_path / "r")
    small = load_pinned(pinned).take(range(4))
    assert fetch(small, repo / "data" / "ref").ok
    known = state_md5s(repo)
    assert {rel: known.get(f"data/ref/{rel}") for rel in small.relpaths} == dict(
        zip(small.relpaths, small.md5s, strict=True)
    )
