"""The pair viewer: a query beside its reference(s) from the ground truth, stepped through one by one;
distractor queries (no reference) are shown with their best candidates from a predictions file
when one is given (``query_id,reference_id,score``, e.g. the pipeline's ``predictions/baseline.csv``).

``pair_items`` (pure) lists what to step through; :class:`PairViewer` shows item ``index`` and
exposes ``query_id`` and ``reference_ids`` as traits.
"""

from __future__ import annotations

import csv
import html
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import Int, List, Unicode, observe, validate

from ..errors import ConfigError, InputFileError, IscKitError, Problem
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from ._keys import KeyListener
from .imagesource import ImageSource, entries
from .thumbnails import ThumbnailCache, shown_state

logger = logging.getLogger(__name__)

SHOW = ("all", "matched", "distractors")
PAIR_SIDE = 320
#: How many of a distractor's best-scoring candidates are shown.
CANDIDATES = 3


@dataclass(frozen=True)
class PairItem:
    """One query and the references it matches (empty for a distractor)."""

    query_id: str
    reference_ids: tuple[str, ...]

    @property
    def is_distractor(self) -> bool:
        return not self.reference_ids


def pair_items(ground_truth: GroundTruth, query_ids: Any = None, *, show: str = "all") -> list[PairItem]:
    """Queries of the ground truth (only those in ``query_ids`` when given), sorted, with their references."""
    if show not in SHOW:
        raise ConfigError(f"show must be one of {', '.join(SHOW)}, not {show!r}")
    refs: dict[str, list[str]] = {}
    for q, r in ground_truth.pairs:
        refs.setdefault(q, []).append(r)
    queries = ground_truth.queries if query_ids is None else ground_truth.queries & set(query_ids)
    items = [PairItem(q, tuple(sorted(refs.get(q, ())))) for q in sorted(queries)]
    if show == "matched":
        return [i for i in items if not i.is_distractor]
    if show == "distractors":
        return [i for i in items if i.is_distractor]
    return items


def best_candidates(
    predictions: str | os.PathLike[str] | Any, k: int = CANDIDATES
) -> dict[str, list[tuple[str, float]]]:
    """``{query_id: [(reference_id, score), ...]}``, the ``k`` highest scores per query, from a predictions
    CSV (header ``query_id,reference_id,score``) or a DataFrame with those columns."""
    rows: list[tuple[str, str, float]] = []
    if hasattr(predictions, "itertuples"):
        rows = [(str(r.query_id), str(r.reference_id), float(r.score)) for r in predictions.itertuples()]
    else:
        path = Path(predictions)
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                for n, row in enumerate(csv.DictReader(fh), start=2):
                    try:
                        rows.append((row["query_id"], row["reference_id"], float(row["score"])))
                    except (KeyError, TypeError, ValueError):
                        raise InputFileError(
                            str(path),
                            [Problem(n, "", str(row), "expected query_id,reference_id,score")],
                            hint="give the predictions CSV the pipeline writes (predictions/baseline.csv)",
                        ) from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputFileError.from_read_error(str(path), err) from None
    best: dict[str, list[tuple[str, float]]] = {}
    for q, r, score in rows:
        best.setdefault(q, []).append((r, score))
    return {q: sorted(c, key=lambda x: -x[1])[:k] for q, c in best.items()}


def pair_caption(item: PairItem) -> str:
    if item.is_distractor:
        return f"{item.query_id}: distractor (no reference image is a copy of it)"
    n = len(item.reference_ids)
    return f"{item.query_id}: edited copy of {', '.join(item.reference_ids)}" + (
        f" ({n} references)" if n > 1 else ""
    )


class _Panel(widgets.VBox):
    def __init__(self, css: str):
        self.title = widgets.HTML()
        self.image = widgets.Image(format="jpeg")
        super().__init__([self.title, self.image], layout=widgets.Layout(margin="0 8px 0 0"))
        self.add_class(css)


