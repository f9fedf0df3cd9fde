"""Error analysis of matching-track predictions: why a descriptor misses, and what it confuses.

Pure functions on a ground truth and predictions (pandas, no widgets): :func:`analyse` labels
every prediction correct or wrong, ranks it within its query and summarises each query;
:func:`filter_queries` picks the misses, the false positives above a threshold or the
high-scoring distractor queries; :func:`query_detail` is one query's true references beside its
top-k predictions; :func:`pr_curve` is the precision-recall curve with the operating point at
precision 0.9. Scoring itself is :func:`isc_kit.evaluate.evaluate` (µAP, recall at P90).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError
from .evaluate import DEFAULT_MAX_PREDICTIONS, EvalResult, Predictions, evaluate
from .groundtruth import GroundTruth

logger = logging.getLogger(__name__)

#: What :func:`filter_queries` can show.
SHOW = ("all", "misses", "false positives", "distractors")
#: How :func:`filter_queries` can sort: the query's best score high to low, low to high, or by id.
SORT = ("score ↓", "score ↑", "query id")
OPERATING_PRECISION = 0.9


@dataclass(frozen=True)
class ErrorReport:
    """Every scored prediction labelled and ranked, one summary row per ground-truth query.

    ``predictions``: ``query_id, reference_id, score, correct, rank`` (rank 1 = the query's best;
    ties ranked wrong first, as µAP breaks them), sorted by query then rank. ``queries`` (index
    ``query_id``): ``kind`` (matched/distractor), ``true_refs`` (tuple), ``n_predicted``,
    ``best_score``, ``best_wrong_score``, ``best_true_score``, ``first_correct_rank`` (NaN when none),
    ``status`` (hit / in top-k / miss / distractor). ``threshold`` is the score at precision 0.9
    (or, when 0.9 is never reached, the highest score of a wrong prediction; 0 without predictions).
    """

    result: EvalResult
    predictions: pd.DataFrame
    queries: pd.DataFrame
    top_k: int
    threshold: float


@dataclass(frozen=True)
class Candidate:
    """One predicted reference of a query, or a true reference and how it was predicted."""

    reference_id: str
    score: float | None  # None: not predicted
    rank: int | None
    correct: bool


@dataclass(frozen=True)
class QueryDetail:
    query_id: str
    kind: str
    status: str
    true_refs: tuple[Candidate, ...]
    top: tuple[Candidate, ...]


def _label(gt: GroundTruth, predictions: Predictions) -> pd.DataFrame:
    """Predictions for the ground truth's queries (and references, when restricted), labelled."""
    frame = pd.DataFrame(
        {
            "query_id": pd.Series(predictions.query_ids, dtype=object),
            "reference_id": pd.Series(predictions.reference_ids, dtype=object),
            "score": np.asarray(predictions.scores, dtype=np.float64),
        }
    )
    keep = frame["query_id"].isin(gt.queries)
    if gt.references is not None:
        keep &= frame["reference_id"].isin(gt.references)
    frame = frame[keep.to_numpy()].reset_index(drop=True)
    keys = frame["query_id"].astype(str) + "," + frame["reference_id"].astype(str)
    frame["correct"] = keys.isin({f"{q},{r}" for q, r in gt.pairs}).to_numpy()
    frame = frame.sort_values(
        ["query_id", "score", "correct"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    frame["rank"] = frame.groupby("query_id", sort=False).cumcount().to_numpy() + 1
    return frame


def _query_table(gt: GroundTruth, frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    refs: dict[str, list[str]] = {}
    for q, r in gt.pairs:
        refs.setdefault(q, []).append(r)
    ids = sorted(gt.queries)
    table = pd.DataFrame(index=pd.Index(ids, name="query_id"))
    table["kind"] = ["matched" if q in refs else "distractor" for q in ids]
    table["true_refs"] = [tuple(sorted(refs.get(q, ()))) for q in ids]
    by_query = frame.groupby("query_id", sort=False)
    table["n_predicted"] = by_query.size().reindex(table.index).fillna(0).astype(int)
    table["best_score"] = by_query["score"].max().reindex(table.index)
    wrong, right = frame[~frame["correct"]], frame[frame["correct"]]
    table["best_wrong_score"] = wrong.groupby("query_id")["score"].max().reindex(table.index)
    table["best_true_score"] = right.groupby("query_id")["score"].max().reindex(table.index)
    table["first_correct_rank"] = right.groupby("query_id")["rank"].min().reindex(table.index)
    first = table["first_correct_rank"]
    status = np.where(first == 1, "hit", np.where(first <= top_k, "in top-k", "miss"))
    table["status"] = np.where(table["kind"] == "distractor", "distractor", status)
    return table


def analyse(
    gt: GroundTruth,
    predictions: Predictions,
    *,
    top_k: int = 5,
    max_predictions: int | None = DEFAULT_MAX_PREDICTIONS,
) -> ErrorReport:
    """Label, rank and summarise ``predictions`` against ``gt`` (scored with :func:`evaluate`)."""
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    result = evaluate(gt, predictions, max_predictions=max_predictions)
    frame = _label(gt, predictions)
    queries = _query_table(gt, frame, top_k)
    if result.threshold_at_p90 is not None:
        threshold = result.threshold_at_p90
    else:
        wrong = frame.loc[~frame["correct"], "score"]
        scores = wrong if len(wrong) else frame["score"]
        threshold = float(scores.max()) if len(scores) else 0.0  # no predictions at all: nothing to place
    logger.info(
        "error analysis: %d predictions over %d queries, threshold %.4g", len(frame), len(queries), threshold
    )
    return ErrorReport(result, frame, queries, top_k, float(threshold))


def filter_queries(
    report: ErrorReport, show: str = "all", *, threshold: float | None = None, sort: str = SORT[0]
) -> list[str]:
    """Query ids to look at, in ``sort`` order.

    ``misses``: matched queries none of whose true references is predicted at or above the
    threshold (not in the predictions at all, or scored too low). ``false positives``: queries
    with a wrong prediction scoring at or above it. ``distractors``: distractor queries (no
    true reference) whose best score is at or above it. The threshold defaults to the report's.
    """
    if show not in SHOW:
        raise ConfigError(f"show must be one of {', '.join(SHOW)}, not {show!r}")
    if sort not in SORT:
        raise ConfigError(f"sort must be one of {', '.join(SORT)}, not {sort!r}")
    t = report.threshold if threshold is None else float(threshold)
    q = report.queries
    if show == "misses":
        q = q[(q["kind"] == "matched") & ~(q["best_true_score"] >= t)]
    elif show == "false positives":
        q = q[q["best_wrong_score"] >= t]
    elif show == "distractors":
        q = q[(q["kind"] == "distractor") & (q["best_score"] >= t)]
    if sort == "query id":
        return q.index.tolist()
    key = q["best_score"].fillna(-np.inf)
    order = np.lexsort((q.index.to_numpy(dtype=str), -key.to_numpy() if sort == SORT[0] else key.to_numpy()))
    return q.index.to_numpy()[order].tolist()


def _candidate(row: Any) -> Candidate:
    return Candidate(str(row.reference_id), float(row.score), int(row.rank), bool(row.correct))


def query_detail(report: ErrorReport, query_id: str) -> QueryDetail:
    """One query: each true reference with its rank and score (or not predicted), and its top-k."""
    if query_id not in report.queries.index:
        raise ConfigError(f"{query_id} is not a query of the ground truth")
    info = report.queries.loc[query_id]
    frame = report.predictions
    lo = int(frame["query_id"].searchsorted(query_id, side="left"))
    hi = int(frame["query_id"].searchsorted(query_id, side="right"))
    rows = frame.iloc[lo:hi]
    by_ref = {r.reference_id: r for r in rows[rows["correct"]].itertuples(index=False)}
    true = tuple(
        _candidate(by_ref[r]) if r in by_ref else Candidate(r, None, None, True) for r in info["true_refs"]
    )
    top = tuple(_candidate(r) for r in rows.head(report.top_k).itertuples(index=False))
    return QueryDetail(query_id, str(info["kind"]), str(info["status"]), true, top)


def verdict(detail: QueryDetail, threshold: float) -> str:
    """What accepting every score at or above ``threshold`` means for this query, in words.

    A matched query is ``found`` (a true reference scores at or above it) or ``missed``; a
    distractor is ``distractor``; either gains ``false positive`` when a wrong prediction of its
    top-k scores at or above it.
    """
    wrong = any(not c.correct and c.score is not None and c.score >= threshold for c in detail.top)
    if detail.kind == "distractor":
        return "distractor, false positive" if wrong else "distractor"
    found = any(c.score is not None and c.score >= threshold for c in detail.true_refs)
    base = "found" if found else "missed"
    return f"{base}, false positive" if wrong else base


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall at each correct prediction (the curve's corners), and the P90 point."""

    recall: np.ndarray
    precision: np.ndarray
    operating_recall: float | None
    operating_precision: float | None
    operating_threshold: float | None
    muap: float


def pr_curve(result: EvalResult) -> PRCurve:
    """The curve of an :func:`evaluate` result, reduced to the ranks where recall grows."""
    recalls, precisions = result.recalls, result.precisions
    step = np.flatnonzero(np.diff(recalls, prepend=0.0) > 0)
    recall = np.concatenate([[0.0], recalls[step]])
    precision = np.concatenate([[precisions[step[0]] if len(step) else 1.0], precisions[step]])
    op_precision = None
    if result.recall_at_p90 is not None:
        valid = np.flatnonzero((precisions >= OPERATING_PRECISION) & (recalls == result.recall_at_p90))
        op_precision = float(precisions[valid[0]]) if len(valid) else OPERATING_PRECISION
    return PRCurve(
        recall, precision, result.recall_at_p90, op_precision, result.threshold_at_p90, result.muap
    )


def point_at(result: EvalResult, threshold: float) -> tuple[float, float] | None:
    """(recall, precision) when every scored prediction at or above ``threshold`` is accepted."""
    n = int(np.searchsorted(-result.thresholds, -float(threshold), side="right"))
    if n == 0:
        return None
    return float(result.recalls[n - 1]), float(result.precisions[n - 1])
