"""`isc-kit pin`: the .dir/.dvc it writes are byte-identical to `dvc add`'s, and only verified files go in."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from isc_kit.errors import ChecksumMismatchError, DvcError, InputFileError
from isc_kit.local import Destination
from isc_kit.manifest import Manifest
from isc_kit.pin import dvcfile_text, pin, tree_bytes, tree_oid
from isc_kit.pinned import write_pinned

DVC = str(Path(sys.executable).with_name("dvc"))
GIT_ID = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}

# Names that exercise DVC's sort order and JSON escaping: spaces, non-ASCII, upper before lower, nesting.
FILES = {
    "Q00001.jpg": b"\xff\xd8first image\xff\xd9",
    "a b.jpg": b"space in the name",
    "Zebra.jpg": b"upper case sorts first",
    "sub/é clair.jpg": b"non-ascii, nested",
    "sub/日本.jpg": b"cjk",
    "sub-dir/x.jpg": b"'-' (0x2d) sorts before '/' (0x2f)",
    "sub/deeper/q.jpg": b"",
}


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ID, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run(["git", "init", "-q"], path)
    run([DVC, "init", "-q"], path)
    return path


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def manifest_of(files: dict[str, bytes], md5s: dict[str, str] | None = None) -> Manifest:
    """A manifest straight from a dict (relpaths the pinned format would reject are fine here)."""
    rels = sorted(files)
    table = pd.DataFrame(
        {
            "image_id": pd.array([f"Q{i:05d}" for i in range(len(rels))], dtype="string[pyarrow]"),
            "relpath": pd.array(rels, dtype="string[pyarrow]"),
            "md5": pd.array(
                [(md5s or {}).get(r, hashlib.md5(files[r]).hexdigest()) for r in rels],
                dtype="string[pyarrow]",
            ),
            "size": pd.array([len(files[r]) for r in rels], dtype="Int64"),
        }
    )
    return Manifest.from_pandas("query", "drivendata-competition-fb-isc-data", "all/query_images/", table)


def record_all(folder: Path, files: dict[str, bytes]) -> None:
    """Verified records as the fetch writes them (md5 computed here with hashlib)."""
    with Destination(folder).record_writer() as w:
        for rel, data in files.items():
            st = os.stat(folder / rel)
            w.add(rel, st.st_size, st.st_mtime_ns, hashlib.md5(data).hexdigest())


def cache_file(repo: Path, oid: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]


def test_tree_bytes_known_value() -> None:
    data = tree_bytes([("b.jpg", "0" * 32), ("a b.jpg", "1" * 32)])
    assert data == (
        b'[{"md5": "11111111111111111111111111111111", "relpath": "a b.jpg"}, '
        b'{"md5": "00000000000000000000000000000000", "relpath": "b.jpg"}]'
    )
    assert tree_oid(data) == hashlib.md5(data).hexdigest() + ".dir"
    assert (
        tree_bytes([("é", "0" * 32)])
        == b'[{"md5": "00000000000000000000000000000000", "relpath": "\\u00e9"}]'
    )


def test_dvcfile_text_shape() -> None:
    assert dvcfile_text("data", "ab" * 16 + ".dir", 8, 3) == (
        "outs:\n- md5: " + "ab" * 16 + ".dir\n  size: 8\n  nfiles: 3\n  hash: md5\n  path: data\n"
    )


@pytest.mark.dvc
@pytest.mark.parametrize("folder", ["images", "dätä x"])
def test_golden_against_dvc_add(tmp_path: Path, folder: str) -> None:
    """Same folder, two repos: `dvc add` in one, `pin` (verified records) in the other; byte-identical results."""
    ref = make_repo(tmp_path / "ref")
    ours = make_repo(tmp_path / "ours")
    write_tree(ref / folder, FILES)
    write_tree(ours / folder, FILES)
    run([DVC, "add", "-q", folder], ref)
    record_all(ours / folder, FILES)

    result = pin(manifest_of(FILES), ours / folder)

    expected_dvc = (ref / f"{folder}.dvc").read_text(encoding="utf-8")
    assert (ours / f"{folder}.dvc").read_text(encoding="utf-8") == expected_dvc
    oid = expected_dvc.split("md5: ", 1)[1].split("\n", 1)[0]
    assert result.oid == oid
    assert cache_file(ours, oid).read_bytes() == cache_file(ref, oid).read_bytes()
    assert result.nfiles == len(FILES)
    assert result.bytes == sum(map(len, FILES.values()))
    assert result.linked == len(set(FILES.values()))
    assert result.hashed == 0
    for rel, data in FILES.items():
        md5 = hashlib.md5(data).hexdigest()
        obj = cache_file(ours, md5)
        assert obj.read_bytes() == data
        assert os.path.samefile(obj, ours / folder / rel), "linked, not copied"
        assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    assert f"/{folder}" in (ours / ".gitignore").read_text(encoding="utf-8").splitlines()
    status = run([DVC, "status", "--json"], ours)
    assert json.loads(status.stdout) == {}


@pytest.mark.dvc
def test_pinned_folder_checks_out_in_fresh_workspace(tmp_path: Path) -> None:
    """After pin, deleting the folder and `dvc checkout` restores it from the cache we wrote."""
    repo = make_repo(tmp_path / "r")
    write_tree(repo / "imgs", FILES)
    record_all(repo / "imgs", FILES)
    pin(manifest_of(FILES), repo / "imgs")
    shutil.rmtree(repo / "imgs")
    run([DVC, "checkout", "-q"], repo)
    for rel, data in FILES.items():
        assert hashlib.md5((repo / "imgs" / rel).read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()


def test_refuses_unverified_files(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    write_tree(tmp_path / "imgs", FILES)
    with pytest.raises(InputFileError, match=r"no matching verified record.*isc-kit verify"):
        pin(manifest_of(FILES), tmp_path / "imgs")
    assert not (tmp_path / ".dvc" / "cache").exists(), "nothing touched"
    assert not (tmp_path / "imgs.dvc").exists()


def test_refuses_record_that_no_longer_matches(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    write_tree(tmp_path / "imgs", FILES)
    record_all(tmp_path / "imgs", FILES)
    (tmp_path / "imgs" / "a b.jpg").write_bytes(b"changed after verification")
    with pytest.raises(InputFileError, match=r"a b\.jpg"):
        pin(manifest_of(FILES), tmp_path / "imgs")


def test_hash_option_checks_against_manifest(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    write_tree(tmp_path / "imgs", FILES)
    bad = {"Zebra.jpg": "0" * 32}
    with pytest.raises(
        ChecksumMismatchError, match=r"Zebra.jpg is .*manifest says 0{32}; nothing was pinned"
    ):
        pin(manifest_of(FILES, bad), tmp_path / "imgs", hash_unverified=True)
    assert not (tmp_path / "imgs.dvc").exists()
    result = pin(manifest_of(FILES), tmp_path / "imgs", hash_unverified=True)
    assert result.nfiles == len(FILES)
    assert result.hashed == 1  # the other files were recorded as verified by the first (refused) attempt


def test_refuses_missing_and_extra(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    write_tree(tmp_path / "imgs", FILES)
    record_all(tmp_path / "imgs", FILES)
    (tmp_path / "imgs" / "stray.txt").write_text("x")
    with pytest.raises(InputFileError, match=r"not in the manifest \(value 'stray\.txt'\)"):
        pin(manifest_of(FILES), tmp_path / "imgs")
    (tmp_path / "imgs" / "stray.txt").unlink()
    (tmp_path / "imgs" / "Zebra.jpg").unlink()
    with pytest.raises(InputFileError, match=r"missing \(value 'Zebra\.jpg'\).*isc-kit fetch"):
        pin(manifest_of(FILES), tmp_path / "imgs")


def test_needs_a_dvc_repo(tmp_path: Path) -> None:
    write_tree(tmp_path / "imgs", FILES)
    with pytest.raises(DvcError, match=r"not inside a DVC repository.*dvc init"):
        pin(manifest_of(FILES), tmp_path / "imgs", hash_unverified=True)


def test_cli_pin_one_line_error(tmp_path: Path) -> None:
    """The CLI on an unverified folder: exit code 3, one error line, no traceback."""
    (tmp_path / ".dvc").mkdir()
    files = {"Q00000.jpg": b"a", "Q00001.jpg": b"b"}
    write_tree(tmp_path / "imgs", files)
    manifest = manifest_of(files)
    manifest.table["image_id"] = pd.array(["Q00000", "Q00001"], dtype="string[pyarrow]")
    write_pinned(manifest, tmp_path / "q.pinned")
    proc = subprocess.run(
        [sys.executable, "-m", "isc_kit", "pin", "q.pinned", "imgs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith("isc-kit pin: error: ")
    assert "Traceback" not in proc.stderr
    assert "--hash" in proc.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "isc_kit", "pin", "q.pinned", "imgs", "--hash", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["nfiles"] == 2
    assert out["bytes"] == 2
    listing = [{"md5": hashlib.md5(b"a").hexdigest(), "relpath": "Q00000.jpg"},
               {"md5": hashlib.md5(b"b").hexdigest(), "relpath": "Q00001.jpg"}]  # fmt: skip
    assert out["oid"] == hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def test_shards_move_flat_files_and_keep_records(tmp_path: Path) -> None:
    """25 flat files, shards of 10 ids: three folders, three .dvc files, nothing re-hashed."""
    from isc_kit.pin import pin_shards

    (tmp_path / ".dvc").mkdir()
    files = {f"Q{i:05d}.jpg": f"image {i}".encode() for i in range(25)}
    write_tree(tmp_path / "imgs", files)
    record_all(tmp_path / "imgs", files)
    manifest = manifest_of(files)
    manifest.table["image_id"] = pd.array([r[:-4] for r in sorted(files)], dtype="string[pyarrow]")
    results = pin_shards(manifest, tmp_path / "imgs", 10)
    assert [Path(r.dvcfile).name for r in results] == [
        "Q00000-Q00009.dvc",
        "Q00010-Q00019.dvc",
        "Q00020-Q00029.dvc",
    ]
    assert [r.nfiles for r in results] == [10, 10, 5]
    assert sum(r.hashed for r in results) == 0, "verified records moved along with the files"
    assert (tmp_path / "imgs" / "Q00020-Q00029" / "Q00024.jpg").read_bytes() == b"image 24"
    listing = [
        {"md5": hashlib.md5(files[f"Q{i:05d}.jpg"]).hexdigest(), "relpath": f"Q{i:05d}.jpg"}
        for i in range(20, 25)
    ]
    assert results[2].oid == hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"
