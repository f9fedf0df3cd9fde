"""Error analysis at the competition's size: 500,000 predictions (10 per query) over 50,000 queries.

Times :func:`isc_kit.analysis.analyse` (µAP through evaluate, labels, ranks, the per-query table),
a filter, ten per-query details and the PR curve on synthetic predictions (10,000 matched queries,
half of them with the true reference at rank 1), median of ``--rounds``.

    python -m bench.error_analysis --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from isc_kit.analysis import analyse, filter_queries, pr_curve, query_detail
from isc_kit.evaluate import Predictions
from isc_kit.groundtruth import GroundTruth


def synthetic(n_queries: int = 50_000, k: int = 10, seed: int = 0) -> tuple[GroundTruth, Predictions]:
    rng = np.random.default_rng(seed)
    queries = [f"Q{i:05d}" for i in range(n_queries)]
    first = rng.integers(0, 1_000_000, n_queries)
    refs = np.array([f"R{(x + j * 7919) % 1_000_000:06d}" for x in first for j in range(k)], dtype=object)
    truth = {queries[i]: f"R{(int(first[i]) + 500_000) % 1_000_000:06d}" for i in range(0, n_queries, 5)}
    for n, (q, r) in enumerate(truth.items()):
        if n % 2 == 0:  # half the matched queries find their reference at rank 1
            refs[int(q[1:]) * k] = r
    gt = GroundTruth.from_pairs(truth.items(), distractors=[q for q in queries if q not in truth])
    scores = rng.random(n_queries * k)
    return gt, Predictions(np.repeat(np.array(queries, dtype=object), k), refs, scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gt, predictions = synthetic()
    times: dict[str, list[float]] = {"analyse": [], "filter": [], "10 details": [], "pr curve": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        report = analyse(gt, predictions, top_k=5)
        t1 = time.perf_counter()
        ids = filter_queries(report, "false positives", threshold=0.5)
        t2 = time.perf_counter()
        for q in ids[:10]:
            query_detail(report, q)
        t3 = time.perf_counter()
        pr_curve(report.result)
        t4 = time.perf_counter()
        for name, t in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[name].append(t)
    print(f"{len(predictions):,} predictions over {len(gt.queries):,} queries ({gt.n_pairs:,} pairs)")
    for name, values in times.items():
        print(f"{name:12} {statistics.median(values):8.3f} s")


if __name__ == "__main__":
    main()
