"""Similarity search in the notebook: the k nearest neighbours of any image in a descriptor file.

:class:`Similar` shows a picked image (type an id, click a tile of a :class:`~.gallery.Gallery` or a
query of an :class:`~.errors.ErrorAnalysis` hooked with :meth:`Similar.follow`, or pass an image file
or array that is in no set) beside its ground-truth partner, then a page of its nearest neighbours
with score, rank and a ground-truth mark: ✓ *match* (the pair is in the ground truth), ✗ *not* (the
query is in the ground truth and this reference is not its partner), ? *unknown* (no ground truth
covers the pair: training images, references among themselves, an outside image). "add these ids
to the selection" writes the neighbours shown (and the picked image) into params.yaml through the
sampler's round-trip editor (:func:`._sampling.use_sample`): a set already pointing at an id file
keeps its ids and gains these. The search is :class:`isc_kit.neighbours.Neighbours`; a large file's
approximate index builds in a thread behind a progress bar, so the notebook stays usable.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from traitlets import Int, List, Unicode, observe

from ..errors import ConfigError, IscKitError
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from ..neighbours import APPROXIMATE_ABOVE, Hit, Neighbours
from ._sampling import UsedSample
from ._selection import UNKNOWN, _set_of, add_to_selection, mark
from ._similar_parts import SIGN, STYLE, Card, WidgetBar, image_bytes
from ._tiles import partners
from .imagesource import ImageSource, entries
from .thumbnails import ThumbnailCache, make_thumbnail, placeholder

logger = logging.getLogger(__name__)


class Similar(widgets.VBox):
    """The nearest neighbours of a picked image, with ground-truth marks (see the module doc).

    ``neighbours``: a :class:`~isc_kit.neighbours.Neighbours`, or the path of the descriptor file to
    search (``lookup`` then names the files whose vectors can be picked by id; above
    ``approximate_above`` vectors an approximate index is built in a thread, see ``build_thread``). ``manifests``:
    ``{set: Manifest}`` of every image that can show; ``images``: their source (or ``{set: source}``).
    """

    query_id = Unicode("")  # the picked image ("" for an outside image or none)
    page = Int(0)
    page_size = Int(8)
    shown_ids: List[str] = List()
    marks: List[str] = List()
    message = Unicode("")

    def __init__(
        self,
        neighbours: Neighbours | str | os.PathLike[str],
        manifests: Mapping[str, Manifest],
        images: ImageSource | Mapping[str, ImageSource],
        *,
        lookup: Iterable[str | os.PathLike[str]] = (),
        ground_truth: GroundTruth | None = None,
        thumbnails: ThumbnailCache | None = None,
        page_size: int = 8,
        params_path: str | os.PathLike[str] = "params.yaml",
        approximate_above: int = APPROXIMATE_ABOVE,
        **kwargs: Any,
    ):
        if page_size < 1:
            raise ConfigError(f"page_size must be at least 1, got {page_size}")
        self.manifests = dict(manifests)
        self._images = dict(images) if isinstance(images, Mapping) else {"*": images}
        self._partners = partners(ground_truth)
        self._thumbs = thumbnails or ThumbnailCache()
        self.params_path = Path(params_path)
        self.hits: list[Hit] = []
        self.build_thread: threading.Thread | None = None  # the approximate index's build, when one runs
        self._outside: np.ndarray | None = None  # the vector of an outside image
        self._outside_bytes: bytes | None = None
        self._id_box = widgets.Text(
            placeholder="image id, e.g. Q00012", continuous_update=False, layout=widgets.Layout(width="220px")
        )
        self._id_box.add_class("isc-sim-input")
        self._prev = widgets.Button(
            icon="angle-left", tooltip="previous page", layout=widgets.Layout(width="40px")
        )
        self._next = widgets.Button(
            icon="angle-right", tooltip="next page", layout=widgets.Layout(width="40px")
        )
        self._page_label = widgets.Label()
        self._page_label.add_class("isc-sim-page")
        self._add = widgets.Button(
            description="add these ids to the selection", icon="plus", layout=widgets.Layout(width="260px")
        )
        self._add.add_class("isc-sim-add")
        self._message_box = widgets.HTML()
        self._message_box.add_class("isc-sim-message")
        self._progress = widgets.IntProgress(description="index", layout=widgets.Layout(display="none"))
        self._head = widgets.HTML()
        self._head.add_class("isc-sim-head")
        self._picked = Card()
        self._partner = Card()
        self._partner.layout.display = "none"
        self._cards: list[Card] = []
        self._grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns="repeat(auto-fill, 176px)", grid_gap="2px")
        )
        self._grid.add_class("isc-sim-hits")
        self._id_box.observe(self._on_id_box, "value")
        self._prev.on_click(lambda _b: setattr(self, "page", max(0, self.page - 1)))
        self._next.on_click(lambda _b: setattr(self, "page", self.page + 1))
        self._add.on_click(lambda _b: self.add_to_selection())
        super().__init__(
            [
                widgets.HTML(STYLE),
                widgets.HBox([self._id_box, self._prev, self._page_label, self._next, self._add]),
                self._progress,
                self._message_box,
                self._head,
                widgets.HBox([self._picked, self._partner]),
                self._grid,
            ],
            **kwargs,
        )
        self.add_class("isc-similar")
        if isinstance(neighbours, Neighbours):
            self.neighbours = neighbours
        else:
            self.neighbours = Neighbours(
                neighbours,
                lookup=lookup,
                manifests=self.manifests,
                build=False,
                approximate_above=approximate_above,
            )
        if not self.neighbours.ready:
            self._build()
        self.page_size = page_size
        self._render()

    # ------------------------------------------------------------------------------ public API

    def show(self, what: str | os.PathLike[str] | bytes | np.ndarray) -> None:
        """Pick an image: an id (of any set with a descriptor), an image file, bytes, pixels or a vector."""
        try:
            if isinstance(what, str) and self.neighbours.has(what.strip()):
                self._outside = self._outside_bytes = None
                with self.hold_trait_notifications():
                    self.page = 0
                    self.query_id = what.strip()
                self._search()
                return
            vector = self.neighbours.as_vector(what)
        except IscKitError as err:
            self._say(str(err), error=True)
            return
        self._outside = vector
        self._outside_bytes = image_bytes(what)
        with self.hold_trait_notifications():
            self.page = 0
            self.query_id = ""
        self._search()

    def follow(self, widget: Any) -> None:
        """Search whatever ``widget`` selects: a Gallery's enlarged tile (``selected``) or an
        ErrorAnalysis query (``query_id``)."""
        trait = "selected" if widget.has_trait("selected") else "query_id"

        def picked(change: dict[str, Any]) -> None:
            if change["new"]:
                self.show(change["new"])

        widget.observe(picked, trait)

    def click(self, image_id: str) -> None:
        """Pick a shown neighbour, as clicking its id does."""
        self.show(image_id)

    def add_to_selection(self) -> UsedSample | None:
        """Write the shown neighbours (and the picked image) to params.yaml; None (and a message) on error."""
        ids = [*([self.query_id] if self.query_id else []), *self.shown_ids]
        try:
            used = add_to_selection(self.manifests, ids, self.params_path)
        except IscKitError as err:
            self._say(str(err), error=True)
            return None
        self._say(used.summary())
        return used

    # ------------------------------------------------------------------------------ logic

    def _build(self) -> None:
        nb = self.neighbours
        if not nb.approximate:
            nb.build(progress=False)
            return
        self._progress.max = 1 + -(-len(nb) // 65_536)  # training, then one step per chunk added
        self._progress.layout.display = "flex"
        self._say(f"building the approximate index over {len(nb):,} vectors…")

        def run() -> None:
            try:
                nb.build(progress=WidgetBar(self._progress))
            except Exception as err:  # shown in the widget: a thread's exception would be lost
                self._say(f"index build failed: {err}", error=True)
                return
            self._progress.layout.display = "none"
            self._say("")
            if self.query_id or self._outside is not None:
                self._search()

        self.build_thread = threading.Thread(target=run, name="isc-similar-index", daemon=True)
        self.build_thread.start()

    @observe("page", "page_size")
    def _on_page(self, change: dict[str, Any]) -> None:
        if self.page < 0:
            self.page = 0
            return
        self._search()

    def _on_id_box(self, change: dict[str, Any]) -> None:
        if change["new"].strip():
            self.show(change["new"].strip())

    def _search(self) -> None:
        what: Any = self._outside if self._outside is not None else self.query_id
        if (isinstance(what, str) and not what) or not self.neighbours.ready:
            self.hits = []
            self._render()
            return
        try:
            self.hits = self.neighbours.query(what, self.page_size, offset=self.page * self.page_size)
        except IscKitError as err:
            self._say(str(err), error=True)
            return
        if not self.hits and self.page > 0:
            self.page -= 1  # past the last neighbour: back to the last page
            return
        self._say("")
        self._render()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message = text
        shown = html.escape(text)
        self._message_box.value = (
            f'<span class="{"isc-error" if error else "isc-ok"}">{shown}</span>' if text else ""
        )

    def _images_for(self, set_name: str) -> ImageSource:
        return self._images.get(set_name) or self._images["*"]

    def _thumbs_of(self, ids: list[str]) -> dict[str, tuple[bytes, str]]:
        out: dict[str, tuple[bytes, str]] = {}
        by_set: dict[str, list[str]] = {}
        for i in ids:
            s = _set_of(self.manifests, i)
            if s is None:
                out[i] = (placeholder("no image", 160), "png")
            else:
                by_set.setdefault(s, []).append(i)
        for s, group in by_set.items():
            manifest = self.manifests[s]
            try:
                for t in self._thumbs.load(self._images_for(s), manifest, entries(manifest, group)):
                    out[t.image_id] = (t.data, t.format)
            except IscKitError as err:
                self._say(str(err), error=True)
                for i in group:
                    out[i] = (placeholder("not loaded", 160), "png")
        return out

    def _partner_id(self) -> tuple[str, str]:
        if self._partners is None or not self.query_id:
            return "", ""
        refs, copies, queries = self._partners
        if self.query_id in refs:
            return refs[self.query_id][0], f"edited copy of {', '.join(refs[self.query_id])}"
        if self.query_id in copies:
            return copies[self.query_id][0], f"copied by {', '.join(copies[self.query_id])}"
        if self.query_id in queries:
            return "", "distractor (no reference is its source)"
        return "", "not in the ground truth"

    def _render(self) -> None:
        picked = self.query_id
        partner, truth = self._partner_id()
        shown = [h.image_id for h in self.hits]
        thumbs = self._thumbs_of([*([picked] if picked else []), *([partner] if partner else []), *shown])
        nb = self.neighbours
        kind = f"approximate (IVF{nb.nlist}, nprobe {nb.nprobe})" if nb.approximate else "exact"
        where = f"{len(nb):,} × {nb.dim}-d in {nb.path.name if nb.path else 'memory'}, {kind} {nb.metric}"
        first = self.page * self.page_size
        if picked or self._outside is not None:
            name = picked or "outside image"
            self._head.value = (
                f"<b>{html.escape(name)}</b>: neighbours {first + 1}–{first + len(shown)} · {where}"
            )
        else:
            self._head.value = f"pick an image (type an id or click a tile) · {where}"
        self._page_label.value = f"page {self.page + 1}" if shown else ""
        self._prev.disabled = self.page == 0
        self._next.disabled = len(shown) < self.page_size
        self._add.disabled = not shown
        # the picked image and its ground-truth partner
        if picked:
            self._picked.image.value, self._picked.image.format = thumbs[picked]
        elif self._outside_bytes is not None:
            self._picked.image.value, self._picked.image.format = make_thumbnail(self._outside_bytes), "jpeg"
        else:
            self._picked.image.value, self._picked.image.format = placeholder("no image", 160), "png"
        self._picked.button.description = picked or ("outside image" if self._outside is not None else "")
        self._picked.caption.value = html.escape(f"ground truth: {truth}") if truth else ""
        self._picked.layout.display = "flex" if (picked or self._outside is not None) else "none"
        if partner:
            self._partner.image.value, self._partner.image.format = thumbs[partner]
            self._partner.button.description = partner
            self._partner.caption.value = "ground-truth partner"
            self._partner.layout.display = "flex"
        else:
            self._partner.layout.display = "none"
        # the neighbours
        while len(self._cards) < len(shown):
            self._cards.append(Card(self.click))
        words = [mark(picked, h.image_id, self._partners) if picked else UNKNOWN for h in self.hits]
        for card, hit, word in zip(self._cards, self.hits, words, strict=False):
            card.image.value, card.image.format = thumbs[hit.image_id]
            card.button.description = hit.image_id
            card.caption.value = (
                f'#{hit.rank} · {hit.score:.4g} · <span class="isc-sim-mark-{word}">{SIGN[word]}</span>'
            )
            card.set_mark(word)
        self._grid.children = tuple(self._cards[: len(shown)])
        self.marks = words
        self.shown_ids = shown
