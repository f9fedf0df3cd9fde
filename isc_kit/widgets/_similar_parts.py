"""The pieces :class:`~.similar.Similar` draws with: its style, a neighbour card, a progress bar on an
``IntProgress``, and the bytes of an outside image."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from ._selection import MATCH, NOT, UNKNOWN

SIGN = {MATCH: "✓ match", NOT: "✗ not", UNKNOWN: "? unknown"}

STYLE = """<style>
.isc-similar { color: var(--jp-ui-font-color1, #222); }
.isc-sim-card { border: 2px solid var(--jp-border-color2, #ddd); border-radius: 4px; padding: 4px;
  margin: 0 6px 6px 0; align-items: center; background: var(--jp-layout-color1, #fafafa);
  color: var(--jp-ui-font-color1, #222); }
.isc-sim-card img { max-width: 160px; max-height: 160px; object-fit: contain; }
.isc-sim-card.isc-sim-match { border-color: var(--jp-success-color1, #1b7a2e); }
.isc-sim-card.isc-sim-not { border-color: var(--jp-error-color1, #b00020); }
.isc-sim-caption { font-family: var(--jp-code-font-family, monospace); font-size: 12px; text-align: center;
  color: var(--jp-ui-font-color1, #222); }
.isc-sim-caption .isc-sim-mark-match { color: var(--jp-success-color1, #1b7a2e); }
.isc-sim-caption .isc-sim-mark-not { color: var(--jp-error-color1, #b00020); }
.isc-sim-caption .isc-sim-mark-unknown { color: var(--jp-ui-font-color2, #666); }
.isc-sim-head { font-family: var(--jp-code-font-family, monospace); color: var(--jp-ui-font-color1, #222); }
.isc-sim-message .isc-error { color: var(--jp-error-color1, #b00020); }
</style>"""


class WidgetBar:
    """A :class:`isc_kit.progress.Progress` drawing on an ``IntProgress`` (safe from the build thread)."""

    def __init__(self, bar: widgets.IntProgress):
        self.bar = bar

    def set_size(self, size: int | None) -> None:
        return None

    def relative_update(self, inc: int = 1) -> None:
        return None

    def file_done(self, ok: bool = True) -> None:
        self.bar.value = min(self.bar.max, self.bar.value + 1)

    def close(self) -> None:
        return None


class Card(widgets.VBox):
    def __init__(self, on_click: Any = None):
        self.image = widgets.Image(format="jpeg", layout=widgets.Layout(width="160px", height="160px"))
        self.button = widgets.Button(layout=widgets.Layout(width="160px"))
        self.button.add_class("isc-sim-id")
        if on_click is not None:
            self.button.on_click(lambda b: on_click(b.description))
            self.button.tooltip = "search its neighbours"
        else:
            self.button.disabled = True
        self.caption = widgets.HTML()
        self.caption.add_class("isc-sim-caption")
        super().__init__([self.image, self.button, self.caption])
        self.add_class("isc-sim-card")

    def set_mark(self, word: str) -> None:
        for w in (MATCH, NOT, UNKNOWN):
            self.remove_class(f"isc-sim-{w}")
        if word:
            self.add_class(f"isc-sim-{word}")


def image_bytes(what: Any) -> bytes | None:
    """Bytes of an outside image to show (a path, bytes, a binary file or uint8 pixels); None for a vector."""
    if isinstance(what, bytes):
        return what
    if isinstance(what, np.ndarray):
        if what.dtype != np.uint8:
            return None
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(what).save(buf, format="PNG")
        return buf.getvalue()
    if isinstance(what, str | os.PathLike) and Path(what).is_file():
        return Path(what).read_bytes()
    if hasattr(what, "read"):
        what.seek(0)
        return what.read()
    return None