class PairViewer(widgets.VBox):
    """Step through ground-truth pairs: the query on the left, its reference(s) on the right."""

    index = Int(0)
    show = Unicode("all")
    query_id = Unicode("")
    reference_ids: List[str] = List()
    caption = Unicode("")
    message = Unicode("")

    def __init__(
        self,
        ground_truth: GroundTruth,
        queries: Manifest,
        references: Manifest,
        images: ImageSource | Mapping[str, ImageSource],
        *,
        thumbnails: ThumbnailCache | None = None,
        predictions: str | os.PathLike[str] | Any = None,
        **kwargs: Any,
    ):
        self._gt = ground_truth
        self._candidates = best_candidates(predictions) if predictions is not None else {}
        self._queries, self._references = queries, references
        self._images = dict(images) if isinstance(images, Mapping) else None
        self._image = None if isinstance(images, Mapping) else images
        directory = thumbnails._directory if thumbnails is not None else None
        self._thumbs = ThumbnailCache(directory, max_side=PAIR_SIDE)
        self._items: list[PairItem] = []
        self._show_box = widgets.ToggleButtons(options=list(SHOW), value="all")
        self._prev = widgets.Button(
            icon="angle-left", tooltip="previous", layout=widgets.Layout(width="40px")
        )
        self._next = widgets.Button(icon="angle-right", tooltip="next", layout=widgets.Layout(width="40px"))
        self._label = widgets.Label()
        self._jump_box = widgets.Text(
            placeholder="go to query, e.g. Q00123",
            continuous_update=False,
            layout=widgets.Layout(width="200px"),
        )
        self._jump_box.add_class("isc-pair-jump")
        self._jump_box.observe(self._on_jump_box_value, "value")
        self._keys = KeyListener(scope="isc-pairs", active=True)  # ← → step while the viewer has focus
        self._keys.observe(self._on_keys_count, "count")
        self._caption_box = widgets.HTML()
        self._caption_box.add_class("isc-pair-caption")
        self._query_panel = _Panel("isc-pair-query")
        self._ref_box = widgets.HBox()
        self._prev.on_click(lambda _b: self._step(-1))
        self._next.on_click(lambda _b: self._step(1))
        widgets.link((self._show_box, "value"), (self, "show"))
        super().__init__(
            [
                widgets.HBox([self._show_box]),
                widgets.HBox([self._prev, self._label, self._next, self._jump_box]),
                self._caption_box,
                widgets.HBox([self._query_panel, self._ref_box]),
                self._keys,
            ],
            **kwargs,
        )
        self.add_class("isc-pairs")
        self._refresh_items()

    @property
    def items(self) -> list[PairItem]:
        return list(self._items)

    def show_query(self, query_id: str) -> bool:
        """Step to ``query_id`` (switching to "all" when the current filter hides it); False if unknown."""
        ids = [i.query_id for i in self._items]
        if query_id not in ids and self.show != "all":
            self.show = "all"
            ids = [i.query_id for i in self._items]
        if query_id not in ids:
            return False
        self.index = ids.index(query_id)
        return True

    def _source_for(self, set_name: str) -> ImageSource:
        if self._images is not None:
            return self._images.get(set_name) or self._images["*"]
        assert self._image is not None  # one of the two is set by the constructor
        return self._image

    def _on_jump_box_value(self, change: dict[str, Any]) -> None:
        wanted = change["new"].strip()
        if wanted and not self.show_query(wanted):
            self.message = f"{wanted} is not a query of this ground truth and selection; check the id"
            self._caption_box.value = f'<span class="isc-error">{html.escape(self.message)}</span>'

    def _on_keys_count(self, change: dict[str, Any]) -> None:
        if self._keys.key in ("ArrowLeft", "ArrowRight"):
            self._step(-1 if self._keys.key == "ArrowLeft" else 1)

    @observe("show")
    def _on_show(self, change: dict[str, Any]) -> None:
        self._refresh_items()

    @validate("index")
    def _valid_index(self, proposal: dict[str, Any]) -> int:
        return min(max(int(proposal["value"]), 0), max(len(self._items) - 1, 0))

    @observe("index")
    def _on_index(self, change: dict[str, Any]) -> None:
        self._render()

    def _step(self, delta: int) -> None:
        self.index = self.index + delta

    def _refresh_items(self) -> None:
        self._items = pair_items(self._gt, self._queries.ids, show=self.show)
        if self.index != 0:
            self.index = 0
        else:
            self._render()

    def _render(self) -> None:
        n = len(self._items)
        self._prev.disabled = self.index <= 0
        self._next.disabled = self.index >= n - 1
        if not n:
            self._label.value = f"no {self.show} queries"
            self.query_id, self.reference_ids, self.caption = "", [], ""
            self._caption_box.value = ""
            self._query_panel.layout.display = "none"
            self._ref_box.children = ()
            return
        item = self._items[self.index]
        self.message = ""
        self._label.value = f"query {self.index + 1} / {n}"
        self._query_panel.layout.display = "flex"
        self._fill(self._query_panel, self._queries, item.query_id, "query")
        panels = []
        for ref in item.reference_ids:
            panel = _Panel("isc-pair-reference")
            self._fill(panel, self._references, ref, "reference")
            panels.append(panel)
        if item.is_distractor:
            note = _Panel("isc-pair-distractor")
            note.title.value = "<b>distractor</b>: no reference" + (
                "; its best candidates:" if self._candidates.get(item.query_id) else ""
            )
            note.image.layout.display = "none"
            panels.append(note)
            for ref, score in self._candidates.get(item.query_id, []):
                panel = _Panel("isc-pair-candidate")
                self._fill(panel, self._references, ref, f"candidate (score {score:.3f})")
                panels.append(panel)
        self._ref_box.children = tuple(panels)
        self.caption = pair_caption(item)
        css = "isc-distractor" if item.is_distractor else "isc-matched"
        if self.message:  # a read failed: say why, once, instead of the caption
            css, text = "isc-error", self.message
        else:
            text = self.caption
        self._caption_box.value = f'<span class="{css}">{html.escape(text)}</span>'
        self.query_id, self.reference_ids = item.query_id, list(item.reference_ids)

    def _fill(self, panel: _Panel, manifest: Manifest, image_id: str, role: str) -> None:
        found = entries(manifest, [image_id])
        if not found:
            panel.title.value = (
                f"<b>{role}</b> {html.escape(image_id)} (not in the {manifest.set_name} selection)"
            )
            panel.image.layout.display = "none"
            return
        try:
            thumb = self._thumbs.load(self._source_for(manifest.set_name), manifest, found)[0]
        except IscKitError as err:  # e.g. the endpoint is down: one plain line, no blank tile
            panel.title.value = f"<b>{role}</b> {html.escape(image_id)}"
            panel.image.layout.display = "none"
            self.message = str(err)
            return
        panel.image.layout.display = "block"
        panel.image.format = thumb.format
        panel.image.value = thumb.data
        state = self._source_for(manifest.set_name).state(manifest, found[0]) if thumb.problem else ""
        extra = f" ({shown_state(thumb.problem, state)})" if thumb.problem else ""
        panel.title.value = f"<b>{role}</b> {html.escape(image_id)}{extra}"
