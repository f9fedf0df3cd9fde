"""Error analysis in the notebook: per query, its true reference(s) beside its top-k predictions.

:class:`ErrorAnalysis` shows a page of queries (all, the misses, the false positives above a
threshold, or the distractor queries scoring above it), sorted by score, each with its true
references and its top-k predictions marked correct or wrong, and a precision-recall curve with
the operating point at precision 0.9. Clicking a query shows its predictions as thumbnails and
moves the :class:`~isc_kit.widgets.PairViewer` below to it. The logic is :mod:`isc_kit.analysis`.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Enum, Float, Int, List, Unicode, observe, validate

from ..analysis import (
    SHOW,
    SORT,
    Candidate,
    ErrorReport,
    PRCurve,
    QueryDetail,
    analyse,
    filter_queries,
    point_at,
    pr_curve,
    verdict,
)
from ..analysis import query_detail as _query_detail
from ..errors import ConfigError
from ..evaluate import Predictions, load_predictions
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from .imagesource import ImageSource, entries
from .overview import figure_png
from .pairs import PairViewer
from .thumbnails import ThumbnailCache

logger = logging.getLogger(__name__)

STRIP_SIDE = 128
RIGHT, WRONG = "#1b7a2e", "#b00020"
STYLE = """<style>
.isc-err-row { border-bottom: 1px solid #eee; padding: 2px 0; align-items: center; }
.isc-err-row.isc-err-selected { background: #eef4fc; }
.isc-err-query { font-family: monospace; width: 90px; }
.isc-err-cells { font-family: monospace; font-size: 12px; }
.isc-err-strip img { max-width: 128px; max-height: 128px; object-fit: contain; }
.isc-err-card { margin: 0 6px 0 0; border: 2px solid #ddd; border-radius: 4px; padding: 2px; }
.isc-err-card.isc-err-right { border-color: #1b7a2e; }
.isc-err-card.isc-err-wrong { border-color: #b00020; }
</style>"""
_RANK_WORDS = {"hit": "rank 1", "in top-k": "in the top k", "miss": "not in the top k"}


def plot_pr(curve: PRCurve, threshold_point: tuple[float, float] | None = None) -> Any:
    """A matplotlib Figure of the precision-recall curve, the P90 operating point and the current threshold."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.4, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.step(curve.recall, curve.precision, where="pre", color="#4a90d9", label=f"µAP {curve.muap:.3f}")
    ax.axhline(0.9, color="#999", linestyle=":", linewidth=1)
    if curve.operating_recall is not None and curve.operating_precision is not None:
        ax.plot(
            [curve.operating_recall],
            [curve.operating_precision],
            "o",
            color=WRONG,
            label=f"P≥0.9: recall {curve.operating_recall:.3f} (score ≥ {curve.operating_threshold:.3g})",
        )
    if threshold_point is not None:
        ax.plot(*threshold_point, "x", color="black", markersize=8, label="threshold below")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel="recall", ylabel="precision", title="precision-recall")
    ax.legend(loc="center right", fontsize=8)
    return fig


def _score(c: Candidate) -> str:
    return "not predicted" if c.score is None else f"#{c.rank} {c.score:.3f}"


def _mark(c: Candidate, threshold: float) -> str:
    colour, sign = (RIGHT, "✓") if c.correct else (WRONG, "✗")
    text = f"{html.escape(c.reference_id)} {c.score:.3f} {sign}"
    weight = "bold" if c.score is not None and c.score >= threshold else "normal"
    css = "isc-err-correct" if c.correct else "isc-err-wrong"
    return f'<span class="{css}" style="color:{colour};font-weight:{weight}">{text}</span>'


def row_html(detail: QueryDetail, threshold: float) -> str:
    """One query's line: its verdict at the threshold, true references (rank and score), its top-k ✓ / ✗."""
    word = verdict(detail, threshold)
    colour = RIGHT if word == "found" else "#555" if word == "distractor" else WRONG
    status = f'<span class="isc-err-status" style="color:{colour}">{html.escape(word)}</span>'
    if detail.true_refs:
        truth = ", ".join(f"{html.escape(c.reference_id)} ({_score(c)})" for c in detail.true_refs)
    else:
        truth = "none (distractor)"
    top = " · ".join(_mark(c, threshold) for c in detail.top) or "no predictions"
    return f"{status} &nbsp; true: {truth}<br>&nbsp;&nbsp;top: {top}"


class _Row(widgets.HBox):
    def __init__(self, on_click: Any):
        self.button = widgets.Button(layout=widgets.Layout(width="90px"))
        self.button.add_class("isc-err-query")
        self.cells = widgets.HTML()
        self.cells.add_class("isc-err-cells")
        self.button.on_click(lambda b: on_click(b.description))
        super().__init__([self.button, self.cells])
        self.add_class("isc-err-row")


class ErrorAnalysis(widgets.VBox):
    """Misses, false positives and high-scoring distractors of a predictions file, query by query."""

    show = Enum(SHOW, default_value=SHOW[0])
    sort = Enum(SORT, default_value=SORT[0])
    threshold = Float(0.0)
    page = Int(0)
    query_id = Unicode("")  # the selected query
    shown_ids: List[str] = List()
    selected_text = Unicode("")

    def __init__(
        self,
        ground_truth: GroundTruth,
        predictions: Predictions | str | os.PathLike[str],
        queries: Manifest,
        references: Manifest,
        images: ImageSource | Mapping[str, ImageSource],
        *,
        top_k: int = 5,
        page_size: int = 10,
        thumbnails: ThumbnailCache | None = None,
        **kwargs: Any,
    ):
        if page_size < 1:
            raise ConfigError(f"page_size must be at least 1, got {page_size}")
        if not isinstance(predictions, Predictions):
            predictions = load_predictions(os.fspath(predictions))
        self.report: ErrorReport = analyse(ground_truth, predictions, top_k=top_k)
        self._curve = pr_curve(self.report.result)
        self._queries, self._references = queries, references
        self._images = images
        directory = thumbnails._directory if thumbnails is not None else None
        self._thumbs = ThumbnailCache(directory, max_side=STRIP_SIDE)
        self._ids: list[str] = []
        self._ready = False  # no refresh until every child exists
        self._show_box = widgets.ToggleButtons(options=list(SHOW), value=SHOW[0])
        self._show_box.add_class("isc-err-show")
        self._sort_box = widgets.Dropdown(
            options=list(SORT), value=SORT[0], layout=widgets.Layout(width="110px")
        )
        self._threshold_box = widgets.FloatText(
            value=self.report.threshold,
            step=0.01,
            description="threshold",
            layout=widgets.Layout(width="190px"),
        )
        self._threshold_box.add_class("isc-err-threshold")
        self._prev = widgets.Button(
            icon="angle-left", tooltip="previous page", layout=widgets.Layout(width="40px")
        )
        self._next = widgets.Button(
            icon="angle-right", tooltip="next page", layout=widgets.Layout(width="40px")
        )
        self._page_label = widgets.Label()
        self._page_label.add_class("isc-err-page")
        self._rows = [_Row(self.select) for _ in range(page_size)]
        self._list = widgets.VBox(self._rows, layout=widgets.Layout(flex="1 1 auto", margin="0 8px 0 0"))
        self._plot = widgets.Image(format="png", layout=widgets.Layout(width="400px", height="auto"))
        self._plot.add_class("isc-err-pr")
        self._strip = widgets.HBox()
        self._strip.add_class("isc-err-strip")
        self._summary = widgets.HTML(STYLE + self._summary_html())
        self._summary.add_class("isc-err-summary")
        self.viewer = PairViewer(ground_truth, queries, references, images, thumbnails=thumbnails)
        self._prev.on_click(lambda _b: self._step(-1))
        self._next.on_click(lambda _b: self._step(1))
        super().__init__(
            [
                self._summary,
                widgets.HBox([self._show_box, self._threshold_box, self._sort_box]),
                widgets.HBox([self._prev, self._page_label, self._next]),
                widgets.HBox([self._list, self._plot], layout=widgets.Layout(align_items="flex-start")),
                self._strip,
                self.viewer,
            ],
            **kwargs,
        )
        self.add_class("isc-errors")
        self.threshold = self.report.threshold
        widgets.link((self._show_box, "value"), (self, "show"))
        widgets.link((self._sort_box, "value"), (self, "sort"))
        widgets.link((self._threshold_box, "value"), (self, "threshold"))
        self._ready = True
        self._refresh()

    # -- state
    @property
    def ids(self) -> list[str]:
        """Every query the current filter and sort give, in order (all pages)."""
        return list(self._ids)

    def query_detail(self, query_id: str) -> QueryDetail:
        """``query_id``'s true references and top-k predictions (see :func:`isc_kit.analysis.query_detail`)."""
        return _query_detail(self.report, query_id)

    @validate("page")
    def _valid_page(self, proposal: dict[str, Any]) -> int:
        pages = max(1, -(-len(self._ids) // len(self._rows)))
        return min(max(int(proposal["value"]), 0), pages - 1)

    @observe("show", "sort", "threshold")
    def _on_filter(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._refresh()

    @observe("page")
    def _on_page(self, change: dict[str, Any]) -> None:
        self._render_page()

    def _step(self, delta: int) -> None:
        self.page = self.page + delta

    def _refresh(self) -> None:
        self._ids = filter_queries(self.report, self.show, threshold=self.threshold, sort=self.sort)
        self._plot.value = figure_png(plot_pr(self._curve, point_at(self.report.result, self.threshold)))
        if self.page != 0:
            self.page = 0
        else:
            self._render_page()

    def _render_page(self) -> None:
        n, size = len(self._ids), len(self._rows)
        start = self.page * size
        shown = self._ids[start : start + size]
        self._prev.disabled = self.page <= 0
        self._next.disabled = start + size >= n
        for row, query_id in zip(self._rows, shown + [""] * (size - len(shown)), strict=True):
            row.layout.display = "flex" if query_id else "none"
            if query_id:
                row.button.description = query_id
                row.cells.value = row_html(self.query_detail(query_id), self.threshold)
                row.remove_class("isc-err-selected")
                if query_id == self.query_id:
                    row.add_class("isc-err-selected")
        self.shown_ids = shown
        self._page_label.value = (  # last: the label says the page is complete
            f"{start + 1}-{start + len(shown)} of {n} queries ({self.show})"
            if n
            else f"no queries ({self.show} at threshold {self.threshold:.3g})"
        )

    # -- selecting a query
    def select(self, query_id: str) -> None:
        """Show ``query_id``'s predictions as thumbnails and move the pair viewer to it."""
        detail = self.query_detail(query_id)
        self.query_id = query_id
        for row in self._rows:
            (row.add_class if row.button.description == query_id else row.remove_class)("isc-err-selected")
        cards = [self._card(self._queries, query_id, f"query {query_id}", None)]
        for c in detail.top:
            cards.append(self._card(self._references, c.reference_id, f"#{c.rank} {c.score:.3f}", c.correct))
        top_ids = {c.reference_id for c in detail.top}
        for c in detail.true_refs:
            if c.reference_id not in top_ids:
                cards.append(self._card(self._references, c.reference_id, f"true, {_score(c)}", True))
        self._strip.children = tuple(cards)
        marks = ", ".join(f"{c.reference_id} {'✓' if c.correct else '✗'}" for c in detail.top)
        self.selected_text = f"{query_id} ({verdict(detail, self.threshold)}): {marks or 'no predictions'}"
        viewer_ids = [item.query_id for item in self.viewer.items]
        if query_id not in viewer_ids and self.viewer.show != "all":
            self.viewer.show = "all"
            viewer_ids = [item.query_id for item in self.viewer.items]
        if query_id in viewer_ids:
            self.viewer.index = viewer_ids.index(query_id)

    def _card(self, manifest: Manifest, image_id: str, caption: str, correct: bool | None) -> widgets.VBox:
        image = widgets.Image(format="jpeg")
        found = entries(manifest, [image_id])
        if found:
            images = self._images
            source = (images.get(manifest.set_name) or images["*"]) if isinstance(images, Mapping) else images
            thumb = self._thumbs.load(source, manifest, found)[0]
            image.format, image.value = thumb.format, thumb.data
        else:
            image.layout.display = "none"
            caption += " (not in the selection)"
        sign = "" if correct is None else (" ✓" if correct else " ✗")
        label = widgets.HTML(f"<b>{html.escape(image_id)}</b>{sign}<br>{html.escape(caption)}")
        card = widgets.VBox([label, image])
        card.add_class("isc-err-card")
        if correct is not None:
            card.add_class("isc-err-right" if correct else "isc-err-wrong")
        return card

    def _summary_html(self) -> str:
        r = self.report.result
        p90 = (
            f"recall {r.recall_at_p90:.3f} at precision 0.9 (score ≥ {r.threshold_at_p90:.4g})"
            if r.recall_at_p90 is not None
            else "precision 0.9 is never reached"
        )
        counts = self.report.queries["status"].value_counts()
        k = self.report.top_k
        ranks = ", ".join(f"{counts.get(s, 0)} {w}".replace(" k", f" {k}") for s, w in _RANK_WORDS.items())
        return (
            f"<b>µAP {r.muap:.3f}</b> · {p90} · {r.n_gt_pairs} ground-truth pairs, "
            f"{r.n_predictions} predictions scored · true reference {ranks}; "
            f"{counts.get('distractor', 0)} distractor queries"
        )
