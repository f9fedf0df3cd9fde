"""Matching-track predictions and the ISC micro-average precision (µAP).

The metric follows the competition's definition: all predictions of all queries are sorted
by score, highest first, with ties broken pessimistically (at equal score the wrong
predictions come first, so a constant score earns nothing); at rank ``i`` precision is
``TP_i / i`` and recall ``TP_i / P`` with ``P`` the number of ground-truth pairs, and
``µAP = Σ_i (recall_i − recall_{i−1}) · precision_i``. Recall at precision ≥ 0.9 is the highest
recall among ranks whose precision is at least 0.9, with the score at that rank.

The defaults are the official isc2021 rules (``scripts/compute_metrics.py`` and ``isc/metrics.py`` of
facebookresearch/isc2021): predictions for queries outside the ground truth are false positives, and a
file of more than 500,000 predictions is refused. :func:`evaluate` offers the alternatives by name.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import SETS, ImageSet
from ..errors import ConfigError, InputFileError, Problem, ProblemCollector
from ..groundtruth import GroundTruth, query_id_checker, reference_id_checker
from ..inputs import PREDICTIONS_LIMIT, read_input
from .result import EvalResult

logger = logging.getLogger(__name__)

HEADER = ("query_id", "reference_id", "score")
#: The competition scored at most this many predictions per submission.
DEFAULT_MAX_PREDICTIONS = 500_000
_MAX_PROBLEMS = InputFileError.max_shown


@dataclass(frozen=True, eq=False)
class Predictions:
    """Scored candidate matches: parallel arrays, one entry per ``(query, reference)`` pair.

    ``lines`` holds each row's line number in its file (``None`` when built in memory).
    """

    query_ids: np.ndarray
    reference_ids: np.ndarray
    scores: np.ndarray
    lines: np.ndarray | None = None
    source: str = "<memory>"

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float]], *, source: str = "<memory>") -> Predictions:
        """Predictions from ``(query_id, reference_id, score)`` tuples (ids are not validated)."""
        rows = list(rows)
        q = np.array([r[0] for r in rows], dtype=object)
        r = np.array([r[1] for r in rows], dtype=object)
        s = np.array([float(r[2]) for r in rows], dtype=np.float64)
        return cls(q, r, s, None, source)

    def __len__(self) -> int:
        return len(self.scores)

    def line_of(self, index: int) -> int:
        """File line of row ``index`` (1-based row number when built in memory)."""
        return int(self.lines[index]) if self.lines is not None else index + 1


def find_duplicates(predictions: Predictions) -> tuple[list[Problem], int]:
    """Problems for repeated ``(query, reference)`` pairs (at most 20) and their total count."""
    frame = pd.DataFrame({"q": predictions.query_ids, "r": predictions.reference_ids})
    dup = frame.duplicated(keep="first").to_numpy()
    n = int(dup.sum())
    if not n:
        return [], 0
    first_index = frame.groupby(["q", "r"], sort=False).ngroup().to_numpy()
    first_row: dict[int, int] = {}
    problems: list[Problem] = []
    for i, g in enumerate(first_index):
        if g not in first_row:
            first_row[g] = i
        elif len(problems) < _MAX_PROBLEMS:
            problems.append(
                Problem(
                    predictions.line_of(i),
                    "",
                    f"{predictions.query_ids[i]},{predictions.reference_ids[i]}",
                    f"duplicate prediction (first on line {predictions.line_of(first_row[g])}); "
                    "each (query, reference) pair may appear once",
                )
            )
        else:
            break
    return problems, n


def _valid_ids(values: pd.Series, sets: tuple[ImageSet, ...]) -> np.ndarray:
    """Vectorised id check: matches some set's pattern with its number in that set's range."""
    ok = np.zeros(len(values), dtype=bool)
    for s in sets:
        match = values.str.fullmatch(s.id_pattern[1:-1]).to_numpy(dtype=bool)
        # Fixed-width, zero-padded ids compare as strings exactly like their numbers.
        text = values.to_numpy(dtype=object)
        ok |= match & (text >= s.first_id) & (text <= s.last_id)
    return ok


def _load_fast(path: Path, data: io.BytesIO) -> Predictions | None:
    """Vectorised read of a well-formed file; ``None`` when anything is off (the slow path explains)."""
    try:
        frame = pd.read_csv(
            data, dtype=str, keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=True, engine="c"
        )
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    if tuple(frame.columns) != HEADER:
        return None
    q, r = frame["query_id"], frame["reference_id"]
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    if not (
        np.isfinite(scores).all()
        and _valid_ids(q, (SETS["query"], SETS["phase2"])).all()
        and _valid_ids(r, (SETS["reference"],)).all()
        and not frame.duplicated(["query_id", "reference_id"]).any()
    ):
        return None
    return Predictions(q.to_numpy(dtype=object), r.to_numpy(dtype=object), scores, None, str(path))


def load_predictions(path: str | Path) -> Predictions:
    """Read and validate a matching-track CSV ``query_id,reference_id,score`` (header required).

    Every row needs a valid query and reference id and a finite float score; a pair may appear
    only once (the competition rejected such files too). Raises :class:`InputFileError`.
    """
    path = Path(path)
    data = read_input(path, what="predictions CSV", limit=PREDICTIONS_LIMIT)
    fast = _load_fast(path, io.BytesIO(data))
    if fast is not None:
        logger.info("predictions %s: %d rows", path, len(fast))
        return fast
    is_query, query_desc = query_id_checker()
    is_ref, ref_desc = reference_id_checker()
    problem = ProblemCollector()

    qs: list[str] = []
    rs: list[str] = []
    scores: list[float] = []
    lines: list[int] = []
    seen_header = False
    try:
        with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                line = reader.line_num
                if not row or row == [""]:
                    continue
                cells = [c.strip() for c in row]
                if not seen_header:
                    seen_header = True
                    if tuple(c.lower() for c in cells) != HEADER:
                        problem(line, "", ",".join(row), f"the header must be {','.join(HEADER)}")
                        if len(cells) != 3 or not is_query(cells[0]):
                            continue
                    else:
                        continue
                if len(cells) != 3:
                    problem(
                        line, "", ",".join(row), f"expected 3 columns ({','.join(HEADER)}), got {len(cells)}"
                    )
                    continue
                q, r, s = cells
                ok = True
                if not is_query(q):
                    problem(line, "query_id", q, f"not a query id ({query_desc})")
                    ok = False
                if not is_ref(r):
                    problem(line, "reference_id", r, f"not a reference id ({ref_desc})")
                    ok = False
                try:
                    score = float(s)
                except ValueError:
                    problem(line, "score", s, "not a number")
                    continue
                if not math.isfinite(score):
                    problem(line, "score", s, "score must be finite")
                    continue
                if ok:
                    qs.append(q)
                    rs.append(r)
                    scores.append(score)
                    lines.append(line)
    except (csv.Error, UnicodeDecodeError, OSError) as err:
        line = reader.line_num if isinstance(err, csv.Error) else 0
        raise InputFileError.from_read_error(str(path), err, line) from err
    if not seen_header:
        raise InputFileError(
            str(path), [Problem(0, "", "", f"empty file; the header must be {','.join(HEADER)}")]
        )
    predictions = Predictions(
        np.array(qs, dtype=object),
        np.array(rs, dtype=object),
        np.array(scores, dtype=np.float64),
        np.array(lines, dtype=np.int64),
        str(path),
    )
    dups, n_dups = find_duplicates(predictions)
    problem.raise_if_any(
        str(path), hint="expected rows 'Q12345,R123456,0.87'", extra=dups, extra_total=n_dups
    )
    logger.info("predictions %s: %d rows", path, len(predictions))
    return predictions


def write_predictions(path: str | Path, rows: Iterable[tuple[str, str, float]]) -> int:
    """Write ``(query_id, reference_id, score)`` rows as a matching-track CSV (atomically); returns the row count."""
    from ..outputs import open_output

    n = 0
    with open_output(path, make_parents=True) as f:
        f.write((",".join(HEADER) + "\n").encode())
        for q, r, s in rows:
            f.write(f"{q},{r},{float(s):.9g}\n".encode())
            n += 1
    return n


#: What happens to more than ``max_predictions`` predictions: the official matching track refuses the
#: file (``scripts/compute_metrics.py``: "too many predictions"); ``top`` scores only the best ones.
CAP_MODES = ("refuse", "top")


def _keys(queries: np.ndarray, references: np.ndarray) -> pd.Series:
    return (
        pd.Series(queries, dtype=object).astype(str) + "," + pd.Series(references, dtype=object).astype(str)
    )


def _check_args(gt: GroundTruth, max_predictions: int | None, cap: str) -> None:
    if gt.n_pairs == 0:
        raise ConfigError(
            f"the ground truth ({gt.source}) has no matched pairs, so µAP is undefined; "
            "widen the selection or check the file"
        )
    if max_predictions is not None and max_predictions < 0:
        raise ConfigError(f"max_predictions must be >= 0, got {max_predictions}")
    if cap not in CAP_MODES:
        raise ConfigError(f"cap must be one of {', '.join(CAP_MODES)}, got {cap!r}")


def _kept(
    gt: GroundTruth,
    predictions: Predictions,
    queries: Iterable[str] | None,
    references: Iterable[str] | None,
    restrict_to_ground_truth: bool,
) -> tuple[np.ndarray, int, int]:
    """Mask of the predictions to score, and how many were left out for their query / reference."""
    q = pd.Series(predictions.query_ids, dtype=object)
    keep = np.ones(len(predictions), dtype=bool)
    if queries is not None:
        keep &= q.isin(set(queries)).to_numpy()
    if restrict_to_ground_truth:
        keep &= q.isin(gt.queries).to_numpy()
    n_dropped = int((~keep).sum())
    refs = references if references is not None else gt.references
    n_dropped_ref = 0
    if refs is not None:
        ref_ok = pd.Series(predictions.reference_ids, dtype=object).isin(set(refs)).to_numpy()
        n_dropped_ref = int((keep & ~ref_ok).sum())
        keep &= ref_ok
    return keep, n_dropped, n_dropped_ref


def _operating_point(precisions: np.ndarray, recalls: np.ndarray, scores: np.ndarray):
    """Highest recall among ranks with precision >= 0.9 and the score there (``None, None`` if none)."""
    valid = np.flatnonzero(precisions >= 0.9)
    if not len(valid):
        return None, None
    best = valid[np.argmax(recalls[valid])]
    return float(recalls[best]), float(scores[best])


def _rank_recalls(queries: np.ndarray, scores: np.ndarray, labels: np.ndarray, n_pos: int):
    """Share of ground-truth pairs found at rank 1 and within rank 10 of their query's predictions.

    The rank of a correct prediction is the number of that query's predictions scoring at least as
    high, minus one (ties count against it).
    """
    if not len(scores):
        return 0.0, 0.0
    ranks = (
        pd.Series(scores)
        .groupby(pd.Series(queries, dtype=object).to_numpy())
        .rank(method="max", ascending=False)
    )
    ranks = ranks.to_numpy()[labels] - 1
    return float(np.sum(ranks < 1) / n_pos), float(np.sum(ranks < 10) / n_pos)


def evaluate(
    gt: GroundTruth,
    predictions: Predictions,
    *,
    max_predictions: int | None = DEFAULT_MAX_PREDICTIONS,
    cap: str = "refuse",
    restrict_to_ground_truth: bool = False,
    queries: Iterable[str] | None = None,
    references: Iterable[str] | None = None,
) -> EvalResult:
    """Score ``predictions`` against ``gt`` with the ISC micro-average precision.

    By default this is the official isc2021 rule set (``isc/metrics.py``): every prediction is
    scored, one for a query the ground truth does not list counts as a false positive, and more
    than ``max_predictions`` predictions are refused (:class:`InputFileError`) as the official
    matching track refuses them. Options, each counted in the result:

    - ``queries`` / ``references`` (a selection): only predictions of these queries and references
      are scored (``references`` defaults to ``gt.references``, set by
      :func:`~isc_kit.groundtruth.restrict`);
    - ``restrict_to_ground_truth``: predictions for queries outside ``gt.queries`` are left out;
    - ``cap="top"``: of more than ``max_predictions``, only the highest-scoring are scored (ties
      broken pessimistically); ``max_predictions=None`` sets no limit.

    The cap counts the predictions left after the selection. Raises :class:`InputFileError` on
    duplicate pairs and :class:`ConfigError` when the ground truth has no pairs.
    """
    _check_args(gt, max_predictions, cap)
    dups, n_dups = find_duplicates(predictions)
    if dups:
        raise InputFileError(
            predictions.source, dups, total=n_dups, hint="keep one row per (query, reference)"
        )
    keep, n_dropped, n_dropped_ref = _kept(gt, predictions, queries, references, restrict_to_ground_truth)
    n_kept = int(keep.sum())
    if cap == "refuse" and max_predictions is not None and n_kept > max_predictions:
        raise InputFileError(
            predictions.source,
            [Problem(0, "", "", f"{n_kept:,} predictions, more than the {max_predictions:,} allowed")],
            hint=f"the official matching track refuses such a file; keep the best {max_predictions:,}, "
            "or pass --cap top (cap='top') to score only the highest-scoring ones",
        )
    q_ids = predictions.query_ids[keep]
    scores = predictions.scores[keep].astype(np.float64)
    labels = _keys(q_ids, predictions.reference_ids[keep]).isin({f"{a},{b}" for a, b in gt.pairs}).to_numpy()

    # Score descending; at equal score, wrong predictions (label 0) before right ones.
    order = np.lexsort((labels.astype(np.int8), -scores))
    n_truncated = 0
    if max_predictions is not None and len(order) > max_predictions:
        n_truncated = len(order) - max_predictions
        order = order[:max_predictions]
    q_ids, scores, labels = q_ids[order], scores[order], labels[order]

    n_pos = gt.n_pairs
    tp = np.cumsum(labels)
    precisions = tp / np.arange(1, len(tp) + 1)
    recalls = tp / n_pos
    muap = float(np.sum(np.diff(recalls, prepend=0.0) * precisions)) if len(tp) else 0.0
    recall_p90, threshold_p90 = _operating_point(precisions, recalls, scores)
    rank1, rank10 = _rank_recalls(q_ids, scores, labels, n_pos)
    outside = int((~pd.Series(q_ids, dtype=object).isin(gt.queries)).sum())
    logger.info("µAP %.4f over %d predictions and %d ground-truth pairs", muap, len(scores), n_pos)
    return EvalResult(
        muap=muap,
        recall_at_p90=recall_p90,
        threshold_at_p90=threshold_p90,
        recall_at_rank1=rank1,
        recall_at_rank10=rank10,
        n_predictions=len(scores),
        n_true_positives=int(tp[-1]) if len(tp) else 0,
        n_gt_pairs=n_pos,
        n_queries=len(gt.queries),
        n_input=len(predictions),
        n_dropped=n_dropped,
        n_dropped_reference=n_dropped_ref,
        n_truncated=n_truncated,
        n_outside_ground_truth=outside,
        precisions=precisions,
        recalls=recalls,
        thresholds=scores,
    )
