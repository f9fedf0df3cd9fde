"""Integrity on the one core: aliases, nested destinations, live part files, read-only trees, empty prunes,
symlinks at final names, one file under two entries. Each case is a promise of the README's Guarantees table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, expected_md5s, md5, recorded, tree_md5s

from isc_kit.cli.main import main
from isc_kit.errors import DestinationError, EmptySelectionError, InputFileError
from isc_kit.local import Destination
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.pin import plan_pin
from isc_kit.pinned import load_pinned, write_pinned
from isc_kit.transfer import fetch
from isc_kit.verify import verify


@pytest.fixture
def ref_manifest(tiny_root: Path) -> Manifest:
    return read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference")


@pytest.fixture
def query_manifest(tiny_root: Path) -> Manifest:
    return read_metadata(tiny_root / "metadata" / "query_images_metadata.csv", "query")


def test_a_symlinked_alias_of_a_busy_destination_is_refused(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    real = tmp_path / "real" / "ref"
    real.mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    with (
        Destination(real).lock(what="test"),
        pytest.raises(DestinationError, match="being written by another"),
    ):
        fetch(ref_manifest.take(range(2)), tmp_path / "alias" / "ref")
    assert list(real.iterdir()) == []


def test_prune_never_crosses_into_a_nested_destination(
    s3_env: str, ref_manifest: Manifest, query_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    outer, inner = tmp_path / "a", tmp_path / "a" / "b"
    assert fetch(query_manifest.take(range(3)), inner).ok
    inner_files = tree_md5s(inner)
    inner_record = Destination(inner).record_path
    assert inner_record.is_relative_to(outer)  # a/.isc-kit/b.verified: inside the outer folder
    result = fetch(ref_manifest.take(range(2)), outer, prune=True)
    assert result.ok
    assert result.pruned == 0
    assert tree_md5s(inner) == inner_files  # the nested destination's images survive
    assert inner_record.exists()
    assert Destination(inner).lock_path.exists()
    assert verify(ref_manifest.take(range(2)), outer).extra == []


def test_part_files_of_a_live_pid_are_removed_under_the_lock(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    dest.mkdir()
    # pid 1 is alive in any container: a leftover of a run whose pid was reused
    stale = dest / ".R000000.jpg.isc-part-1-abcd1234"
    stale.write_bytes(b"half")
    assert fetch(ref_manifest.take(range(2)), dest).ok
    assert not stale.exists()
    assert sorted(p.name for p in dest.iterdir()) == ["R000000.jpg", "R000001.jpg"]


def test_verify_of_a_read_only_tree_checks_and_exits_0(
    s3_env: str, pinned: Path, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ref"
    shutil.copytree(tiny_root / PREFIX, dest)  # written by another tool: nothing recorded
    (tmp_path / ".isc-kit").write_text("not a folder")  # the record cannot be written, even as root
    assert main(["verify", str(pinned), str(dest), "--json"]) == 0
    captured = capsys.readouterr()
    assert '"ok": true' in captured.out
    assert "cannot record verified files" in captured.err
    assert captured.err.count("cannot record") == 1


def test_verify_while_a_fetch_appends_loses_no_record_line(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    assert fetch(ref_manifest, dest).ok
    before = recorded(dest)
    with Destination(dest).record_writer() as writer:  # a fetch in progress holds the record open
        writer.add("R999999.jpg", 1, 1, "0" * 32)
        report = verify(ref_manifest, dest)  # would compact the record; must not while a writer appends
        writer.add("R999998.jpg", 1, 1, "1" * 32)
    assert report.ok
    after = recorded(dest)
    assert {"R999999.jpg", "R999998.jpg"} <= set(after)
    assert set(before) <= set(after)


def test_an_empty_manifest_never_prunes_a_folder_unless_allowed(
    s3_env: str, ref_manifest: Manifest, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    assert fetch(ref_manifest, dest).ok
    empty = ref_manifest.take([])
    with pytest.raises(EmptySelectionError, match="would delete all 40 files"):
        fetch(empty, dest, prune=True)
    assert tree_md5s(dest) == expected_md5s(tiny_root)
    assert fetch(empty, dest, prune=True, allow_empty=True).pruned == 40


def test_prune_dry_run_names_the_files_that_would_go(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "ref"
    assert fetch(ref_manifest, dest).ok
    pinned = tmp_path / "two.pinned"
    write_pinned(ref_manifest.take([0, 1]), pinned)
    assert main(["fetch", str(pinned), str(dest), "--prune", "--dry-run", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"R000002.jpg"' in out
    assert '"R000039.jpg"' in out
    assert len(list(dest.iterdir())) == 40  # a dry run deletes nothing


def test_pin_refuses_a_symlink_at_a_final_name_and_touches_nothing_outside(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    dest, small = _fetched_in_a_repo(ref_manifest, tmp_path, 3)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((dest / "R000001.jpg").read_bytes())
    mode = outside.stat().st_mode
    (dest / "R000001.jpg").unlink()
    (dest / "R000001.jpg").symlink_to(outside)
    plan = plan_pin(small, dest)
    assert plan.others == ["R000001.jpg"]
    with pytest.raises(InputFileError, match="not a regular file"):
        plan.raise_if_blocked()
    assert outside.stat().st_mode == mode
    assert outside.stat().st_nlink == 1


def _pinned_text(rows: list[str]) -> bytes:
    import hashlib

    body = "".join(r + "\n" for r in rows).encode()
    head = (
        "# isc-kit pinned manifest v1\n# set: reference\n# bucket: drivendata-competition-fb-isc-data\n"
        "# prefix: all/reference_images/\n# selection: all\n"
        f"# fingerprint: sha256:{hashlib.sha256(body).hexdigest()}\nimage_id,relpath,md5,size\n"
    )
    return head.encode() + body


def test_one_file_under_two_ids_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.pinned"
    path.write_bytes(_pinned_text([f"R000000,R000001.jpg,{'a' * 32},", f"R000001,R000001.jpg,{'b' * 32},"]))
    with pytest.raises(InputFileError, match="duplicate relpath"):
        load_pinned(path)
    path.write_bytes(_pinned_text([f"R000000,x/same.jpg,{'a' * 32},", f"R000001,x/same.jpg,{'b' * 32},"]))
    with pytest.raises(InputFileError, match=r"line 9.*duplicate relpath"):
        load_pinned(path)


def test_cli_fetch_of_a_pinned_file_never_imports_pandas(pinned: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from isc_kit.cli.main import main; "
        f"main(['-q', 'fetch', {str(pinned)!r}, {str(tmp_path / 'q')!r}, '--dry-run']); "
        f"main(['-q', 'verify', {str(pinned)!r}, {str(tmp_path / 'q')!r}]); "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'fsspec') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["fetch", "ls", "verify-repair"])
def test_an_unreachable_endpoint_is_one_line_naming_it_and_the_next_step(
    command: str,
    pinned: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", endpoint)
    argv = {
        "fetch": ["fetch", str(pinned), str(tmp_path / "ref"), "--no-progress"],
        "ls": [
            "ls",
            "reference",
            "--metadata",
            "s3://drivendata-competition-fb-isc-data/metadata/reference_images_metadata.csv",
        ],
        "verify-repair": ["verify", str(pinned), str(tmp_path / "ref"), "--repair", "--no-progress"],
    }[command]
    assert main(argv) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 or command == "verify-repair"
    assert f"cannot reach S3 at {endpoint}" in err[-1]
    assert "isc-kit s3 serve" in err[-1]
    assert "internal error" not in "\n".join(err)
    assert not (tmp_path / "ref").exists() or not any((tmp_path / "ref").iterdir())


def _cache_object(repo: Path, md5_hex: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5_hex[:2] / md5_hex[2:]


def _fetched_in_a_repo(manifest: Manifest, root: Path, n: int) -> tuple[Path, Manifest]:
    """The first ``n`` entries fetched (and verified) into ``root/ref``, inside a DVC repository at ``root``."""
    (root / ".dvc").mkdir()
    dest, small = root / "ref", manifest.take(range(n))
    assert fetch(small, dest).ok
    return dest, small


def test_an_in_place_write_to_a_pinned_image_is_healed_in_the_cache_by_repair(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    from isc_kit.pin import pin
    from isc_kit.transfer import repair

    dest, small = _fetched_in_a_repo(ref_manifest, tmp_path, 3)
    pin(small, dest)
    image, want = dest / small.relpaths[1], small.md5s[1]
    obj = _cache_object(tmp_path, want)
    assert os.path.samefile(image, obj)  # hard-linked: the workspace file is the cache object
    with open(image, "r+b") as fh:  # bit rot, an editor, any root process: 0444 does not stop root
        fh.write(b"\x00\x00\x00\x00")
    assert md5(obj.read_bytes()) != want  # the cache object changed with it
    report = verify(small, dest)
    assert report.corrupt == [small.relpaths[1]]
    assert repair(small, dest, report=report).ok
    assert md5(image.read_bytes()) == want
    assert md5(obj.read_bytes()) == want  # healed: never pushed as the right md5 with wrong bytes


def test_pin_replaces_a_cache_object_it_cannot_vouch_for(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path
) -> None:
    from isc_kit.pin import pin

    dest, small = _fetched_in_a_repo(ref_manifest, tmp_path, 2)
    obj = _cache_object(tmp_path, small.md5s[0])
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"not the image")  # a damaged object under the right name
    result = pin(small, dest)
    assert md5(obj.read_bytes()) == small.md5s[0]
    assert (result.linked, result.already_cached) == (2, 0)


def test_pin_by_copy_shares_no_inode(s3_env: str, ref_manifest: Manifest, tmp_path: Path) -> None:
    from isc_kit.pin import pin

    dest, small = _fetched_in_a_repo(ref_manifest, tmp_path, 2)
    pin(small, dest, link="copy")
    for row in range(2):
        obj = _cache_object(tmp_path, small.md5s[row])
        assert not os.path.samefile(dest / small.relpaths[row], obj)
        assert md5(obj.read_bytes()) == small.md5s[row]
        assert oct(obj.stat().st_mode & 0o777) == "0o444"


def test_switching_a_selection_back_takes_the_images_from_the_local_dvc_cache(
    s3_env: str, ref_manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from isc_kit.pin import pin

    (tmp_path / ".dvc").mkdir()
    dest = tmp_path / "ref"
    first = ref_manifest.take(range(10))
    assert fetch(first, dest).ok
    pin(first, dest, link="copy")  # the cache holds the 10 objects, as after `dvc commit`
    bad = Path(tmp_path / ".dvc" / "cache" / "files" / "md5" / first.md5s[9][:2] / first.md5s[9][2:])
    bad.chmod(0o644)
    bad.write_bytes(b"damaged")  # a damaged object is never taken: it comes from the network
    other = ref_manifest.take(range(10, 20))
    assert fetch(other, dest, prune=True).pruned == 10
    back = fetch(first, dest, prune=True)
    assert back.ok
    assert (back.from_cache, back.transferred, back.pruned) == (9, 1, 10)
    assert tree_md5s(dest) == {first.relpaths[r]: first.md5s[r] for r in range(10)}
    assert set(recorded(dest)) >= set(first.relpaths)
