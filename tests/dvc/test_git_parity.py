"""DVC and git parity (issue 12 item 17): ``.gitignore`` entries escaped exactly as a real ``dvc add``
writes them (so git ignores folders whose names hold glob characters), the ``.isc-kit/`` bookkeeping
never shows in ``git status`` after fetch + pin, and ``.dvc`` files never carry a made-up size."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from isc_kit.cli.main import main
from isc_kit.dvcfiles import add_to_gitignore, dvcfile_text, gitignore_entry

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "DVC_NO_ANALYTICS": "1",
}
NAMES = ["q [v1]", "a*b", "what?", "!bang", "#hash", "sp ace", "back\\slash", "x]y", "plain"]


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=check)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run(["git", "init", "-q"], path)
    run([DVC, "init", "-q"], path)
    run(["git", "commit", "-qm", "init"], path)
    return path


def _untracked(repo: Path) -> list[str]:
    out = run(["git", "status", "--porcelain", "-z", "--untracked-files=all"], repo).stdout
    return sorted(entry[3:] for entry in out.split("\0") if entry)


def test_entry_escaping_known_values() -> None:
    assert gitignore_entry("q [v1]") == "/q \\[v1\\]"
    assert gitignore_entry("a\\b*?!#") == "/a\\\\b\\*\\?\\!\\#"
    assert gitignore_entry("plain name") == "/plain name"


@pytest.mark.dvc
def test_gitignore_lines_equal_dvc_add_and_git_ignores_them(tmp_path: Path) -> None:
    ref = make_repo(tmp_path / "ref")
    ours = make_repo(tmp_path / "ours")
    for repo in (ref, ours):
        for name in NAMES:
            (repo / name).mkdir()
            (repo / name / "img.jpg").write_bytes(name.encode())
    run([DVC, "add", "-q", *NAMES], ref)
    for name in NAMES:
        add_to_gitignore(ours / name)
    dvc_lines = (ref / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert sorted(dvc_lines) == sorted(gitignore_entry(n) for n in NAMES)
    assert (ours / ".gitignore").read_text(encoding="utf-8").splitlines() == [
        gitignore_entry(n) for n in NAMES
    ]
    for name in NAMES:
        assert run(["git", "check-ignore", "-q", f"{name}/img.jpg"], ours, check=False).returncode == 0, name
    assert _untracked(ours) == [".gitignore"]


def test_an_old_unescaped_line_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "q [v1]").mkdir()
    (tmp_path / ".gitignore").write_text("/other\n/q [v1]\n")
    add_to_gitignore(tmp_path / "q [v1]")
    add_to_gitignore(tmp_path / "q [v1]")  # idempotent
    assert (tmp_path / ".gitignore").read_text() == "/other\n/q \\[v1\\]\n"


def test_dvcfile_leaves_size_out_when_unknown() -> None:
    assert "size" not in dvcfile_text("data", "ab" * 16 + ".dir", None, 3)
    assert "  size: 8\n" in dvcfile_text("data", "ab" * 16 + ".dir", 8, 3)


@pytest.mark.dvc
def test_fetch_then_pin_leaves_git_status_clean_but_for_what_to_commit(
    s3_env: str, pinned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "proj")
    dest = repo / "data" / "ref [v1]"
    assert main(["-q", "fetch", str(pinned), str(dest)]) == 0
    assert (repo / "data" / ".isc-kit").is_dir()  # the fetch's records, beside the folder
    assert main(["-q", "pin", str(pinned), str(dest)]) == 0
    capsys.readouterr()
    assert _untracked(repo) == ["data/.gitignore", "data/ref [v1].dvc"]
    assert run(["git", "check-ignore", "-q", "data/ref [v1]/R000000.jpg"], repo, check=False).returncode == 0
    run(["git", "add", "-A"], repo)
    staged = run(["git", "diff", "--cached", "--name-only"], repo).stdout.split("\n")
    assert not any(".isc-kit" in p or p.endswith(".jpg") for p in staged), staged
    status = run([DVC, "status", "--json"], repo)
    assert status.stdout.strip() == "{}"


@pytest.mark.dvc
def test_share_of_unknown_sizes_writes_no_size(
    tmp_path: Path, s3_endpoint: str, make_bucket, tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from isc_kit.metadata import read_metadata
    from isc_kit.select import Selection, select
    from isc_kit.share import Remote, share

    team = make_bucket({})
    repo = make_repo(tmp_path / "a")
    full = read_metadata(tiny_root / "metadata" / "query_images_metadata.csv", "query")
    manifest = select(full, Selection(ranges=("Q00000:Q00002",)))
    assert manifest.total_bytes is None  # a publisher CSV has no sizes
    from isc_kit.source import resolve_source

    source = resolve_source(endpoint_url=s3_endpoint)
    remote = Remote(team, "store", endpoint_url=s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    result = share(manifest, repo / "data" / "query", remote, source=source, jobs=2)
    assert result.ok, result.failed
    text = (repo / "data" / "query.dvc").read_text()
    assert "size" not in text
    assert "  nfiles: 3\n" in text
    assert result.bytes is None
    expected = {
        f"Q{i:05d}.jpg": hashlib.md5(
            (tiny_root / "all/query_images" / f"Q{i:05d}.jpg").read_bytes()
        ).hexdigest()
        for i in range(3)
    }
    assert result.nfiles == len(expected)
