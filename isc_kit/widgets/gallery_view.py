"""The gallery's view: its widgets, their layout and how they are painted.

:class:`GalleryView` builds the toolbar (set, pattern, page size, paging, jump box), the grid of
tiles and the enlarged view, and paints them from what the model hands it. It holds no state of
its own beyond the widgets; :class:`~.gallery.Gallery` (the model) owns the traitlets and decides
what is shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ._keys import KeyListener
from ._tiles import STYLE, Tile
from .paging import PAGE_SIZES, PageView
from .thumbnails import Thumbnail, tile_caption


class GalleryView(widgets.VBox):
    """Toolbar, tile grid and enlarged view of a gallery (see :class:`~.gallery.Gallery`)."""

    def __init__(self, page_size: int, on_tile_click: Callable[[int], None], **kwargs: Any):
        self._on_tile = on_tile_click
        self._tiles: list[Tile] = []
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
        self._jump_box = widgets.Text(
            placeholder="go to id, e.g. Q00123", continuous_update=False, layout=widgets.Layout(width="200px")
        )
        self._jump_box.add_class("isc-jump")
        self._message_box = widgets.HTML()
        self._grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns="repeat(auto-fill, 172px)", grid_gap="6px")
        )
        self._detail_image = widgets.Image(format="jpeg")
        self._detail_caption = widgets.HTML()
        self._detail_caption.add_class("isc-detail-caption")
        self._detail_facts = widgets.HTML()
        self._detail_facts.add_class("isc-detail-facts")
        self._close = widgets.Button(description="close", icon="times", tooltip="close (Esc)", layout=_wide())
        self._before = widgets.Button(icon="arrow-left", tooltip="previous image (←)", layout=_narrow())
        self._after = widgets.Button(icon="arrow-right", tooltip="next image (→)", layout=_narrow())
        self._to_pair = widgets.Button(
            description="show pair", icon="link", layout=widgets.Layout(width="120px", display="none")
        )
        self._to_pair.add_class("isc-to-pair")
        self._keys = KeyListener()
        self._detail = widgets.VBox(
            [
                self._detail_caption,
                self._detail_facts,
                self._detail_image,
                widgets.HBox([self._before, self._after, self._close, self._to_pair]),
            ],
            layout=widgets.Layout(display="none"),
        )
        self._detail.add_class("isc-detail")
        super().__init__(
            [
                widgets.HTML(STYLE),
                widgets.HBox([self._set_box, self._pattern_box, self._size_box]),
                widgets.HBox(
                    [self._first, self._prev, self._page_label, self._next, self._last, self._jump_box]
                ),
                self._message_box,
                self._detail,
                self._grid,
                self._keys,
            ],
            **kwargs,
        )
        self.add_class("isc-gallery")

    # ------------------------------------------------------------------------------ what it shows

    @property
    def tile_captions(self) -> list[str]:
        """What the visible tiles' captions say, in order."""
        return [t.button.description for t in self._tiles[: len(self._grid.children)]]

    def _paint_message(self, message: str) -> None:
        text = html.escape(message)
        self._message_box.value = f'<span class="isc-error">{text}</span>' if text else ""

    def _paint_page(
        self, view: PageView, thumbs: Sequence[Thumbnail], states: Sequence[str], ids: int
    ) -> None:
        """Paging buttons, page label and one tile per thumbnail (``ids``: how many the page asked for)."""
        self._first.disabled = self._prev.disabled = view.is_first
        self._next.disabled = self._last.disabled = view.is_last
        self._page_label.value = view.label() if thumbs or not ids else f"{view.label()} · not loaded"
        while len(self._tiles) < len(thumbs):
            self._tiles.append(Tile(self._on_tile, len(self._tiles)))
        for tile, thumb, state in zip(self._tiles, thumbs, states, strict=False):
            tile.image.format = thumb.format
            tile.image.value = thumb.data
            tile.button.description = tile_caption(thumb, state)
            tile.button.tooltip = thumb.message or f"enlarge {thumb.image_id}"
        self._grid.children = tuple(self._tiles[: len(thumbs)])

    def _paint_selected(self, shown_ids: Sequence[str], selected: str) -> None:
        for tile, image_id in zip(self._tiles, shown_ids, strict=False):
            if image_id == selected:
                tile.add_class("isc-selected")
            else:
                tile.remove_class("isc-selected")

    def _paint_detail_closed(self) -> None:
        self._detail.layout.display = "none"
        self._detail_caption.value = self._detail_facts.value = ""
        self._keys.active = False

    def _paint_detail(self, shown: Any, pair_query: str, *, first: bool, last: bool) -> None:
        """The enlarged view of ``shown`` (a :func:`~._tiles.detail_content`); ``pair_query`` "" hides the pair button."""
        self._keys.active = True  # before the caption: a key pressed once it shows is already heard
        self._detail_image.format = shown.format
        self._detail_image.value = shown.image
        self._detail_caption.value = f"<b>{html.escape(shown.caption)}</b>"
        self._detail_facts.value = "<br>".join(html.escape(line) for line in shown.facts)
        self._to_pair.layout.display = "flex" if pair_query else "none"
        self._to_pair.tooltip = pair_query
        self._before.disabled = first
        self._after.disabled = last
        self._detail.layout.display = "flex"

    def _detail_plain(self) -> tuple[str, str]:
        """The enlarged view's caption and facts as plain text."""
        caption = html.unescape(_strip_tags(self._detail_caption.value))
        facts = html.unescape(_strip_tags(self._detail_facts.value.replace("<br>", "\n")))
        return caption, facts


def _narrow() -> widgets.Layout:
    return widgets.Layout(width="40px")


def _wide() -> widgets.Layout:
    return widgets.Layout(width="90px")


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)
