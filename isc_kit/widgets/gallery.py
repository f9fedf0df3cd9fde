"""The gallery: a paged thumbnail grid over manifests, with a set selector, an AWS-style pattern box
and an enlarged view (id, size, dimensions, verification state).

State lives in traitlets (``set_name``, ``pattern``, ``page``, ``page_size``, ``selected``) so a
notebook can ``observe`` or ``link`` them; ``selection`` (the filtered manifest) and
``shown_ids`` (the ids on the current page) are outputs. Paging, filters and thumbnails are in
:mod:`.paging` and :mod:`.thumbnails`; this module only wires widgets to them.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Any as AnyTrait
from traitlets import Dict, Int, List, Unicode, observe, validate

from ..errors import IscKitError
from ..manifest import Manifest
from ..select import Selection, select
from .imagesource import ImageSource, entries
from .paging import PAGE_SIZES, page_view, parse_pattern
from .thumbnails import (
    DETAIL_SIDE,
    ThumbnailCache,
    detail_caption,
    image_size,
    make_thumbnail,
    placeholder,
    problem_word,
    tile_caption,
)

logger = logging.getLogger(__name__)

#: Makes the whole tile click its caption button (the "stretched link" pattern), and sizes the grid.
STYLE = """<style>
.isc-tile { position: relative; border: 1px solid #ddd; border-radius: 4px; padding: 4px;
  align-items: center; background: #fafafa; }
.isc-tile:hover { border-color: #4a90d9; }
.isc-tile img { max-width: 160px; max-height: 160px; object-fit: contain; }
.isc-tile .isc-tile-button { position: static; width: 100%; font-family: monospace; }
.isc-tile .isc-tile-button::after { content: ""; position: absolute; inset: 0; cursor: zoom-in; }
.isc-detail img { max-width: 512px; max-height: 512px; object-fit: contain; }
.isc-error { color: #b00020; }
</style>"""


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return {value.set_name: value} if isinstance(value, Manifest) else {"*": value}


class _Tile(widgets.VBox):
    """One thumbnail and its caption button."""

    def __init__(self, on_click: Any, index: int):
        self.image = widgets.Image(format="jpeg", layout=widgets.Layout(width="160px", height="160px"))
        self.button = widgets.Button(description="", tooltip="enlarge", layout=widgets.Layout(width="160px"))
        self.button.add_class("isc-tile-button")
        self.button.on_click(lambda _b: on_click(index))
        super().__init__([self.image, self.button])
        self.add_class("isc-tile")


class Gallery(widgets.VBox):
    """Thumbnail grid over one or several manifests (any selection), paged, filterable, click to enlarge.

    ``manifests``: a :class:`~isc_kit.manifest.Manifest` or ``{set_name: Manifest}``.
    ``images``: an image source (:class:`~.imagesource.LocalImages` or :class:`~.imagesource.S3Images`)
    for all sets, or ``{set_name: source}``.
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
        **kwargs: Any,
    ):
        self._images = _as_mapping(images)
        self._thumbs = thumbnails or ThumbnailCache()
        self._tiles: list[_Tile] = []
        self._rendering = False
        self._set_box = widgets.Dropdown(description="set", layout=widgets.Layout(width="220px"))
        self._pattern_box = widgets.Text(
            placeholder='pattern: Q00*  or  --exclude "*" --include "Q01*"',
            continuous_update=False,
            layout=widgets.Layout(width="380px"),
        )
        self._size_box = widgets.Dropdown(
            options=sorted({*PAGE_SIZES, page_size}),
            value=page_size,
            description="per page",
            layout=widgets.Layout(width="170px"),
        )
        self._first = widgets.Button(icon="angle-double-left", tooltip="first page", layout=_narrow())
        self._prev = widgets.Button(icon="angle-left", tooltip="previous page", layout=_narrow())
        self._next = widgets.Button(icon="angle-right", tooltip="next page", layout=_narrow())
        self._last = widgets.Button(icon="angle-double-right", tooltip="last page", layout=_narrow())
        self._page_label = widgets.Label()
        self._page_label.add_class("isc-page-label")
        self._message_box = widgets.HTML()
        self._grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns="repeat(auto-fill, 172px)", grid_gap="6px")
        )
        self._detail_image = widgets.Image(format="jpeg")
        self._detail_caption = widgets.HTML()
        self._detail_caption.add_class("isc-detail-caption")
        self._close = widgets.Button(description="close", icon="times", layout=widgets.Layout(width="90px"))
        self._detail = widgets.VBox(
            [self._detail_caption, self._detail_image, self._close], layout=widgets.Layout(display="none")
        )
        self._detail.add_class("isc-detail")
        self._first.on_click(lambda _b: self._go(0))
        self._prev.on_click(lambda _b: self._go(self.page - 1))
        self._next.on_click(lambda _b: self._go(self.page + 1))
        self._last.on_click(lambda _b: self._go(-1))
        self._close.on_click(lambda _b: setattr(self, "selected", ""))
        self._set_box.observe(self._on_set_box_value, "value")
        self._pattern_box.observe(self._on_pattern_box_value, "value")
        self._size_box.observe(self._on_size_box_value, "value")
        super().__init__(
            [
                widgets.HTML(STYLE),
                widgets.HBox([self._set_box, self._pattern_box, self._size_box]),
                widgets.HBox([self._first, self._prev, self._page_label, self._next, self._last]),
                self._message_box,
                self._grid,
                self._detail,
            ],
            **kwargs,
        )
        self.add_class("isc-gallery")
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

    @property
    def tile_captions(self) -> list[str]:
        """What the visible tiles' captions say, in order."""
        return [t.button.description for t in self._tiles[: len(self.shown_ids)]]

    @property
    def detail_text(self) -> str:
        """The enlarged view's caption as plain text ("" when closed)."""
        return html.unescape(_strip_tags(self._detail_caption.value)) if self.selected else ""

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
        if self._set_box.value != self.set_name:
            self._set_box.value = self.set_name
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
        text = html.escape(self.message)
        self._message_box.value = f'<span class="isc-error">{text}</span>' if text else ""

    def _render(self) -> None:
        selection = self.selection
        total = len(selection) if selection is not None else 0
        view = page_view(self.page, self.page_size, total)
        ids = view.items(selection.ids) if selection is not None else []
        self._page_label.value = view.label()
        self._first.disabled = self._prev.disabled = view.is_first
        self._next.disabled = self._last.disabled = view.is_last
        thumbs = []
        if selection is not None and ids:
            try:
                thumbs = self._thumbs.load(
                    self.images_for(selection.set_name), selection, entries(selection, ids)
                )
            except IscKitError as err:
                self.message = str(err)
        self._show_message()
        while len(self._tiles) < len(thumbs):
            self._tiles.append(_Tile(self._on_tile_click, len(self._tiles)))
        for tile, thumb in zip(self._tiles, thumbs, strict=False):
            tile.image.format = thumb.format
            tile.image.value = thumb.data
            tile.button.description = tile_caption(thumb)
            tile.button.tooltip = thumb.message or f"enlarge {thumb.image_id}"
        self._grid.children = tuple(self._tiles[: len(thumbs)])
        self.shown_ids = [t.image_id for t in thumbs]

    def _show_detail(self, image_id: str) -> None:
        selection = self.selection
        if not image_id or selection is None:
            self._detail.layout.display = "none"
            self._detail_caption.value = ""
            return
        found = entries(selection, [image_id])
        if not found:
            self._detail.layout.display = "none"
            return
        entry = found[0]
        images = self.images_for(selection.set_name)
        data = images.read_many(selection, [entry]).get(image_id)
        size: int | None
        dims: tuple[int, int] | None
        if isinstance(data, bytes):
            size, dims = entry.size if entry.size is not None else len(data), image_size(data)
            try:
                big, fmt = make_thumbnail(data, DETAIL_SIDE), "jpeg"
            except ValueError:
                big, fmt = placeholder("unreadable", DETAIL_SIDE // 2), "png"
        else:
            word = problem_word(data) if data is not None else "missing"
            size, dims, big, fmt = entry.size, None, placeholder(word, DETAIL_SIDE // 2), "png"
        state = images.state(selection, entry)
        self._detail_image.format = fmt
        self._detail_image.value = big
        self._detail_caption.value = f"<b>{html.escape(detail_caption(image_id, size, dims, state))}</b>"
        self._detail.layout.display = "flex"


def _narrow() -> widgets.Layout:
    return widgets.Layout(width="40px")


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text)
