"""The ErrorAnalysis widget driven from code (traits, button clicks), over baseline predictions of the tiny set."""

from __future__ import annotations

from pathlib import Path

import pytest

from isc_kit.evaluate import Predictions
from isc_kit.groundtruth import load_ground_truth
from isc_kit.metadata import read_metadata
from isc_kit.widgets import ErrorAnalysis, LocalImages


@pytest.fixture(scope="module")
def baseline_csv(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from isc_kit.baseline import run_baseline

    out = tmp_path_factory.mktemp("pred") / "baseline.csv"
    run_baseline(tiny_root / "all/query_images", tiny_root / "all/reference_images", out, top_k=5, jobs=1)
    return out


@pytest.fixture
def widget(tiny_root: Path, baseline_csv: Path, tmp_path: Path) -> ErrorAnalysis:
    from isc_kit.widgets import ThumbnailCache

    meta = tiny_root / "metadata"
    return ErrorAnalysis(
        load_ground_truth(meta / "public_ground_truth.csv"),
        baseline_csv,
        read_metadata(meta / "query_images_metadata.csv", "query"),
        read_metadata(meta / "reference_images_metadata.csv", "reference"),
        LocalImages(tiny_root, layout="bucket"),
        page_size=4,
        thumbnails=ThumbnailCache(tmp_path / "thumbs"),
    )


def test_pages_filters_and_threshold(widget: ErrorAnalysis) -> None:
    assert len(widget.ids) == 20  # every tiny query
    assert widget.shown_ids == widget.ids[:4]
    scores = [widget.report.queries.loc[q, "best_score"] for q in widget.ids]
    assert scores == sorted(scores, reverse=True)
    assert widget._plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    widget._next.click()
    assert widget.shown_ids == widget.ids[4:8]
    widget.show = "distractors"
    assert widget.page == 0
    queries = widget.report.queries
    assert all(queries.loc[q, "kind"] == "distractor" for q in widget.ids)
    widget.threshold = -1.0  # every distractor has some prediction at or above it
    assert len(widget.ids) == int((queries["kind"] == "distractor").sum())
    widget.show = "misses"
    widget.threshold = 2.0  # cosine scores never reach 2: every matched query is a miss
    assert len(widget.ids) == int((queries["kind"] == "matched").sum())
    widget.threshold = 99.0
    widget.show = "false positives"
    assert widget.ids == []
    assert widget._page_label.value.startswith("no queries")
    widget.sort = "query id"
    widget.show = "all"
    assert widget.ids == sorted(widget.ids)
    from traitlets import TraitError

    with pytest.raises(TraitError, match="'show' trait of an ErrorAnalysis instance expected any of"):
        widget.show = "everything"
    assert widget.show == "all"


def test_row_lists_the_truth_beside_the_top_k(widget: ErrorAnalysis) -> None:
    widget.sort = "query id"
    row = widget._rows[0]
    query_id = row.button.description
    detail = widget.query_detail(query_id)
    assert len(detail.top) == 5
    for c in detail.top:
        assert c.reference_id in row.cells.value
    marks = row.cells.value.count("✓") + row.cells.value.count("✗")
    assert marks == 5
    assert row.cells.value.count("✓") == sum(
        1 for c in detail.top if c.reference_id in widget.report.queries.loc[query_id, "true_refs"]
    )


def test_clicking_a_query_shows_its_predictions_and_moves_the_pair_viewer(widget: ErrorAnalysis) -> None:
    widget.show = "all"
    widget.sort = "query id"
    widget.viewer.show = "distractors"
    matched = next(q for q in widget.ids if widget.report.queries.loc[q, "kind"] == "matched")
    widget.page = widget.ids.index(matched) // 4
    row = next(r for r in widget._rows if r.button.description == matched)
    row.button.click()
    assert widget.query_id == matched
    assert widget.viewer.query_id == matched  # the viewer switched to "all" to find it
    assert widget.viewer.reference_ids == list(widget.report.queries.loc[matched, "true_refs"])
    cards = widget._strip.children
    assert len(cards) >= 6  # the query and its five predictions (plus true references outside the top 5)
    assert all(card.children[1].value for card in cards)  # every thumbnail has bytes
    assert widget.selected_text.startswith(f"{matched} (")
    assert "isc-err-selected" in row._dom_classes


def test_predictions_in_memory_and_an_empty_selection(tiny_root: Path, tmp_path: Path) -> None:
    from isc_kit.groundtruth import GroundTruth

    gt = GroundTruth.from_pairs([("Q00001", "R000001")], distractors=["Q00002"])
    meta = tiny_root / "metadata"
    w = ErrorAnalysis(
        gt,
        Predictions.from_rows([("Q00001", "R000001", 0.9), ("Q00002", "R000003", 0.95)]),
        read_metadata(meta / "query_images_metadata.csv", "query"),
        read_metadata(meta / "reference_images_metadata.csv", "reference"),
        LocalImages(tiny_root, layout="bucket"),
    )
    assert w.ids == ["Q00002", "Q00001"]
    assert w.threshold == 0.95  # precision 0.9 is never reached: the best wrong score
    w.show = "distractors"
    assert w.ids == ["Q00002"]
    w.select("Q00002")
    assert w.viewer.caption.startswith("Q00002: distractor")
