"""notebooks/04-errors runs in a real Jupyter kernel on a project's baseline predictions (the eval stage's output)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04-errors.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.notebook


def make_project(root: Path, project: Path, *, gt_queries: int | None = None) -> Path:
    """What `dvc repro` leaves: pinned manifests, fetched folders and predictions/baseline.csv.

    All of a fixture's queries and references, or (``gt_queries``) the pipeline's ground-truth-aware
    selection: that many seeded queries, every reference they match and 100 other references.
    """
    from isc_kit.baseline import run_baseline
    from isc_kit.groundtruth import load_ground_truth
    from isc_kit.metadata import read_metadata
    from isc_kit.pinned import write_pinned
    from isc_kit.select import Selection, ground_truth_subset, select

    manifests = {
        name: read_metadata(root / f"metadata/{name}_images_metadata.csv", name)
        for name in ("query", "reference")
    }
    if gt_queries is not None:
        gt = load_ground_truth(root / "metadata/public_ground_truth.csv")
        ids = ground_truth_subset(
            gt.pairs,
            sorted(gt.queries),
            manifests["reference"].ids,
            queries=gt_queries,
            distractors=100,
            seed=0,
        )
        manifests = {
            name: select(m, Selection(ids=tuple(i)))
            for (name, m), i in zip(manifests.items(), ids, strict=True)
        }
    for name, manifest in manifests.items():
        write_pinned(manifest, project / "manifests" / f"{name}.pinned")
        (project / "data" / name).mkdir(parents=True)
        for relpath in manifest.table["relpath"]:
            shutil.copyfile(root / manifest.prefix / relpath, project / "data" / name / relpath)
    out = project / "predictions" / "baseline.csv"
    run_baseline(project / "data/query", project / "data/reference", out, top_k=10, jobs=1)
    return out


def expected_misses(predictions: Path, gt_file: Path, threshold: float) -> int:
    """Matched queries none of whose true references is predicted at or above ``threshold``, by hand."""
    with open(gt_file, newline="") as f:
        pairs = {(r["query_id"], r["reference_id"]) for r in csv.DictReader(f) if r["reference_id"]}
    with open(predictions, newline="") as f:
        found = {
            r["query_id"]
            for r in csv.DictReader(f)
            if (r["query_id"], r["reference_id"]) in pairs and float(r["score"]) >= threshold
        }
    return len({q for q, _ in pairs} - found)


def test_error_notebook_on_the_pipelines_baseline_predictions(
    s3_env: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    from isc_kit.evaluate import evaluate, load_predictions
    from isc_kit.groundtruth import load_ground_truth

    project = tmp_path / "project"
    predictions = make_project(tiny_root, project)
    gt_file = tiny_root / "metadata/public_ground_truth.csv"
    result = evaluate(load_ground_truth(gt_file), load_predictions(predictions))
    assert (
        result.threshold_at_p90 is not None
    )  # the baseline reaches P90 on the tiny set: a threshold to test
    monkeypatch.setenv("ISC_KIT_DEMO_SCALE", "tiny")
    monkeypatch.setenv("ISC_KIT_WIDGET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ISC_KIT_PROJECT", str(project))
    monkeypatch.setenv("ISC_KIT_NOTEBOOK_DATA", str(tmp_path / "data"))
    book = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert f"S3 endpoint: {s3_env}" in text
    assert f"predictions: {predictions}" in text  # the pipeline's file, not a fresh baseline
    assert not (tmp_path / "data").exists()  # nothing fetched
    assert f"µAP               {result.muap:.4f}" in text
    misses = expected_misses(predictions, gt_file, result.threshold_at_p90)
    assert f"misses           {misses:3} at score >= {result.threshold_at_p90:.3f}" in text
    assert misses > 0  # the tiny set has one: the cell selects it and the pair viewer follows
    assert "pair viewer: Q" in text
    assert "edited copy of R" in text
    widget_cell = next(c for c in book.cells if "ErrorAnalysis(" in c.source)
    assert any(WIDGET_MIME in o.get("data", {}) for o in widget_cell.outputs)
