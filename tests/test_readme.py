"""Every code block in the README and on the docs site (docs/*.md) runs: bash blocks against the
embedded S3, Python blocks in a real kernel (one kernel per page, the blocks in order, as a reader
runs them).

Blocks are fenced ```bash or ```python. A block that cannot run here is marked on the line before its
fence with ``<!-- readme-test: skip: REASON -->``; the list is short and each reason is checked to be
there. Plain fences are output listings and command synopses, not code, and are not run.

What the harness changes, and nothing else:
- ``make demo`` runs as ``.venv/bin/isc-kit demo`` (the Makefile target after ``make setup``; the venv exists);
  ``make test`` is dropped (it is this suite).
- Port 9555 becomes a free port (five people share this machine), and after a line that starts
  ``isc-kit s3 serve ... &`` the script waits until the server listens; background jobs are killed
  when the block ends.
- Bash blocks run with ``set -euo pipefail``, so a failing command fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The pages whose blocks run: the README, then every page of the docs site.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!-- readme-test: skip: (?P<reason>.+?) -->")
RUNNABLE = ("bash", "python")
#: Python blocks that fail as written today, and why: the test exposes them instead of hiding them.
KNOWN_FAILURES: dict[str, str] = {}  # a block's code fragment -> why it cannot pass yet (keep it empty)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # of the opening fence, 1-based
    skip: str  # the marker's reason, "" when the block runs
    section: str  # the "## " heading it is under
    page: str = "README"  # the file's stem

    @property
    def id(self) -> str:
        return f"{self.page}-L{self.line}-{self.lang}"


def readme_blocks(text: str | None = None, path: Path = README) -> list[Block]:
    """The fenced blocks of a page (the README by default), with their language, line, skip marker and section."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            lang = line[3:].strip()
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            marker = MARKER.search(lines[start - 1]) if start else None
            blocks.append(
                Block(
                    lang,
                    "\n".join(body) + "\n",
                    start + 1,
                    marker["reason"] if marker else "",
                    section,
                    path.stem,
                )
            )
        i += 1
    return blocks


BLOCKS = [b for page in PAGES for b in readme_blocks(path=page)]
PYTHON = [b for b in BLOCKS if b.lang == "python" and not b.skip]
BASH = [b for b in BLOCKS if b.lang == "bash" and not b.skip]
PYTHON_PAGES = sorted({b.page for b in PYTHON})
BASH_PAGES = sorted({b.page for b in BASH} - {"README", "index"})  # those two have tests of their own


def test_the_readme_is_a_front_page_and_every_docs_page_is_in_the_site() -> None:
    import yaml

    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    listed = {next(iter(item.values())) for item in nav}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages - listed == set(), "add these pages to mkdocs.yml's nav"
    assert listed - pages == set(), "the nav names pages that are not in docs/"


def test_every_block_runs_or_says_why_not() -> None:
    assert len(PYTHON) >= 3
    assert len(BASH) >= 4
    skipped = [b for b in BLOCKS if b.skip]
    assert len(skipped) <= 4, [b.id for b in skipped]  # keep the list short
    for b in skipped:
        assert b.lang in RUNNABLE, f"{b.id}: only runnable blocks carry a skip marker"
        assert len(b.skip) > 20, f"{b.id}: say why it cannot run"
    for b in BLOCKS:
        if b.lang not in RUNNABLE:
            assert b.lang in ("", "yaml", "text"), f"{b.id}: unknown block language {b.lang!r}"
            first = b.code.lstrip().split(" ", 1)[0]
            assert first not in ("source", "jupyter", ".venv/bin/jupyter", "export", "dvc"), (
                f"{b.id}: a command in a plain block: fence it as bash so it runs"
            )


def test_the_selection_example_selects_something_on_the_demo() -> None:
    """The README's changed selection (T0001*) holds images in the demo scale, and fewer than before."""
    from isc_kit.fixture import get_scale

    training = [f"T{i:06d}" for i in range(get_scale("demo").count("training"))]
    code = next(b.code for b in BASH if "sed -i" in b.code and "T0001" in b.code)
    before, after = re.search(r"s/include: \"(\S+?)\"/include: \"(\S+?)\"/", code).groups()  # type: ignore[union-attr]
    before = before.replace("\\*", "*")
    assert (before, after) == ("T000*", "T0001*")
    narrowed = [i for i in training if i.startswith(after.rstrip("*"))]
    assert len(narrowed) == 100
    assert narrowed[0] == "T000100"
    assert narrowed[-1] == "T000199"
    assert 'include: "T000*"' in (ROOT / "params.yaml").read_text()  # what the sed edits is there


# ---------------------------------------------------------------------------------------------- python


def _kernel_run(codes: list[str], cwd: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(code) for code in codes]
    client = NotebookClient(
        book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()  # raises CellExecutionError with the traceback when a block fails
    return book


def _project_copy(path: Path) -> Path:
    """A scratch copy of the project: dvc.yaml, params.yaml, a DVC repo, and the venv linked in."""
    path.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, path / name)
    shutil.copytree(ROOT / "notebooks", path / "notebooks")
    (path / ".venv").symlink_to(ROOT / ".venv")
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or "dvc"
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=path, check=True)
    return path


