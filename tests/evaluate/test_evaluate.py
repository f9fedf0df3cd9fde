"""µAP as ISC defines it: hand-computed cases, file validation, and properties."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isc_kit.errors import ConfigError, InputFileError
from isc_kit.evaluate import Predictions, evaluate, load_predictions, write_predictions
from isc_kit.groundtruth import GroundTruth, restrict

GT2 = GroundTruth.from_pairs([("Q00001", "R000001"), ("Q00002", "R000002")], distractors=["Q00003", "Q00004"])


def score(rows: list[tuple[str, str, float]], gt: GroundTruth = GT2, **kw: object):
    return evaluate(gt, Predictions.from_rows(rows), **kw)  # type: ignore[arg-type]


def test_perfect() -> None:
    r = score([("Q00001", "R000001", 0.9), ("Q00002", "R000002", 0.8)])
    assert r.muap == 1.0
    assert (r.recall_at_p90, r.threshold_at_p90) == (1.0, 0.8)
    assert (r.recall_at_rank1, r.recall_at_rank10) == (1.0, 1.0)
    assert (r.n_predictions, r.n_true_positives, r.n_gt_pairs, r.n_queries) == (2, 2, 2, 4)


def test_all_wrong() -> None:
    r = score([("Q00001", "R000002", 0.9), ("Q00003", "R000001", 0.8)])
    assert r.muap == 0.0
    assert r.recall_at_p90 is None
    assert r.threshold_at_p90 is None
    assert r.recall_at_rank1 == 0.0


def test_mixed_hand_computed() -> None:
    # ranks: TP (p=1, r=.5), FP (p=1/2, r=.5), TP (p=2/3, r=1)  ->  .5*1 + .5*2/3
    r = score([("Q00002", "R000002", 0.7), ("Q00001", "R000001", 0.9), ("Q00003", "R000001", 0.8)])
    assert r.muap == pytest.approx(0.5 + 1 / 3)
    assert (r.recall_at_p90, r.threshold_at_p90) == (0.5, 0.9)


def test_ties_are_broken_pessimistically() -> None:
    gt = GroundTruth.from_pairs([("Q00001", "R000001")], distractors=["Q00002"])
    rows = [("Q00001", "R000001", 0.5), ("Q00002", "R000009", 0.5)]
    # the wrong prediction comes first: precision 1/2 at the only recall step
    assert score(rows, gt).muap == 0.5
    assert score(rows[::-1], gt).muap == 0.5


def test_ties_in_the_middle() -> None:
    rows = [
        ("Q00001", "R000001", 1.0),
        ("Q00004", "R000004", 0.5),
        ("Q00002", "R000002", 0.5),
        ("Q00003", "R000003", 0.5),
    ]
    # TP, FP, FP, TP: .5*1 + .5*(2/4)
    assert score(rows).muap == 0.75


def test_constant_scores_earn_little() -> None:
    rows = [
        ("Q00001", "R000001", 1.0),
        ("Q00002", "R000002", 1.0),
        ("Q00003", "R000003", 1.0),
        ("Q00004", "R000004", 1.0),
    ]
    # FP, FP, TP, TP: .5*(1/3) + .5*(2/4)
    assert score(rows).muap == pytest.approx(1 / 6 + 1 / 4)


def test_missed_pairs_cap_recall() -> None:
    gt = GroundTruth.from_pairs([(f"Q0000{i}", f"R00000{i}") for i in range(4)])
    r = score([("Q00000", "R000000", 1.0)], gt)
    assert r.muap == 0.25
    assert r.recall_at_p90 == 0.25


def test_recall_at_p90_picks_the_highest_recall() -> None:
    gt = GroundTruth.from_pairs([(f"Q{i:05d}", f"R{i:06d}") for i in range(20)])
    rows = [(f"Q{i:05d}", f"R{i:06d}", 1.0 - i / 100) for i in range(9)]  # 9 TPs, 1.00 .. 0.92
    rows.append(("Q00015", "R000099", 0.91))  # FP: precision 9/10 = 0.9 at rank 10
    rows.append(("Q00009", "R000009", 0.90))  # TP: precision 10/11 at rank 11, recall 10/20
    rows.append(("Q00016", "R000098", 0.85))  # FP: precision 10/12 < 0.9
    r = score(rows, gt)
    assert (r.recall_at_p90, r.threshold_at_p90) == (0.5, 0.90)
    assert r.muap == pytest.approx(9 / 20 + (1 / 20) * (10 / 11))


def test_empty_predictions_score_zero() -> None:
    r = score([])
    assert r.muap == 0.0
    assert r.n_predictions == 0
    assert r.recall_at_p90 is None


def test_predictions_outside_the_ground_truth_are_false_positives() -> None:
    # official isc2021 rule: every prediction is scored; Q09999 and Q08888 are not in the ground truth
    r = score([("Q00001", "R000001", 0.9), ("Q09999", "R000001", 0.95), ("Q08888", "R000003", 0.99)])
    assert r.muap == pytest.approx(0.5 * (1 / 3))  # FP, FP, TP: recall .5 at precision 1/3
    assert (r.n_input, r.n_dropped, r.n_predictions, r.n_outside_ground_truth) == (3, 0, 3, 2)


def test_restrict_to_ground_truth_drops_them() -> None:
    rows = [("Q00001", "R000001", 0.9), ("Q09999", "R000001", 0.95), ("Q08888", "R000003", 0.99)]
    r = score(rows, restrict_to_ground_truth=True)
    assert r.muap == 0.5
    assert (r.n_input, r.n_dropped, r.n_predictions, r.n_outside_ground_truth) == (3, 2, 1, 0)


def test_a_query_selection_drops_other_queries_only() -> None:
    rows = [("Q00001", "R000001", 0.9), ("Q09999", "R000001", 0.95), ("Q08888", "R000003", 0.99)]
    r = score(rows, queries={"Q00001", "Q09999"})  # Q09999 selected but not in the ground truth: FP
    assert r.muap == pytest.approx(0.25)
    assert (r.n_dropped, r.n_predictions, r.n_outside_ground_truth) == (1, 2, 1)


def test_references_outside_the_selection_are_dropped() -> None:
    gt, _ = restrict(GT2, reference_ids=["R000001", "R000002"])
    r = score([("Q00001", "R000001", 0.9), ("Q00002", "R000777", 0.95)], gt)
    assert r.muap == 0.5
    assert (r.n_dropped, r.n_dropped_reference) == (0, 1)


def test_max_predictions_keeps_the_top_scoring_with_cap_top() -> None:
    rows = [("Q00001", "R000001", 0.9), ("Q00003", "R000003", 0.8), ("Q00002", "R000002", 0.7)]
    r = score(rows, max_predictions=2, cap="top")
    assert r.muap == 0.5  # TP, FP scored; the last TP is cut
    assert (r.n_predictions, r.n_truncated) == (2, 1)
    assert score(rows, max_predictions=None).muap == pytest.approx(0.5 + 1 / 3)


def test_more_than_max_predictions_is_refused_by_default() -> None:
    rows = [("Q00001", "R000001", 0.9), ("Q00003", "R000003", 0.8), ("Q00002", "R000002", 0.7)]
    with pytest.raises(InputFileError, match=r"3 predictions, more than the 2 allowed.*--cap top"):
        score(rows, max_predictions=2)
    assert score(rows, max_predictions=3).n_predictions == 3


def test_an_unknown_cap_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cap must be one of refuse, top"):
        score([], cap="bottom")


def test_rank_recall_counts_ties_against_the_match() -> None:
    rows = [
        ("Q00001", "R000005", 0.9),
        ("Q00001", "R000001", 0.8),
        ("Q00002", "R000002", 0.5),
        ("Q00002", "R000006", 0.5),
    ]
    r = score(rows)
    assert r.recall_at_rank1 == 0.0  # Q00001's match is second, Q00002's ties with a wrong one
    assert r.recall_at_rank10 == 1.0


def test_duplicates_are_rejected() -> None:
    rows = [("Q00001", "R000001", 0.9), ("Q00002", "R000002", 0.8), ("Q00001", "R000001", 0.1)]
    with pytest.raises(InputFileError, match=r"duplicate prediction \(first on line 1\)") as info:
        score(rows)
    assert info.value.line == 3


def test_no_pairs_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no matched pairs"):
        score([], GroundTruth.from_pairs([], distractors=["Q00001"]))


def test_result_dict_is_scalar() -> None:
    d = score([("Q00001", "R000001", 0.9)]).to_dict()
    assert d["muap"] == 0.5
    assert "precisions" not in d


# ----------------------------------------------------------------------------- files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pred.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_load_good_file(tmp_path: Path) -> None:
    p = load_predictions(
        write(tmp_path, "query_id,reference_id,score\nQ00001,R000001,0.5\nQ50000,R999999,-3e2\n")
    )
    assert list(p.query_ids) == ["Q00001", "Q50000"]
    assert list(p.reference_ids) == ["R000001", "R999999"]
    assert list(p.scores) == [0.5, -300.0]


def test_load_bom_crlf_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "pred.csv"
    path.write_bytes("\ufeffquery_id,reference_id,score\r\n\r\nQ00001,R000001,1\r\n".encode())
    assert list(load_predictions(path).scores) == [1.0]


def test_write_then_load(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert write_predictions(path, [("Q00001", "R000001", 0.123456789), ("Q00002", "R000002", 1)]) == 2
    assert path.read_text() == "query_id,reference_id,score\nQ00001,R000001,0.123456789\nQ00002,R000002,1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("Q00001,R000001,0.5\n", 1, "", "the header must be"),
        ("query_id,reference_id\nQ00001,R000001\n", 1, "", "the header must be"),
        ("query_id,reference_id,score\nQ00001,R000001\n", 2, "", "expected 3 columns"),
        ("query_id,reference_id,score\nQ00001,R000001,abc\n", 2, "score", "not a number"),
        ("query_id,reference_id,score\nQ00001,R000001,nan\n", 2, "score", "finite"),
        ("query_id,reference_id,score\nQ00001,R000001,inf\n", 2, "score", "finite"),
        ("query_id,reference_id,score\nQ1,R000001,1\n", 2, "query_id", "not a query id"),
        ("query_id,reference_id,score\nQ00001,R0000011,1\n", 2, "reference_id", "not a reference id"),
        ("query_id,reference_id,score\nQ00001,R000001,1\n\nQ00001,R000001,2\n", 4, "", "first on line 2"),
        ("", 0, "", "empty file"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, line: int, column: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputFileError) as info:
        load_predictions(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert info.value.problems[0].column == column
    assert fragment in str(info.value)


def test_problems_of_both_kinds_are_sorted(tmp_path: Path) -> None:
    text = "query_id,reference_id,score\nQ00001,R000001,1\nQ00001,R000001,2\nQ00002,R000002,x\n"
    with pytest.raises(InputFileError) as info:
        load_predictions(write(tmp_path, text))
    assert [p.line for p in info.value.problems] == [3, 4]
    assert info.value.total == 2


# ----------------------------------------------------------------------------- properties


def reference_muap(gt: GroundTruth, rows: list[tuple[str, str, float]], restricted: bool = False) -> float:
    """A plain-loop oracle of the definition (kept deliberately naive)."""
    labelled = [(s, (q, r) in gt.pairs) for q, r, s in rows if not restricted or q in gt.queries]
    labelled.sort(key=lambda x: (-x[0], x[1]))  # score desc, wrong (False) first
    tp, total, prev = 0, 0.0, 0.0
    for i, (_, ok) in enumerate(labelled, 1):
        tp += ok
        recall = tp / gt.n_pairs
        total += (recall - prev) * tp / i
        prev = recall
    return total


QIDS = [f"Q{i:05d}" for i in range(6)]
RIDS = [f"R{i:06d}" for i in range(6)]
SCORES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])  # few values: many ties


@st.composite
def cases(draw: st.DrawFn) -> tuple[GroundTruth, list[tuple[str, str, float]]]:
    pairs = draw(st.sets(st.tuples(st.sampled_from(QIDS), st.sampled_from(RIDS)), min_size=1, max_size=8))
    gt = GroundTruth.from_pairs(pairs, distractors=QIDS)
    keys = draw(st.lists(st.tuples(st.sampled_from([*QIDS, "Q09999"]), st.sampled_from(RIDS)), unique=True))
    return gt, [(q, r, draw(SCORES)) for q, r in keys]


@settings(max_examples=100, deadline=None)
@given(cases())
def test_matches_the_naive_definition(case: tuple[GroundTruth, list[tuple[str, str, float]]]) -> None:
    gt, rows = case
    r = score(rows, gt)
    assert r.muap == pytest.approx(reference_muap(gt, rows), abs=1e-12)
    assert 0.0 <= r.muap <= 1.0
    restricted = score(rows, gt, restrict_to_ground_truth=True)
    assert restricted.muap == pytest.approx(reference_muap(gt, rows, restricted=True), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(case: tuple[GroundTruth, list[tuple[str, str, float]]], rnd) -> None:
    gt, rows = case
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    a, b = score(rows, gt), score(shuffled, gt)
    assert a.muap == b.muap
    assert (a.recall_at_p90, a.threshold_at_p90) == (b.recall_at_p90, b.threshold_at_p90)
    assert (a.recall_at_rank1, a.recall_at_rank10) == (b.recall_at_rank1, b.recall_at_rank10)


@settings(max_examples=100, deadline=None)
@given(cases(), st.data())
def test_a_lowest_scoring_wrong_prediction_never_helps(case, data: st.DataObject) -> None:
    gt, rows = case
    taken = {(q, r) for q, r, _ in rows}
    free = [(q, r) for q in QIDS for r in RIDS if (q, r) not in gt.pairs and (q, r) not in taken]
    if not free:
        return
    q, r = data.draw(st.sampled_from(free))
    lowest = min((s for *_, s in rows), default=0.0) - data.draw(st.sampled_from([0.0, 0.5]))
    before = score(rows, gt).muap
    after = score([*rows, (q, r, lowest)], gt).muap
    assert after <= before + 1e-12
    assert not math.isnan(after)


def test_the_package_keeps_the_public_names() -> None:
    import isc_kit
    import isc_kit.evaluate.descriptors  # rebinds isc_kit.evaluate to the package
    from isc_kit.evaluate import EvalResult, evaluate_descriptors, read_descriptors, write_descriptors

    assert all(callable(f) for f in (evaluate_descriptors, read_descriptors, write_descriptors))
    # isc_kit.evaluate is the public function (isc_kit.__all__), whatever the attribute holds now
    result = isc_kit.evaluate(GT2, Predictions.from_rows([("Q00001", "R000001", 0.9)]))
    assert isinstance(result, EvalResult)
    assert result.muap == 0.5
