"""The notebooks switch phase with one value: 02 (sample, pin, `dvc repro`) and 04 (errors) run with PHASE 2."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml
from test_notebooks import NOTEBOOKS, ROOT, _dvc_project

pytestmark = pytest.mark.notebook


def test_every_notebook_has_the_phase_switch_in_its_first_cell() -> None:
    for path in NOTEBOOKS:
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert 'PHASE = int(os.environ.get("ISC_KIT_PHASE", "1"))' in first.source, path.name


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nbformat.NotebookNode, Path]:
    from nbclient import NotebookClient

    project = _dvc_project(tmp_path / "project")
    for key, value in {
        "ISC_KIT_PHASE": "2",
        "ISC_KIT_DEMO_SCALE": "tiny",
        "ISC_KIT_WIDGET_CACHE": str(tmp_path / "cache"),
        "ISC_KIT_PROJECT": str(project),
        "ISC_KIT_NOTEBOOK_DATA": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(key, value)
    book = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    client = NotebookClient(
        book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
    return book, project


def _text(book: nbformat.NotebookNode) -> str:
    return "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


@pytest.mark.dvc
def test_sample_and_pin_in_phase2_writes_the_phase_and_pins_phase2_queries(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book, project = _run("02-sample-and-pin.ipynb", tmp_path, monkeypatch)
    assert "Phase 2 (final)" in _text(book)
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["phase"] == 2, "using a Phase-2 sample switches the pipeline's phase"
    pinned = (project / "manifests/query.pinned").read_text()
    assert "# set: phase2" in pinned
    ids = sorted(p.stem for p in (project / "data/query").glob("*.jpg"))
    assert ids
    assert all("Q50000" <= q <= "Q99999" for q in ids)


def test_errors_notebook_in_phase2_scores_phase2_queries_against_the_final_ground_truth(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book, _ = _run("04-errors.ipynb", tmp_path, monkeypatch)
    text = _text(book)
    assert "final_ground_truth.csv" in text
    assert "Q5000" in text
    assert "queries kept" in text
    fetched = sorted(p.stem for p in (tmp_path / "data/errors-phase2/query").glob("*.jpg"))
    assert fetched == [f"Q{n:05d}" for n in range(50_000, 50_010)]


@pytest.mark.parametrize("name", ["01-explore.ipynb", "03-pairs.ipynb"])
def test_explore_and_pairs_run_in_phase2(
    name: str, s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book, _ = _run(name, tmp_path, monkeypatch)
    text = _text(book)
    assert "Phase 2 (final)" in text
    if name == "01-explore.ipynb":
        assert "Q50000" in text
        assert "10 transferred, 0 already verified, 0 failed" in text  # Q50000..Q50009
    else:
        assert "2 pairs, 8 distractor queries of 10" in text  # the tiny final ground truth
