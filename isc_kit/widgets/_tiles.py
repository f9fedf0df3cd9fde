"""The gallery's parts without state: its style sheet, one tile, what the enlarged view shows, and
ground-truth partners of an image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..groundtruth import GroundTruth
from ..manifest import Manifest
from .imagesource import MISSING, Entry, ImageSource
from .thumbnails import (
    DETAIL_SIDE,
    UNREADABLE,
    detail_caption,
    detail_facts,
    image_size,
    make_thumbnail,
    placeholder,
    problem_word,
    shown_state,
)

#: ``(query -> references, reference -> queries, all queries)`` of a ground truth.
Partners = tuple[dict[str, list[str]], dict[str, list[str]], set[str]]

#: Makes the whole tile click its caption button (the "stretched link" pattern), sizes the grid, and
#: follows JupyterLab's theme through its CSS variables (the fallbacks are the light theme's colours).
STYLE = """<style>
.isc-tile { position: relative; border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px;
  padding: 4px; align-items: center; background: var(--jp-layout-color1, #fafafa);
  color: var(--jp-ui-font-color1, #222); }
.isc-tile:hover { border-color: var(--jp-brand-color1, #4a90d9); }
.isc-tile.isc-selected { border-color: var(--jp-brand-color1, #4a90d9); border-width: 2px; }
.isc-tile img { max-width: 160px; max-height: 160px; object-fit: contain; }
.isc-tile .isc-tile-button { position: static; width: 100%; font-family: var(--jp-code-font-family, monospace); }
.isc-tile .isc-tile-button::after { content: ""; position: absolute; inset: 0; cursor: zoom-in; }
.isc-detail { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; padding: 6px;
  background: var(--jp-layout-color1, #fff); color: var(--jp-ui-font-color1, #222); }
.isc-gallery:focus { outline: none; }
.isc-detail img { max-width: 512px; max-height: 512px; object-fit: contain; }
.isc-detail-facts { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  color: var(--jp-ui-font-color2, #555); }
.isc-error { color: var(--jp-error-color1, #b00020); }
.isc-ok { color: var(--jp-ui-font-color1, #222); }
</style>"""


class Tile(widgets.VBox):
    """One thumbnail and its caption button."""

    def __init__(self, on_click: Any, index: int):
        self.image = widgets.Image(format="jpeg", layout=widgets.Layout(width="160px", height="160px"))
        self.button = widgets.Button(description="", tooltip="enlarge", layout=widgets.Layout(width="160px"))
        self.button.add_class("isc-tile-button")
        self.button.on_click(lambda _b: on_click(index))
        super().__init__([self.image, self.button])
        self.add_class("isc-tile")


def partners(gt: GroundTruth | None) -> Partners | None:
    """``(query -> references, reference -> queries, all queries)`` of the ground truth."""
    if gt is None:
        return None
    refs: dict[str, list[str]] = {}
    copies: dict[str, list[str]] = {}
    for q, r in sorted(gt.pairs):
        refs.setdefault(q, []).append(r)
        copies.setdefault(r, []).append(q)
    return refs, copies, set(gt.queries)


def partner_line(found: Partners | None, set_name: str, image_id: str) -> tuple[str, str]:
    """The ground-truth line for the enlarged view, and the query to show in the pair viewer."""
    if found is None:
        return "", ""
    refs, copies, queries = found
    if set_name == "reference":
        qs = copies.get(image_id, [])
        if not qs:
            return "ground truth: no query is a copy of it", ""
        return f"ground truth: copied by {', '.join(qs)}", qs[0]
    if image_id in refs:
        return f"ground truth: edited copy of {', '.join(refs[image_id])}", image_id
    if image_id in queries:
        return "ground truth: distractor (no reference is a copy source)", image_id
    return "ground truth: not in the ground truth", ""


@dataclass(frozen=True)
class DetailContent:
    """What the enlarged view shows for one image."""

    image: bytes
    format: str
    caption: str  # "Q00012 · 23.4 KB · 256×192 px · verified"
    facts: list[str]  # md5, path, ground truth
    pair_query: str  # the query to show in a pair viewer ("" when none)


def detail_content(
    manifest: Manifest, entry: Entry, images: ImageSource, found: Partners | None
) -> DetailContent:
    """Read ``entry`` from ``images`` and describe it, in the same words as its tile."""
    data = images.read_many(manifest, [entry]).get(entry.image_id)
    size: int | None = entry.size
    dims: tuple[int, int] | None = None
    problem, big, fmt = "", b"", "jpeg"
    if isinstance(data, bytes):
        size, dims = entry.size if entry.size is not None else len(data), image_size(data)
        try:
            big = make_thumbnail(data, DETAIL_SIDE)
        except ValueError:
            problem = UNREADABLE
    else:
        problem = problem_word(data) if data is not None else MISSING
    state = shown_state(problem, images.state(manifest, entry))
    if problem:
        big, fmt = placeholder(state, DETAIL_SIDE // 2), "png"
    local = images.local_path(manifest, entry)
    path = str(local) if local is not None else f"s3://{manifest.bucket}/{manifest.key(entry.relpath)}"
    truth, query = partner_line(found, manifest.set_name, entry.image_id)
    return DetailContent(
        big,
        fmt,
        detail_caption(entry.image_id, size, dims, state),
        detail_facts(entry.md5, path, truth),
        query,
    )
