"""The gallery: a paged thumbnail grid over manifests, with a set selector, an AWS-style pattern box,
a jump-to-id box and an enlarged view (id, size, dimensions, state, md5, path, ground-truth partner;
arrow keys step through the selection, Esc closes it).

State lives in traitlets (``set_name``, ``pattern``, ``page``, ``page_size``, ``selected``) so a
notebook can ``observe`` or ``link`` them; ``selection`` (the filtered manifest) and
``shown_ids`` (the ids on the current page) are outputs. Paging, filters and thumbnails are in
:mod:`.paging` and :mod:`.thumbnails`, the widgets and their painting in :mod:`.gallery_view`; this
module is the model that wires them together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Any as AnyTrait
from traitlets import Dict, Int, List, Unicode, observe, validate

from ..errors import IscKitError
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from ..select import Selection, select
from ._reach import check_reachable
from ._tiles import detail_content, partners
from .gallery_view import GalleryView
from .imagesource import ImageSource, entries
from .paging import page_of, page_view, parse_pattern
from .thumbnails import (
    ThumbnailCache,
)

logger = logging.getLogger(__name__)


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return {value.set_name: value} if isinstance(value, Manifest) else {"*": value}


class Gallery(GalleryView):
    """Thumbnail grid over one or several manifests (any selection), paged, filterable, click to enlarge.

    ``manifests``: a :class:`~isc_kit.manifest.Manifest` or ``{set_name: Manifest}``.
    ``images``: an image source (:class:`~.imagesource.LocalImages` or :class:`~.imagesource.S3Images`)
    for all sets, or ``{set_name: source}``. With ``ground_truth`` the enlarged view names an image's
    partner (the reference a query copies, or the queries copying a reference); with ``pair_viewer``
    (a :class:`~.pairs.PairViewer`) it also offers a button that shows the pair there.
    """

    manifests = Dict()
    set_name = Unicode("")
    pattern = Unicode("")
    page = Int(0)
    page_size = Int(24)
    selected = Unicode("")
    selection = AnyTrait(None, allow_none=True)
    shown_ids: List[str] = List()
    message = Unicode("")

    def __init__(
        self,
        manifests: Manifest | Mapping[str, Manifest],
        images: ImageSource | Mapping[str, ImageSource],
        *,
        thumbnails: ThumbnailCache | None = None,
        page_size: int = 24,
        ground_truth: GroundTruth | None = None,
        pair_viewer: Any = None,
        **kwargs: Any,
    ):
        self._images = _as_mapping(images)
        self._partners = partners(ground_truth)
        self.pair_viewer = pair_viewer
        self._thumbs = thumbnails or ThumbnailCache()
        super().__init__(page_size, self._on_tile_click, **kwargs)
        self._first.on_click(lambda _b: self._go(0))
        self._prev.on_click(lambda _b: self._go(self.page - 1))
        self._next.on_click(lambda _b: self._go(self.page + 1))
        self._last.on_click(lambda _b: self._go(-1))
        self._close.on_click(lambda _b: setattr(self, "selected", ""))
        self._before.on_click(lambda _b: self.step(-1))
        self._after.on_click(lambda _b: self.step(1))
        self._to_pair.on_click(self._on_to_pair_click)
        self._keys.observe(self._on_keys_count, "count")
        self._jump_box.observe(self._on_jump_box_value, "value")
        self._set_box.observe(self._on_set_box_value, "value")
        self._pattern_box.observe(self._on_pattern_box_value, "value")
        self._size_box.observe(self._on_size_box_value, "value")
        with self.hold_trait_notifications():
            self.page_size = page_size
            self.manifests = _as_mapping(manifests)

    # ------------------------------------------------------------------------------ public API

    @property
    def manifest(self) -> Manifest | None:
        """The current set's manifest before the pattern is applied."""
        return self.manifests.get(self.set_name)

    def show(self, manifest: Manifest) -> None:
        """Show ``manifest`` (e.g. a sample) in place of its set's manifest, from page 1."""
        with self.hold_trait_notifications():
            self.manifests = {**self.manifests, manifest.set_name: manifest}
            self.set_name = manifest.set_name

    def click(self, image_id: str) -> None:
        """Enlarge ``image_id`` as if its tile were clicked (it must be on the current page)."""
        self._on_tile_click(self.shown_ids.index(image_id))

    def jump(self, image_id: str) -> bool:
        """Show the page holding ``image_id`` and enlarge it; False (and a message) when not selected."""
        image_id = image_id.strip()
        ids = self.selection.ids if self.selection is not None else []
        if not image_id:
            return False
        try:
            index = ids.index(image_id)
        except ValueError:
            where = f"the {self.set_name} selection" + (
                f" (pattern {self.pattern!r})" if self.pattern else ""
            )
            self.message = f"{image_id} is not in {where}; check the id, or clear the pattern"
            self._show_message()
            return False
        self.message = ""
        self._show_message()
        self.page = page_of(index, self.page_size)
        self.selected = image_id
        return True

    def step(self, delta: int) -> None:
        """Enlarge the image ``delta`` places after the enlarged one (paging along), as ← and → do."""
        ids = self.selection.ids if self.selection is not None else []
        if not self.selected or self.selected not in ids:
            return
        index = min(max(ids.index(self.selected) + delta, 0), len(ids) - 1)
        if page_of(index, self.page_size) != self.page:
            self.page = page_of(index, self.page_size)
        self.selected = ids[index]

    @property
    def detail_text(self) -> str:
        """The enlarged view's caption as plain text ("" when closed)."""
        return self._detail_plain()[0] if self.selected else ""

    @property
    def detail_facts(self) -> str:
        """The enlarged view's md5, path and ground-truth lines as plain text ("" when closed)."""
        return self._detail_plain()[1] if self.selected else ""

    def images_for(self, set_name: str) -> ImageSource:
        return self._images.get(set_name) or self._images["*"]

    # ------------------------------------------------------------------------------ trait logic

    @observe("manifests")
    def _on_manifests(self, change: dict[str, Any]) -> None:
        names = list(self.manifests)
        self._set_box.options = names
        if self.set_name not in names:
            self.set_name = names[0] if names else ""
        else:
            self._set_box.value = self.set_name
            self._refilter()

    @observe("set_name")
    def _on_set_name(self, change: dict[str, Any]) -> None:
        shown = self.set_name if self.set_name in self._set_box.options else None
        if self._set_box.value != shown:
            self._set_box.value = shown
        self._refilter()

    @observe("pattern")
    def _on_pattern(self, change: dict[str, Any]) -> None:
        self._pattern_box.value = self.pattern
        self._refilter()

    @validate("page")
    def _valid_page(self, proposal: dict[str, Any]) -> int:
        total = len(self.selection) if self.selection is not None else 0
        return page_view(int(proposal["value"]), max(self.page_size, 1), total).page

    @observe("page")
    def _on_page(self, change: dict[str, Any]) -> None:
        self._render()

    @observe("page_size")
    def _on_page_size(self, change: dict[str, Any]) -> None:
        first = self.page * change["old"] if isinstance(change["old"], int) else 0
        self._size_box.value = (
            self.page_size if self.page_size in self._size_box.options else self._size_box.value
        )
        new_page = first // max(self.page_size, 1)
        if new_page != self.page:
            self.page = new_page
        else:
            self._render()

    @observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self._show_detail(self.selected)

    def _on_set_box_value(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.set_name = change["new"]

    def _on_pattern_box_value(self, change: dict[str, Any]) -> None:
        self.pattern = change["new"]

    def _on_size_box_value(self, change: dict[str, Any]) -> None:
        self.page_size = int(change["new"])

    def _on_jump_box_value(self, change: dict[str, Any]) -> None:
        if change["new"].strip():
            self.jump(change["new"])

    def _on_keys_count(self, change: dict[str, Any]) -> None:
        key = self._keys.key
        if key == "Escape":
            self.selected = ""
        elif key in ("ArrowLeft", "ArrowRight"):
            self.step(-1 if key == "ArrowLeft" else 1)

    def _on_to_pair_click(self, _button: widgets.Button) -> None:
        query = self._to_pair.tooltip
        if self.pair_viewer is not None and query:
            self.pair_viewer.show_query(query)

    def _on_tile_click(self, index: int) -> None:
        if index < len(self.shown_ids):
            self.selected = self.shown_ids[index]

    def _go(self, page: int) -> None:
        if page < 0:
            total = len(self.selection) if self.selection is not None else 0
            page = page_view(-1, self.page_size, total).page
        self.page = page

    # ------------------------------------------------------------------------------ rendering

    def _refilter(self) -> None:
        manifest = self.manifest
        if manifest is None:
            self.selection = None
        else:
            try:
                filters = parse_pattern(self.pattern)
            except IscKitError as err:
                self.message = str(err)
                self._show_message()
                return
            self.message = ""
            self.selection = (
                select(manifest, Selection(filters=filters), allow_empty=True) if filters else manifest
            )
        self.selected = ""
        if self.page != 0:
            self.page = 0
        else:
            self._render()

    def _show_message(self) -> None:
        self._paint_message(self.message)

    def _render(self) -> None:
        selection = self.selection
        total = len(selection) if selection is not None else 0
        view = page_view(self.page, self.page_size, total)
        ids = view.items(selection.ids) if selection is not None else []
        thumbs = []
        states: list[str] = []
        if selection is not None and ids:
            images = self.images_for(selection.set_name)
            found = entries(selection, ids)
            try:
                thumbs = self._thumbs.load(images, selection, found)
            except IscKitError as err:  # e.g. the endpoint is down: say so once, show no stale tiles
                self.message = str(err)
            else:
                if self.message.startswith("cannot reach S3"):
                    self.message = ""
                states = [
                    images.state(selection, e) if t.problem else ""
                    for e, t in zip(found, thumbs, strict=True)
                ]
        self._show_message()
        self._paint_page(view, thumbs, states, len(ids))
        self.shown_ids = [t.image_id for t in thumbs]
        self._mark_selected()

    def _mark_selected(self) -> None:
        self._paint_selected(self.shown_ids, self.selected)

    def _close_detail(self) -> None:
        self._paint_detail_closed()
        self._mark_selected()

    def _show_detail(self, image_id: str) -> None:
        selection = self.selection
        found = entries(selection, [image_id]) if image_id and selection is not None else []
        if not found or selection is None:
            self._close_detail()
            return
        entry = found[0]
        images = self.images_for(selection.set_name)
        try:
            if images.local_path(selection, entry) is None:
                check_reachable(images)
        except IscKitError as err:
            self.message = str(err)
            self._show_message()
            self._close_detail()
            return
        shown = detail_content(selection, entry, images, self._partners)
        query = shown.pair_query if shown.pair_query and self.pair_viewer is not None else ""
        ids = selection.ids
        index = ids.index(image_id) if image_id in ids else 0
        self._paint_detail(shown, query, first=index <= 0, last=index >= len(ids) - 1)
        self._mark_selected()
