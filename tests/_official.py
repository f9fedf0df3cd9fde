"""An independent, plain-Python statement of the official isc2021 matching-track rules (test oracle).

Written from the rules as ``scripts/compute_metrics.py`` and ``isc/metrics.py`` of facebookresearch/isc2021
state them, not from their code.
"""

from __future__ import annotations

import pytest

Row = tuple[str, str, float]


class TooMany(Exception):
    pass


def official(
    pairs: set[tuple[str, str]] | frozenset[tuple[str, str]], rows: list[Row], limit: int | None = 500_000
) -> dict:
    """µAP, recall/threshold at precision 0.9 and recall at ranks 1 and 10, in plain Python."""
    if limit is not None and len(rows) > limit:
        raise TooMany(len(rows))
    ranked = sorted(((s, (q, r) in pairs) for q, r, s in rows), key=lambda t: (-t[0], t[1]))
    tp, muap, prev_recall = 0, 0.0, 0.0
    best_recall = best_threshold = None
    for i, (s, correct) in enumerate(ranked, 1):
        tp += correct
        recall, precision = tp / len(pairs), tp / i
        muap += (recall - prev_recall) * precision
        prev_recall = recall
        if precision >= 0.9 and (best_recall is None or recall > best_recall):
            best_recall, best_threshold = recall, s
    by_query: dict[str, dict[str, float]] = {}
    for q, r, s in rows:
        by_query.setdefault(q, {})[r] = s
    ranks = []
    for q, r in pairs:
        mine = by_query.get(q, {})
        ranks.append(sum(1 for s in mine.values() if s >= mine[r]) - 1 if r in mine else 1 << 35)
    return {
        "muap": muap,
        "recall_at_p90": best_recall,
        "threshold_at_p90": best_threshold,
        "recall_at_rank1": sum(1 for k in ranks if k == 0) / len(ranks),
        "recall_at_rank10": sum(1 for k in ranks if k < 10) / len(ranks),
    }


def agree(result, expected: dict) -> None:
    assert result.muap == pytest.approx(expected["muap"], abs=1e-9)
    assert result.recall_at_p90 == pytest.approx(expected["recall_at_p90"])
    assert result.threshold_at_p90 == expected["threshold_at_p90"]
    assert result.recall_at_rank1 == pytest.approx(expected["recall_at_rank1"])
    assert result.recall_at_rank10 == pytest.approx(expected["recall_at_rank10"])
