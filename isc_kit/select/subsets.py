"""Ground-truth-aware subsets: sampled queries keep every reference they match, plus seeded distractors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import ConfigError
from .samples import sample_ids


def ground_truth_subset(
    pairs: Iterable[tuple[str, str]],
    query_ids: Sequence[str],
    reference_ids: Sequence[str],
    *,
    queries: int,
    distractors: int = 0,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """Seeded ``queries`` queries, every reference they match, and ``distractors`` unmatched references.

    ``pairs`` are (query_id, reference_id) ground-truth matches; ``query_ids`` every ground-truth
    query (distractor queries included); ``reference_ids`` the pool of references. Returns
    sorted (query ids, reference ids).
    """
    for name, value in (("queries", queries), ("distractors", distractors)):
        if value < 0:
            raise ConfigError(f"ground-truth {name} must be 0 or more, not {value}")
    matches: dict[str, set[str]] = {}
    matched_refs: set[str] = set()
    for q, r in pairs:
        matches.setdefault(q, set()).add(r)
        matched_refs.add(r)
    chosen_q = sample_ids(list(query_ids), queries, seed)
    refs = set().union(*(matches.get(q, set()) for q in chosen_q)) if chosen_q else set()
    pool = [r for r in reference_ids if r not in matched_refs]
    refs.update(sample_ids(pool, distractors, seed))
    return sorted(chosen_q), sorted(refs)


# ---------------------------------------------------------------------------------------------- building a set