@pytest.mark.notebook
@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_python_blocks_of_a_page_run_in_a_kernel(
    page: str, s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = [b for b in PYTHON if b.page == page]
    project = _project_copy(tmp_path / "project")
    monkeypatch.setenv("ISC_KIT_WIDGET_CACHE", str(tmp_path / "cache"))
    known = next((why for b in blocks for key, why in KNOWN_FAILURES.items() if key in b.code), "")
    if known:
        pytest.xfail(known)

    book = _kernel_run([b.code for b in blocks], project)  # raises CellExecutionError with the traceback
    for block, cell in zip(blocks, book.cells, strict=True):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, block.id
        if "notebook-aware progress bar" in block.code:  # the page promises it: a widget, not stderr text
            widget = "application/vnd.jupyter.widget-view+json"
            assert any(widget in o.get("data", {}) for o in cell.outputs), (block.id, cell.outputs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WAIT_FOR_PORT = (
    "for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.2; done\n"
)


def bash_script(blocks: list[Block], port: int) -> str:
    """The blocks as one shell session, as a reader types them one after the other (see the module
    docstring for every change); each block is announced on stdout and stderr so its output can be told apart."""
    out = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for block in blocks:
        out.append(f"echo '=== {block.id}'; echo '=== {block.id}' >&2")
        for line in block.code.replace("9555", str(port)).splitlines():
            command = line.split("#", 1)[0].strip()
            if command == "make test":
                continue
            if command == "make demo":
                line = line.replace("make demo", ".venv/bin/isc-kit demo", 1)
            out.append(line)
            if command.startswith("isc-kit s3 serve") and command.endswith("&"):
                out.append(WAIT_FOR_PORT.format(port=port).rstrip())
    return "\n".join(out) + "\n"


def _split(text: str, blocks: list[Block]) -> dict[str, str]:
    parts = re.split(r"^=== (\S+)\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _run_session(blocks: list[Block], cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """Run ``blocks`` in one bash session in ``cwd``; each block's stdout + stderr by block id."""
    script = bash_script(blocks, _free_port())
    run = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, (
        f"{script}\n--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}"
    )
    out, err = _split(run.stdout, blocks), _split(run.stderr, blocks)
    return {b.id: out.get(b.id, "") + err.get(b.id, "") for b in blocks}


def _bash_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISC_KIT_")}
    env["DVC_NO_ANALYTICS"] = "1"
    return env


@pytest.mark.dvc
@pytest.mark.slow
def test_readme_blocks_run_in_order_against_the_embedded_s3(tmp_path: Path) -> None:
    """The README's two commands in a scratch project (make demo; make test is this suite), then its
    tour as another session in a scratch folder."""
    project = _project_copy(tmp_path / "project")
    tour = tmp_path / "tour"
    tour.mkdir()
    (tour / ".venv").symlink_to(ROOT / ".venv")
    readme = [b for b in BASH if b.page == "README"]
    quick = [b for b in readme if b.section == ""]
    rest = [b for b in readme if b.section != ""]
    assert quick[0].code.split()[:2] == ["make", "demo"]
    outputs = _run_session(quick, project, _bash_env())
    assert "dvc status: clean" in outputs[quick[0].id]
    _run_session(rest, tour, _bash_env())
    assert len(list((tour / "data/query").glob("*.jpg"))) > 0


@pytest.mark.dvc
@pytest.mark.slow
def test_getting_started_runs_in_order_against_the_embedded_s3(tmp_path: Path) -> None:
    """docs/index.md as one shell session in a scratch project: make demo, dvc status, the changed
    selection and its dvc repro, which fetches only the changed set."""
    project = _project_copy(tmp_path / "project")
    quick = [b for b in BASH if b.page == "index"]
    assert [b.code.split()[0] for b in quick][:2] == ["make", "source"]
    outputs = _run_session(quick, project, _bash_env())
    assert "dvc status: clean" in outputs[quick[0].id]
    change = next(b for b in quick if "sed -i" in b.code)
    repro = outputs[change.id]
    assert "Running stage 'manifest@training'" in repro
    assert "Running stage 'fetch@training'" in repro
    assert "Running stage 'fetch@query'" not in repro  # only the changed set re-fetches
    assert "Running stage 'fetch@reference'" not in repro
    assert not re.search(r'"GET /[^"]*" 200', repro)  # the embedded S3 is quiet
    on_disk = sorted(p.stem for p in (project / "data/training").glob("*.jpg"))
    assert on_disk == [f"T{i:06d}" for i in range(100, 200)]


@pytest.mark.dvc
@pytest.mark.slow
@pytest.mark.parametrize("page", BASH_PAGES)
def test_bash_blocks_of_a_docs_page_run_in_order(page: str, tmp_path: Path) -> None:
    """A docs page's bash blocks as one shell session in a scratch project, as a reader types them."""
    project = _project_copy(tmp_path / "project")
    _run_session([b for b in BASH if b.page == page], project, _bash_env())
