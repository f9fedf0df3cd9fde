"""The scores of one evaluation (either track) and the counts that say what was scored."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EvalResult:
    """µAP and friends; counts say what was scored and what was left out."""

    muap: float
    recall_at_p90: float | None
    threshold_at_p90: float | None
    recall_at_rank1: float
    recall_at_rank10: float
    n_predictions: int  # scored
    n_true_positives: int  # among the scored predictions
    n_gt_pairs: int
    n_queries: int  # in the ground truth, distractors included
    n_input: int  # predictions given
    n_dropped: (
        int  # left out for their query: not selected, or (restrict_to_ground_truth) not in the ground truth
    )
    n_dropped_reference: int  # left out for their reference: not selected
    n_truncated: int  # beyond max_predictions (cap "top" only)
    n_outside_ground_truth: int = (
        0  # scored predictions whose query the ground truth does not list (all wrong)
    )
    precisions: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0))
    recalls: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0))
    thresholds: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict[str, float | int | None]:
        """Scalar fields only, JSON-ready."""
        skip = {"precisions", "recalls", "thresholds"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def summary(self) -> str:
        p90 = (
            f"{self.recall_at_p90:.4f} (score >= {self.threshold_at_p90:.6g})"
            if self.recall_at_p90 is not None
            else "precision 0.9 not reached"
        )
        lines = [
            f"µAP               {self.muap:.4f}",
            f"recall at P90     {p90}",
            f"recall at rank 1  {self.recall_at_rank1:.4f}",
            f"recall at rank 10 {self.recall_at_rank10:.4f}",
            f"scored {self.n_predictions} predictions ({self.n_true_positives} correct) against "
            f"{self.n_gt_pairs} ground-truth pairs over {self.n_queries} queries",
        ]
        if self.n_outside_ground_truth:
            lines.append(
                f"{self.n_outside_ground_truth} scored predictions are for queries not in the ground truth "
                "(false positives, as the official isc2021 code counts them)"
            )
        left_out = []
        if self.n_dropped:
            left_out.append(f"{self.n_dropped} for queries not selected or not in the ground truth")
        if self.n_dropped_reference:
            left_out.append(f"{self.n_dropped_reference} for references not selected")
        if self.n_truncated:
            left_out.append(f"{self.n_truncated} beyond the maximum")
        if left_out:
            lines.append("left out: " + ", ".join(left_out))
        return "\n".join(lines)
