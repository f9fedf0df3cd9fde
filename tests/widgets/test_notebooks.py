"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel against the embedded S3."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_there_are_notebooks_and_they_are_saved_without_outputs():
    assert [p.stem for p in NOTEBOOKS][:3] == ["01-explore", "02-sample-and-pin", "03-pairs"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), path.name
        assert "ensure_embedded_s3(SCALE)" in code[0].source, (
            f"{path.name}: the first cell must start (or reuse) the embedded S3"
        )
        assert not any(".stop()" in c.source for c in code), (
            f"{path.name}: the server lives as long as the kernel"
        )
        assert "real" in code[0].source.lower(), (
            f"{path.name}: the first cell must say how to use the real bucket"
        )


def _dvc_project(path: Path) -> Path:
    """A scratch copy of the project's pipeline (dvc.yaml, params.yaml) in a fresh DVC repo."""
    path.mkdir()
    shutil.copy(ROOT / "dvc.yaml", path / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sets"] = {k: v for k, v in params["sets"].items() if k in ("query", "reference")}  # faster repro
    params["augment"]["sets"] = []  # no training set: no augment stage
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or "dvc"
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=path, check=True)
    return path


@pytest.mark.notebook
@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=[pytest.mark.dvc] if "dvc repro" in p.read_text() else []) for p in NOTEBOOKS],
    ids=lambda p: p.stem,
)
def test_notebook_runs_top_to_bottom(
    path: Path, s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from nbclient import NotebookClient

    project = _dvc_project(tmp_path / "project")
    monkeypatch.setenv("ISC_KIT_DEMO_SCALE", "tiny")
    monkeypatch.setenv("ISC_KIT_WIDGET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ISC_KIT_PROJECT", str(project))
    monkeypatch.setenv("ISC_KIT_NOTEBOOK_DATA", str(tmp_path / "data"))
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert f"S3 endpoint: {s3_env}" in text  # it used the session's server, not a new one
    widget_outputs = [
        o for c in book.cells if c.cell_type == "code" for o in c.outputs if WIDGET_MIME in o.get("data", {})
    ]
    assert widget_outputs, "no widget was displayed"
    if path.stem == "01-explore":
        fetch_cell = next(c for c in book.cells if "result = fetch(" in c.source)
        assert any(WIDGET_MIME in o.get("data", {}) for o in fetch_cell.outputs), (
            "fetch showed no notebook bar"
        )
        streams = "".join(o.get("text", "") for o in fetch_cell.outputs if o.output_type == "stream")
        assert "\x1b[" not in streams
        assert "\r" not in streams
        assert "10 transferred, 0 already verified, 0 failed" in streams  # Q00000..Q00009
        verify_cell = next(c for c in book.cells if "report = verify(" in c.source)
        assert any(WIDGET_MIME in o.get("data", {}) for o in verify_cell.outputs), (
            "verify showed no notebook bar"
        )
        assert "10 verified, 0 missing, 0 corrupt" in "".join(o.get("text", "") for o in verify_cell.outputs)
    if path.stem == "02-sample-and-pin":
        params = yaml.safe_load((project / "params.yaml").read_text())
        for name in ("query", "reference"):
            entry = params["sets"][name]
            assert set(entry) == {"metadata", "id_file"}
            listed = [
                x for x in (project / entry["id_file"]).read_text().splitlines() if not x.startswith("#")
            ]
            pinned = (project / f"manifests/{name}.pinned").read_text().splitlines()
            assert [row.split(",")[0] for row in pinned if row[:1] in "QR" and "," in row] == listed
            assert sorted(p.stem for p in (project / "data" / name).glob("*.jpg")) == listed
        assert (project / "dvc.lock").is_file()


ACCESS_LINE = re.compile(r'\d+\.\d+\.\d+\.\d+ - - \[.*\] "(GET|PUT|HEAD|POST)')


@pytest.mark.notebook
def test_run_all_twice_in_one_kernel_with_its_own_quiet_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """01-explore without a server exported: it starts its own; a second Run All in the same kernel works
    after the server died, and no cell shows an error or a request-log line."""
    from nbclient import NotebookClient

    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", "")
    monkeypatch.delenv("ISC_KIT_ENDPOINT_URL")
    monkeypatch.setenv("ISC_KIT_DEMO_SCALE", "tiny")
    monkeypatch.setenv("ISC_KIT_WIDGET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ISC_KIT_NOTEBOOK_DATA", str(tmp_path / "data"))
    book = nbformat.read(ROOT / "notebooks/01-explore.ipynb", as_version=4)
    client = NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    endpoints = []
    with client.setup_kernel():
        for run in range(2):
            for index, cell in enumerate(book.cells):
                if cell.cell_type == "code":
                    cell.outputs = []
                    client.execute_cell(cell, index)
            outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
            assert not [o for o in outputs if o.output_type == "error"]
            stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
            assert not ACCESS_LINE.search(stderr), stderr[:500]
            endpoints.append(
                next(o["text"] for o in book.cells[1].outputs if "S3 endpoint:" in o.get("text", ""))
            )
            if run == 0:  # kill the server under the kernel, as a stopped server would be
                kill = nbformat.v4.new_code_cell("import isc_kit.s3server as s; s._shared.stop()")
                client.execute_cell(kill, 0)
    assert endpoints[0] == endpoints[1]  # restarted on the same port
    assert endpoints[0].startswith("S3 endpoint: http://127.0.0.1:")


def test_the_git_filter_strips_what_lab_adds(tmp_path: Path):
    """scripts/nbstrip.py (git's clean filter for *.ipynb) turns a run-and-saved notebook back into the
    committed one: no outputs, counts, widget state or timings."""
    import json

    path = ROOT / "notebooks/01-explore.ipynb"
    book = json.loads(path.read_text())
    book["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    book["metadata"]["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    for cell in book["cells"]:
        cell["metadata"] = {"execution": {"iopub.status.busy": "2026-12-01T19:00:00"}, "scrolled": True}
        if cell["cell_type"] == "code":
            cell["execution_count"] = 7
            cell["outputs"] = [{"output_type": "stream", "name": "stderr", "text": ["127.0.0.1 - - [...]\n"]}]
    saved = json.dumps(book, indent=2)
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts/nbstrip.py")],
        input=saved,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "output_type" not in run.stdout
    assert run.stdout == path.read_text()  # byte for byte what git stores
    assert "*.ipynb filter=nbstrip" in (ROOT / ".gitattributes").read_text()
    assert 'filter.nbstrip.clean "python3 scripts/nbstrip.py"' in (ROOT / "Makefile").read_text()
    assert "notebooks/data/" in (ROOT / ".gitignore").read_text().splitlines()


def test_no_tracked_notebook_has_outputs():
    tracked = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked
    for name in tracked:
        blob = subprocess.run(
            ["git", "show", f":{name}"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        assert '"output_type"' not in blob.stdout, name
