"""Augmented training pairs side by side: each source image beside its AugLy copy and the transforms
drawn for it, a page at a time (``isc-kit augment``'s pairs CSV and folders).

:class:`AugmentPairs` exposes ``page`` (a trait: set it, or press Prev / Next) and ``shown`` (the
``(augmented_id, source_id)`` pairs on the page).
"""

from __future__ import annotations

import html
import io
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import Int, List, observe, validate

from ..augment import AugmentError, load_pairs
from ..errors import ConfigError

THUMB = 200


def thumbnail(path: Path, side: int = THUMB) -> bytes:
    """PNG bytes of the image at ``path`` fitted into ``side`` x ``side``."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        out = io.BytesIO()
        img.save(out, format="PNG")
    return out.getvalue()


class AugmentPairs(widgets.VBox):
    """Source | augmented copy | transforms, ``page_size`` rows a page."""

    page = Int(0)
    shown = List()

    def __init__(
        self,
        pairs_csv: str | os.PathLike[str],
        sources: str | os.PathLike[str],
        augmented: str | os.PathLike[str],
        *,
        page_size: int = 4,
        side: int = THUMB,
    ):
        if page_size < 1:
            raise ConfigError(f"page_size must be >= 1, got {page_size}")
        try:
            self.pairs = load_pairs(pairs_csv)
        except FileNotFoundError:
            raise AugmentError(
                f"{pairs_csv}: no such pairs CSV; run `isc-kit augment` (or dvc repro)"
            ) from None
        if not self.pairs:
            raise AugmentError(f"{pairs_csv}: no pairs (augment.copies is 0?)")
        self.sources, self.augmented = Path(sources), Path(augmented)
        self.page_size, self.side = page_size, side
        self._prev = widgets.Button(description="Prev", icon="arrow-left")
        self._next = widgets.Button(description="Next", icon="arrow-right")
        self._label = widgets.Label()
        self._rows = widgets.VBox()
        self._prev.on_click(lambda _b: self._step(-1))
        self._next.on_click(lambda _b: self._step(1))
        super().__init__([widgets.HBox([self._prev, self._label, self._next]), self._rows])
        self.add_class("isc-augpairs")
        self._render()

    @property
    def pages(self) -> int:
        return -(-len(self.pairs) // self.page_size)

    @validate("page")
    def _valid_page(self, proposal: dict[str, Any]) -> int:
        return max(0, min(int(proposal["value"]), self.pages - 1))

    @observe("page")
    def _on_page(self, _change: dict[str, Any]) -> None:
        self._render()

    def _step(self, delta: int) -> None:
        self.page = self.page + delta

    def _image(self, path: Path) -> widgets.Widget:
        try:
            return widgets.Image(value=thumbnail(path, self.side), format="png")
        except OSError as err:
            return widgets.HTML(f"<i>{html.escape(path.name)}: {html.escape(err.strerror or str(err))}</i>")

    def _render(self) -> None:
        start = self.page * self.page_size
        rows = self.pairs[start : start + self.page_size]
        self._label.value = f"page {self.page + 1} of {self.pages} ({len(self.pairs)} pairs)"
        self._prev.disabled = self.page == 0
        self._next.disabled = self.page >= self.pages - 1
        boxes = []
        for aug, src, transforms in rows:
            caption = widgets.HTML(
                f"<b>{html.escape(src)}</b> &rarr; <b>{html.escape(aug)}</b><br>"
                + "<br>".join(html.escape(t) for t in transforms.split(";"))
            )
            row = widgets.HBox(
                [
                    self._image(self.sources / f"{src}.jpg"),
                    self._image(self.augmented / f"{aug}.jpg"),
                    caption,
                ]
            )
            row.add_class("isc-augpair")
            boxes.append(row)
        self._rows.children = boxes
        self.shown = [(aug, src) for aug, src, _t in rows]
