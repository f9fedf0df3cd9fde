"""Ground truth: which query is an edited copy of which reference, and subsets of it.

The publisher's file is ``query_id,reference_id`` with a header; an empty ``reference_id``
marks a distractor query (a query with no copy in the reference set). The headerless
two-column form of the competition's own tools is read too.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import PHASES, SETS, ImageSet, Phase
from .errors import ConfigError, InputFileError, Problem, ProblemCollector
from .inputs import GROUND_TRUTH_LIMIT, read_input, utf16_error

if TYPE_CHECKING:
    from .source import Source

logger = logging.getLogger(__name__)

HEADER = ("query_id", "reference_id")


def _id_checker(*sets: ImageSet):
    """A predicate for ids of any of ``sets`` (pattern and numeric range), plus a description."""
    patterns = [(re.compile(s.id_pattern), s.first, s.last) for s in sets]

    def check(value: str) -> bool:
        for pattern, first, last in patterns:
            if pattern.match(value) and first <= int(value[1:]) <= last:
                return True
        return False

    described = " or ".join(f"{s.first_id}..{s.last_id}" for s in sets)
    return check, described


def query_id_checker():
    """Predicate accepting Phase-1 and Phase-2 query ids (``Q00000``..``Q99999``)."""
    return _id_checker(SETS["query"], SETS["phase2"])


def reference_id_checker():
    """Predicate accepting reference ids (``R000000``..``R999999``)."""
    return _id_checker(SETS["reference"])


@dataclass(frozen=True)
class GroundTruth:
    """Matched ``(query_id, reference_id)`` pairs and every query they were drawn from.

    ``queries`` includes distractors (queries without a pair). ``references`` is the reference
    collection the queries are searched in, or ``None`` when it is not restricted.
    """

    pairs: frozenset[tuple[str, str]]
    queries: frozenset[str]
    references: frozenset[str] | None = None
    source: str = field(default="<memory>", compare=False)

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str]], distractors: Iterable[str] = (), *, source: str = "<memory>"
    ) -> GroundTruth:
        """A ground truth from pairs and distractor query ids (no id validation)."""
        pair_set = frozenset((str(q), str(r)) for q, r in pairs)
        queries = frozenset(q for q, _ in pair_set) | frozenset(distractors)
        return cls(pair_set, queries, None, source)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def matched_queries(self) -> frozenset[str]:
        return frozenset(q for q, _ in self.pairs)

    @property
    def distractors(self) -> frozenset[str]:
        return self.queries - self.matched_queries

    def __repr__(self) -> str:
        refs = "any" if self.references is None else f"{len(self.references)}"
        return (
            f"GroundTruth({self.n_pairs} pairs, {len(self.queries)} queries "
            f"({len(self.distractors)} distractors), references={refs}, source={self.source!r})"
        )


def load_ground_truth(path: str | Path, *, source: Source | None = None) -> GroundTruth:
    """Read and validate a ground-truth CSV (local, or ``s3://`` through ``source``); raises
    :class:`InputFileError` naming the bad lines.

    Accepts the publisher's form (header ``query_id,reference_id``, empty reference for a
    distractor) and the headerless two-column form; a UTF-8 BOM and CRLF line ends are fine.
    Rejected: other headers, rows without exactly two columns, malformed ids, repeated rows
    and a query listed both as a distractor and with a match.
    """
    path = os.fspath(path)  # a str, so an s3:// URL stays one
    is_query, query_desc = query_id_checker()
    is_ref, ref_desc = reference_id_checker()
    problem = ProblemCollector()

    pairs: dict[tuple[str, str], int] = {}
    distractors: dict[str, int] = {}
    data = read_input(path, what="ground-truth CSV", limit=GROUND_TRUTH_LIMIT, source=source)
    utf16 = utf16_error(str(path), data)
    if utf16 is not None:
        raise utf16
    try:
        with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            first = True
            for row in reader:
                line = reader.line_num
                cells = [c.strip() for c in row]
                if not cells or cells == [""]:
                    continue
                if first:
                    first = False
                    header = tuple(c.lower() for c in cells)
                    if header == HEADER:
                        continue
                    if header == (*HEADER, "score"):
                        raise InputFileError(
                            str(path),
                            [
                                Problem(
                                    line, "", ",".join(row), "this is a predictions file, not a ground truth"
                                )
                            ],
                            hint="pass the ground truth (query_id,reference_id) here",
                        )
                    if len(cells) == 2 and not is_query(cells[0]) and not cells[0].startswith("Q"):
                        problem(line, "", ",".join(row), f"unexpected header; expected {','.join(HEADER)}")
                        continue
                if len(cells) != 2:
                    problem(
                        line,
                        "",
                        ",".join(row),
                        f"expected 2 columns (query_id,reference_id), got {len(cells)}",
                    )
                    continue
                q, r = cells
                ok = True
                if not is_query(q):
                    problem(line, "query_id", q, f"not a query id ({query_desc})")
                    ok = False
                if r and not is_ref(r):
                    problem(line, "reference_id", r, f"not a reference id ({ref_desc})")
                    ok = False
                if not ok:
                    continue
                if not r:
                    if q in distractors:
                        problem(line, "query_id", q, f"distractor repeated (first on line {distractors[q]})")
                    else:
                        distractors[q] = line
                elif (q, r) in pairs:
                    problem(line, "", f"{q},{r}", f"duplicate row (first on line {pairs[q, r]})")
                else:
                    pairs[q, r] = line
    except (csv.Error, UnicodeDecodeError, OSError) as err:
        line = reader.line_num if isinstance(err, csv.Error) else 0
        raise InputFileError.from_read_error(str(path), err, line) from err

    matched = {q: line for (q, _), line in pairs.items()}
    for q, line in distractors.items():
        if q in matched:
            problem(line, "query_id", q, f"listed as a distractor and as matched on line {matched[q]}")
    problem.raise_if_any(str(path), hint="expected rows 'Q12345,R123456' (or 'Q12345,' for a distractor)")
    if not pairs and not distractors:
        raise InputFileError(str(path), [Problem(0, "", "", "no ground-truth rows")])
    gt = GroundTruth(frozenset(pairs), frozenset(matched) | frozenset(distractors), None, str(path))
    logger.info("ground truth %s: %d pairs, %d queries", path, gt.n_pairs, len(gt.queries))
    return gt


@dataclass(frozen=True)
class RestrictReport:
    """What :func:`restrict` kept and why it dropped the rest."""

    queries_before: int
    queries_after: int
    pairs_before: int
    pairs_after: int
    pairs_dropped_query: int
    pairs_dropped_reference: int
    new_distractors: int

    def summary(self) -> str:
        return (
            f"{self.pairs_after} of {self.pairs_before} ground-truth pairs kept "
            f"({self.pairs_dropped_query} dropped with their query, {self.pairs_dropped_reference} "
            f"because the reference is not selected); {self.queries_after} of {self.queries_before} "
            f"queries kept, {self.new_distractors} of them became distractors"
        )


def restrict(
    gt: GroundTruth,
    query_ids: Iterable[str] | None = None,
    reference_ids: Iterable[str] | None = None,
) -> tuple[GroundTruth, RestrictReport]:
    """Keep only the queries in ``query_ids`` and the references in ``reference_ids``.

    ``None`` keeps all of that side. A kept query whose matching reference is not selected
    becomes a distractor (its copy is not in the searched collection), as in the ISC subsets.
    """
    queries = gt.queries if query_ids is None else gt.queries & frozenset(query_ids)
    refs = gt.references
    if reference_ids is not None:
        selected = frozenset(reference_ids)
        refs = selected if refs is None else refs & selected
    by_query = {p for p in gt.pairs if p[0] in queries}
    kept = by_query if refs is None else {p for p in by_query if p[1] in refs}
    before_matched = {q for q, _ in by_query}
    after_matched = {q for q, _ in kept}
    report = RestrictReport(
        queries_before=len(gt.queries),
        queries_after=len(queries),
        pairs_before=gt.n_pairs,
        pairs_after=len(kept),
        pairs_dropped_query=gt.n_pairs - len(by_query),
        pairs_dropped_reference=len(by_query) - len(kept),
        new_distractors=len(before_matched - after_matched),
    )
    logger.info("restricted ground truth: %s", report.summary())
    return GroundTruth(frozenset(kept), queries, refs, gt.source), report


def outside_phase(query_ids: Iterable[str], phase: Phase) -> list[str]:
    """The query ids (sorted) that are not queries of ``phase`` (Phase 1: Q00000-Q49999, 2: Q50000-Q99999)."""
    iset = phase.queries
    pattern = re.compile(iset.id_pattern)
    return sorted(
        q for q in set(query_ids) if not (pattern.match(q) and iset.first <= int(q[1:]) <= iset.last)
    )


def check_phase(
    gt: GroundTruth, phase: Phase, *, what: str | None = None, fix: str = "or the matching --phase"
) -> None:
    """Raise a one-line :class:`ConfigError` when ``gt`` lists queries of another phase than ``phase``."""
    stray = outside_phase(gt.queries, phase)
    if stray:
        other = next((p for p in PHASES.values() if not outside_phase(stray[:1], p)), None)
        which = f"Phase-{other.number}" if other else "non-Phase-" + str(phase.number)
        raise ConfigError(
            f"{what or gt.source}: {len(stray):,} of its {len(gt.queries):,} queries (first {stray[0]}) are "
            f"{which} queries, not Phase {phase.number} ({phase.queries.first_id}..{phase.queries.last_id}); "
            f"pass the Phase-{phase.number} ground truth ({phase.ground_truth_name}) {fix}"
        )
