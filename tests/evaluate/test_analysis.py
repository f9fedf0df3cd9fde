"""Error analysis logic (no frontend): labels, ranks, filters, per-query detail and the PR curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isc_kit.analysis import Candidate, analyse, filter_queries, pr_curve, query_detail
from isc_kit.errors import ConfigError
from isc_kit.evaluate import Predictions, load_predictions
from isc_kit.groundtruth import GroundTruth, load_ground_truth

GT = GroundTruth.from_pairs(
    [("Q00001", "R000001"), ("Q00002", "R000002"), ("Q00003", "R000031"), ("Q00003", "R000032")],
    distractors=["Q00004", "Q00005"],
)
ROWS = [
    ("Q00001", "R000001", 0.9),  # right, rank 1
    ("Q00001", "R000009", 0.5),
    ("Q00002", "R000007", 0.8),  # wrong above the right one
    ("Q00002", "R000002", 0.6),
    ("Q00003", "R000008", 0.3),  # neither true reference predicted
    ("Q00004", "R000005", 0.85),  # distractor, high
    ("Q00005", "R000006", 0.2),  # distractor, low
]
OUTSIDE = ("Q09999", "R000001", 0.99)  # a query the ground truth does not list


@pytest.fixture
def report():
    return analyse(GT, Predictions.from_rows(ROWS), top_k=5)


def test_scores_come_from_evaluate_and_the_threshold_is_the_p90_point(report) -> None:
    # sorted: .9 R, .85 W, .8 W, .6 R, ...; 4 pairs -> µAP = .25 * 1 + .25 * 2/4
    assert report.result.muap == pytest.approx(0.375)
    assert report.threshold == 0.9
    assert len(report.predictions) == 7


def test_a_prediction_for_a_query_outside_the_ground_truth_is_a_false_positive_as_officially() -> None:
    report = analyse(GT, Predictions.from_rows([*ROWS, OUTSIDE]), top_k=5)
    # sorted: .99 W (outside), .9 R, .85 W, .8 W, .6 R -> µAP = .25 * 1/2 + .25 * 2/5
    assert report.result.muap == pytest.approx(0.225)
    assert report.result.n_outside_ground_truth == 1
    assert "Q09999" not in set(
        report.predictions["query_id"]
    )  # no row of its own: nothing to compare it with


def test_statuses_and_ranks(report) -> None:
    q = report.queries
    assert q.loc["Q00001", "status"] == "hit"
    assert q.loc["Q00002", "status"] == "in top-k"
    assert q.loc["Q00002", "first_correct_rank"] == 2
    assert q.loc["Q00003", "status"] == "miss"
    assert np.isnan(q.loc["Q00003", "first_correct_rank"])
    assert list(q.loc[["Q00004", "Q00005"], "status"]) == ["distractor", "distractor"]
    assert q.loc["Q00003", "true_refs"] == ("R000031", "R000032")
    assert analyse(GT, Predictions.from_rows(ROWS), top_k=1).queries.loc["Q00002", "status"] == "miss"


def test_filters(report) -> None:
    assert filter_queries(report) == ["Q00001", "Q00004", "Q00002", "Q00003", "Q00005"]  # best score first
    assert filter_queries(report, sort="score ↑")[:2] == ["Q00005", "Q00003"]
    assert filter_queries(report, sort="query id") == ["Q00001", "Q00002", "Q00003", "Q00004", "Q00005"]
    # misses at .9: Q00002's true reference scores .6, Q00003's is not predicted at all
    assert filter_queries(report, "misses") == ["Q00002", "Q00003"]
    assert filter_queries(report, "misses", threshold=0.6) == ["Q00003"]
    assert filter_queries(report, "false positives") == []
    assert filter_queries(report, "false positives", threshold=0.5) == ["Q00001", "Q00004", "Q00002"]
    assert filter_queries(report, "distractors", threshold=0.5) == ["Q00004"]
    assert filter_queries(report, "distractors", threshold=0.1) == ["Q00004", "Q00005"]
    with pytest.raises(ConfigError, match="show must be one of"):
        filter_queries(report, "wrong")


def test_query_detail_puts_true_references_beside_the_top_k(report) -> None:
    d = query_detail(report, "Q00002")
    assert d.true_refs == (Candidate("R000002", 0.6, 2, True),)
    assert d.top == (Candidate("R000007", 0.8, 1, False), Candidate("R000002", 0.6, 2, True))
    d = query_detail(report, "Q00003")
    assert d.true_refs == (Candidate("R000031", None, None, True), Candidate("R000032", None, None, True))
    assert d.top == (Candidate("R000008", 0.3, 1, False),)
    assert query_detail(report, "Q00004").true_refs == ()
    assert len(query_detail(analyse(GT, Predictions.from_rows(ROWS), top_k=1), "Q00001").top) == 1
    with pytest.raises(ConfigError, match="Q00077 is not a query"):
        query_detail(report, "Q00077")


def test_ties_rank_the_wrong_prediction_first_like_the_metric() -> None:
    gt = GroundTruth.from_pairs([("Q00001", "R000001")])
    rows = [("Q00001", "R000001", 0.5), ("Q00001", "R000002", 0.5)]
    report = analyse(gt, Predictions.from_rows(rows))
    assert query_detail(report, "Q00001").top[0] == Candidate("R000002", 0.5, 1, False)
    assert report.result.muap == pytest.approx(0.5)
    assert report.queries.loc["Q00001", "status"] == "in top-k"


def test_pr_curve_corners_and_operating_point(report) -> None:
    curve = pr_curve(report.result)
    assert curve.recall.tolist() == [0.0, 0.25, 0.5]
    assert curve.precision.tolist() == [1.0, 1.0, 0.5]
    assert (curve.operating_recall, curve.operating_precision, curve.operating_threshold) == (0.25, 1.0, 0.9)
    assert curve.muap == pytest.approx(0.375)


def test_without_the_p90_point_the_threshold_is_the_best_wrong_score() -> None:
    gt = GroundTruth.from_pairs([("Q00001", "R000001")])
    report = analyse(gt, Predictions.from_rows([("Q00001", "R000002", 0.7), ("Q00001", "R000001", 0.4)]))
    assert report.result.recall_at_p90 is None
    assert report.threshold == 0.7
    assert pr_curve(report.result).operating_recall is None


def test_on_baseline_predictions_of_the_tiny_fixture(tiny_root: Path, tmp_path: Path) -> None:
    from isc_kit.baseline import run_baseline
    from isc_kit.evaluate import evaluate

    out = tmp_path / "baseline.csv"
    run_baseline(tiny_root / "all/query_images", tiny_root / "all/reference_images", out, top_k=5, jobs=1)
    gt = load_ground_truth(tiny_root / "metadata/public_ground_truth.csv")
    predictions = load_predictions(out)
    report = analyse(gt, predictions, top_k=5)
    assert report.result.muap == evaluate(gt, predictions).muap
    q = report.queries
    assert len(q) == len(gt.queries)
    matched = q[q["kind"] == "matched"]
    assert len(matched) == len(gt.matched_queries)
    for query_id in matched.index:  # independently: a hit's best prediction is a ground-truth pair
        best = query_detail(report, query_id).top[0]
        assert (matched.loc[query_id, "status"] == "hit") == ((query_id, best.reference_id) in gt.pairs)
    misses = set(filter_queries(report, "misses", threshold=-1.0))
    assert misses == {
        p for p in gt.matched_queries if not any((p, r) in gt.pairs for r in _predicted(out, p))
    }


def _predicted(path: Path, query_id: str) -> list[str]:
    return [
        line.split(",")[1] for line in path.read_text().splitlines()[1:] if line.startswith(query_id + ",")
    ]


def test_point_at_a_threshold(report) -> None:
    from isc_kit.analysis import point_at

    assert point_at(report.result, 0.95) is None
    assert point_at(report.result, 0.9) == (0.25, 1.0)
    assert point_at(report.result, 0.6) == (0.5, 0.5)  # .9 R, .85 W, .8 W, .6 R


def test_verdict_at_a_threshold(report) -> None:
    from isc_kit.analysis import verdict

    assert verdict(query_detail(report, "Q00001"), 0.9) == "found"
    assert verdict(query_detail(report, "Q00001"), 0.5) == "found, false positive"  # R000009 at .5
    assert verdict(query_detail(report, "Q00002"), 0.7) == "missed, false positive"  # .6 < .7 <= .8
    assert verdict(query_detail(report, "Q00003"), 0.0) == "missed, false positive"
    assert verdict(query_detail(report, "Q00004"), 0.9) == "distractor"
    assert verdict(query_detail(report, "Q00004"), 0.85) == "distractor, false positive"


def test_no_predictions_for_the_ground_truth() -> None:
    gt = GroundTruth.from_pairs([("Q00001", "R000001")], distractors=["Q00002"])
    report = analyse(gt, Predictions.from_rows([("Q09999", "R000001", 0.5)]))
    assert report.threshold == 0.0
    assert report.result.muap == 0.0
    assert filter_queries(report, "misses") == ["Q00001"]
    assert query_detail(report, "Q00001").true_refs == (Candidate("R000001", None, None, True),)
    assert pr_curve(report.result).recall.tolist() == [0.0]
