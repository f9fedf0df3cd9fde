"""The matching track agrees with the official isc2021 rules, computed here independently.

The oracle below is written from the rules as ``scripts/compute_metrics.py`` and ``isc/metrics.py`` of
facebookresearch/isc2021 state them (not from their code): every prediction is scored (a query the
ground truth does not list only adds false positives), a file of more than 500,000 predictions is
refused, predictions are ranked by score with the wrong ones first at equal score, and
µAP = Σ (recall_i − recall_{i−1}) · precision_i.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from _official import Row, TooMany, agree, official

from isc_kit.cli.main import main
from isc_kit.errors import InputFileError
from isc_kit.evaluate import Predictions, evaluate, write_predictions
from isc_kit.groundtruth import GroundTruth

LIMIT = 500_000


def top(rows: list[Row], pairs: set[tuple[str, str]], n: int) -> list[Row]:
    """The first ``n`` rows in the official ranking (wrong first at equal score): what --cap top keeps."""
    return sorted(rows, key=lambda t: (-t[2], (t[0], t[1]) in pairs))[:n]


def make_case(
    n_queries: int, n_refs: int, n_gt_queries: int, seed: int, levels: int
) -> tuple[GroundTruth, list[Row]]:
    """Every query against every reference; scores drawn from ``levels`` values (ties)."""
    rnd = random.Random(seed)
    queries = [f"Q{i:05d}" for i in range(n_queries)]
    refs = [f"R{i:06d}" for i in range(n_refs)]
    pairs = {(q, rnd.choice(refs)) for q in queries[:n_gt_queries] if rnd.random() < 0.4}
    in_gt = set(queries[:n_gt_queries])
    rows = []
    for q in queries:
        for r in refs:
            # true pairs score high, and so do some pairs of queries outside the ground truth
            high = (q, r) in pairs or (q not in in_gt and rnd.random() < 0.05)
            level = rnd.randrange(levels) + (levels // 2 if high else 0)
            rows.append((q, r, level / levels))
    gt = GroundTruth.from_pairs(pairs, distractors=queries[:n_gt_queries])
    return gt, rows


def score(gt: GroundTruth, rows: list[Row], **kw):
    return evaluate(gt, Predictions.from_rows(rows), **kw)


def test_queries_outside_the_ground_truth_are_false_positives() -> None:
    # the ground truth covers half the queries (as the public one covers Q00000-Q24999 of 50,000)
    gt, rows = make_case(200, 40, 100, seed=1, levels=20)
    expected = official(gt.pairs, rows)
    result = score(gt, rows)
    agree(result, expected)
    assert result.n_outside_ground_truth == 100 * 40
    restricted = score(gt, rows, restrict_to_ground_truth=True)
    agree(restricted, official(gt.pairs, [row for row in rows if row[0] in gt.queries]))
    assert restricted.muap > 1.5 * result.muap  # the difference the official rule makes


def test_heavy_ties() -> None:
    gt, rows = make_case(300, 30, 300, seed=2, levels=2)  # scores 0, .5 and 1 only
    agree(score(gt, rows), official(gt.pairs, rows))
    constant = [(q, r, 0.5) for q, r, _ in rows]
    agree(score(gt, constant), official(gt.pairs, constant))
    assert score(gt, constant).muap < 2 * gt.n_pairs / len(rows)  # a constant score earns ~nothing


@pytest.mark.slow
def test_exactly_500000_are_scored_500001_refused() -> None:
    gt, rows = make_case(2000, 250, 1200, seed=3, levels=10)
    assert len(rows) == LIMIT
    agree(score(gt, rows), official(gt.pairs, rows))
    rows.append(("Q49999", "R999999", 1.0))  # one more, for a query outside the ground truth
    with pytest.raises(TooMany):
        official(gt.pairs, rows)
    with pytest.raises(InputFileError, match="500,001 predictions, more than the 500,000 allowed"):
        score(gt, rows)
    capped = score(gt, rows, cap="top")
    assert (capped.n_predictions, capped.n_truncated) == (LIMIT, 1)
    agree(capped, official(gt.pairs, top(rows, gt.pairs, LIMIT)))


@pytest.mark.slow
def test_the_cli_refuses_a_500001_line_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, rows = make_case(2000, 250, 1200, seed=4, levels=10)
    gt_file = tmp_path / "gt.csv"
    gt_file.write_text(
        "query_id,reference_id\n"
        + "".join(f"{q},{r}\n" for q, r in sorted(gt.pairs))
        + "".join(f"{q},\n" for q in sorted(gt.distractors))
    )
    exact, over = tmp_path / "exact.csv", tmp_path / "over.csv"
    write_predictions(exact, rows)
    write_predictions(over, [*rows, ("Q49999", "R999999", 1.0)])
    assert main(["eval", str(exact), "--ground-truth", str(gt_file), "--json"]) == 0
    assert '"muap": ' in capsys.readouterr().out
    assert main(["eval", str(over), "--ground-truth", str(gt_file)]) == 3
    err = capsys.readouterr().err
    assert "500,001 predictions, more than the 500,000 allowed" in err
    assert "Traceback" not in err
