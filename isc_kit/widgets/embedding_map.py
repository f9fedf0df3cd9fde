"""The embedding map: descriptors projected to 2-D, drawn as a scatter to hover, colour and select.

Projection (:func:`project`): PCA by default (numpy: the covariance is accumulated in chunks, so a
million 256-d rows cost one pass and a 256×256 eigen-decomposition), so the same descriptors give the
same map on every teammate's machine whatever else is installed. ``method="umap"`` needs ``umap-learn``
(the ``umap`` extra); ``"auto"`` takes UMAP when it is installed and there are at most
:data:`UMAP_AUTO_LIMIT` points, PCA otherwise. Above :data:`UMAP_FIT_LIMIT` points UMAP is fitted on a
seeded sample and transforms the rest; the map's heading names the method used.

Drawing a million points without freezing the browser: the browser gets (1) a 2-D histogram of *all*
points (:data:`DENSITY_BINS`² counts, log-scaled to one byte each, drawn as a shaded background) and
(2) a seeded sample of at most ``max_points`` points (default 20,000), stratified by the current colour
so that a small class (the matched queries) is drawn in full or at least :data:`MIN_PER_CLASS` strong,
sent as packed float32 coordinates (160 KB for 20,000). Hover and the lasso / box are drawn in the
browser on a ``<canvas>`` (a small anywidget, no front-end build, no plotting library); the finished
shape goes back to Python, which selects among **all** points (a bounding-box test for a box,
``matplotlib.path.Path.contains_points`` for a lasso; about 0.1 s for a million). So what is selected
is exact whatever is drawn; :attr:`EmbeddingMap.selected_ids` holds it, and the buttons put it into a
:class:`~.gallery.Gallery` or add it to params.yaml's selection (the same editor as
:class:`~.similar.Similar`). Colours follow the Okabe-Ito palette (readable in the light and dark
themes); background, text and the density shade are read from JupyterLab's CSS variables and redrawn
when the theme changes.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from traitlets import Int, Unicode, observe

from ..catalog import SETS
from ..errors import ConfigError, IscKitError
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from ..neighbours import read_checked
from ._map_canvas import DENSITY_BINS, PALETTE, _Canvas
from ._projection import (
    METHODS,
    MIN_PER_CLASS,
    UMAP_AUTO_LIMIT,
    UMAP_FIT_LIMIT,
    density,
    inside,
    normalise,
    project,
    stratified_sample,
)
from ._sampling import UsedSample
from ._selection import _set_of, add_to_selection
from .imagesource import ImageSource, entries
from .thumbnails import ThumbnailCache

logger = logging.getLogger(__name__)

COLOURS = ("set", "ground truth", "verdict")
__all__ = [
    "COLOURS",
    "DENSITY_BINS",
    "METHODS",
    "MIN_PER_CLASS",
    "PALETTE",
    "UMAP_AUTO_LIMIT",
    "UMAP_FIT_LIMIT",
    "EmbeddingMap",
    "density",
    "inside",
    "normalise",
    "project",
    "stratified_sample",
]


class EmbeddingMap(widgets.VBox):
    """A 2-D map of descriptors to hover, colour and select (see the module doc).

    ``descriptors``: one or more descriptor files (queries, references, training: shown together),
    or ``(ids, vectors)``. ``manifests``/``images``: for thumbnails on hover and the gallery / selection
    buttons. ``ground_truth`` colours by ground-truth status; ``errors`` (an
    :class:`~.errors.ErrorAnalysis` or an :class:`~isc_kit.analysis.ErrorReport`) by verdict at its
    threshold. ``gallery``: where "show in gallery" puts the selection.
    """

    colour = Unicode("set")
    n_selected = Int(0)
    message = Unicode("")

    def __init__(
        self,
        descriptors: str
        | os.PathLike[str]
        | Sequence[str | os.PathLike[str]]
        | tuple[Sequence[str], np.ndarray],
        manifests: Mapping[str, Manifest] | None = None,
        images: ImageSource | Mapping[str, ImageSource] | None = None,
        *,
        ground_truth: GroundTruth | None = None,
        errors: Any = None,
        gallery: Any = None,
        method: str = "pca",
        max_points: int = 20_000,
        seed: int = 0,
        thumbnails: ThumbnailCache | None = None,
        params_path: str | os.PathLike[str] = "params.yaml",
        width: int = 640,
        height: int = 480,
        **kwargs: Any,
    ):
        if max_points < 1:
            raise ConfigError(f"max_points must be at least 1, got {max_points}")
        self.ids, vectors = _load(descriptors)
        self.manifests = dict(manifests or {})
        self._images = (dict(images) if isinstance(images, Mapping) else {"*": images}) if images else {}
        self._thumbs = thumbnails or ThumbnailCache(max_side=128)
        self.gallery = gallery
        self.params_path = Path(params_path)
        self.max_points, self.seed = max_points, seed
        xy, self.method = project(vectors, method, seed=seed)
        self.xy = normalise(xy)
        self._classes = {
            "set": _by_set(self.ids, self.manifests),
            "ground truth": _by_truth(self.ids, ground_truth),
            "verdict": _by_verdict(self.ids, errors),
        }
        self._mask = np.zeros(len(self.ids), dtype=bool)
        self._sample = np.arange(0)
        self.canvas = _Canvas(width=width, height=height)
        self.canvas.add_class("isc-map-canvas-widget")
        self.canvas.density = density(self.xy)
        options = [c for c in COLOURS if self._classes[c] is not None]
        self._colour_box = widgets.Dropdown(
            options=options, value="set", description="colour", layout=widgets.Layout(width="220px")
        )
        self._colour_box.add_class("isc-map-colour")
        self._mode_box = widgets.ToggleButtons(
            options=["box", "lasso"], value="box", style={"button_width": "60px"}
        )
        self._mode_box.add_class("isc-map-mode")
        self._count = widgets.Label()
        self._count.add_class("isc-map-count")
        self._to_gallery = widgets.Button(
            description="show in gallery", icon="th", layout=widgets.Layout(width="150px")
        )
        self._to_gallery.add_class("isc-map-to-gallery")
        self._add = widgets.Button(
            description="add to the selection", icon="plus", layout=widgets.Layout(width="180px")
        )
        self._add.add_class("isc-map-add")
        self._legend = widgets.HTML()
        self._legend.add_class("isc-map-legend")
        self._message_box = widgets.HTML()
        self._head = widgets.HTML(
            f'<span class="isc-map-head">{len(self.ids):,} points · {self.method.upper()} · '
            f"drawn: a stratified sample of up to {max_points:,} over the density of all</span>"
        )
        widgets.link((self._colour_box, "value"), (self, "colour"))
        widgets.link((self._mode_box, "value"), (self.canvas, "mode"))
        self.canvas.observe(self._on_shape, "shape_count")
        self.canvas.observe(self._on_hover, "hover")
        self._to_gallery.on_click(lambda _b: self.show_in_gallery())
        self._add.on_click(lambda _b: self.add_to_selection())
        super().__init__(
            [
                widgets.HTML(_STYLE),
                self._head,
                widgets.HBox([self._colour_box, self._mode_box, self._count, self._to_gallery, self._add]),
                self.canvas,
                self._legend,
                self._message_box,
            ],
            **kwargs,
        )
        self.add_class("isc-map")
        self._redraw()

    # ------------------------------------------------------------------------------ public API

    @property
    def selected_ids(self) -> list[str]:
        """Every selected id (of all points, not only those drawn), in file order."""
        return [self.ids[i] for i in np.flatnonzero(self._mask)]

    @property
    def drawn_ids(self) -> list[str]:
        return list(self.canvas.ids)

    def select_polygon(self, polygon: Sequence[Sequence[float]], mode: str = "lasso") -> list[str]:
        """Select the points inside ``polygon`` (map coordinates in [0, 1], y up) as a lasso or box does."""
        self._mask = inside(self.xy, polygon, mode)
        self._show_selection()
        return self.selected_ids

    def select_box(self, x0: float, y0: float, x1: float, y1: float) -> list[str]:
        return self.select_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], "box")

    def show_in_gallery(self) -> None:
        """Show the selection in ``gallery`` (each set's share; the largest set is left showing)."""
        if self.gallery is None:
            self._say("no gallery: pass gallery= a Gallery to show the selection in", error=True)
            return
        by_set = self._by_set()
        if not by_set:
            self._say("nothing selected in a known set: draw a box or lasso first", error=True)
            return
        for set_name, ids in sorted(by_set.items(), key=lambda kv: len(kv[1])):
            m = self.manifests[set_name]
            mask = m.table["image_id"].isin(set(ids)).to_numpy(dtype=bool, na_value=False)
            self.gallery.show(m.subset(mask, f"embedding map: {len(ids)} selected"))
        self._say(f"showing {sum(map(len, by_set.values())):,} selected images in the gallery")

    def add_to_selection(self) -> UsedSample | None:
        try:
            used = add_to_selection(self.manifests, self.selected_ids, self.params_path)
        except IscKitError as err:
            self._say(str(err), error=True)
            return None
        self._say(used.summary())
        return used

    # ------------------------------------------------------------------------------ logic

    def _by_set(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for i in self.selected_ids:
            s = _set_of(self.manifests, i)
            if s is not None:
                out.setdefault(s, []).append(i)
        return out

    @observe("colour")
    def _on_colour(self, change: dict[str, Any]) -> None:
        self._redraw()

    def _redraw(self) -> None:
        codes, labels = self._classes[self.colour] or self._classes["set"]  # type: ignore[misc]
        self._sample = stratified_sample(codes, self.max_points, self.seed)
        order = np.argsort(-np.bincount(codes)[codes[self._sample]], kind="stable")  # small classes on top
        self._sample = self._sample[order]
        counts = np.bincount(codes, minlength=len(labels))
        with self.canvas.hold_sync():
            self.canvas.points = self.xy[self._sample].tobytes()
            self.canvas.codes = codes[self._sample].astype(np.uint8).tobytes()
            self.canvas.ids = [self.ids[i] for i in self._sample]
            self.canvas.sample_selected = self._mask[self._sample].astype(np.uint8).tobytes()
        self._legend.value = " ".join(
            f'<span class="isc-map-key"><span style="color:{PALETTE[k % len(PALETTE)]}">■</span> '
            f"{html.escape(label)} ({counts[k]:,})</span>"
            for k, label in enumerate(labels)
            if counts[k]
        )
        self._show_count()

    def _show_selection(self) -> None:
        self.n_selected = int(self._mask.sum())
        self.canvas.n_selected = self.n_selected
        self.canvas.sample_selected = self._mask[self._sample].astype(np.uint8).tobytes()
        self._show_count()

    def _show_count(self) -> None:
        self._count.value = f"{self.n_selected:,} selected"
        self._to_gallery.disabled = self._add.disabled = not self.n_selected

    def _on_shape(self, change: dict[str, Any]) -> None:
        self.select_polygon(self.canvas.polygon, self.canvas.shape_mode)

    def _on_hover(self, change: dict[str, Any]) -> None:
        i = change["new"]
        if i < 0 or i >= len(self._sample) or not self._images:
            self.canvas.thumb = b""
            return
        image_id = self.ids[self._sample[i]]
        set_name = _set_of(self.manifests, image_id)
        if set_name is None:
            self.canvas.thumb = b""
            return
        m = self.manifests[set_name]
        source = self._images.get(set_name) or self._images.get("*")
        try:
            (thumb,) = self._thumbs.load(source, m, entries(m, [image_id]))  # type: ignore[arg-type]
        except IscKitError as err:
            self._say(str(err), error=True)
            return
        self.canvas.thumb = thumb.data if thumb.ok else b""

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message = text
        css = "isc-error" if error else "isc-ok"
        self._message_box.value = f'<span class="{css}">{html.escape(text)}</span>' if text else ""


_STYLE = """<style>
.isc-map { color: var(--jp-ui-font-color1, #222); }
.isc-map-head, .isc-map-legend { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  color: var(--jp-ui-font-color1, #222); }
.isc-map-key { margin-right: 12px; }
.isc-map canvas { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; }
.isc-map .isc-error { color: var(--jp-error-color1, #b00020); }
</style>"""


def _load(descriptors: Any) -> tuple[list[str], np.ndarray]:
    if isinstance(descriptors, tuple):
        ids, vectors = list(descriptors[0]), np.ascontiguousarray(descriptors[1], dtype=np.float32)
        if vectors.ndim != 2 or len(ids) != len(vectors):
            raise ConfigError(f"embedding map: {len(ids)} ids but vectors of shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ConfigError("embedding map: the vectors hold NaN or infinite values; recompute them")
        return ids, vectors
    paths = [descriptors] if isinstance(descriptors, str | os.PathLike) else list(descriptors)
    if not paths:
        raise ConfigError("embedding map: no descriptor files given")
    all_ids: list[str] = []
    parts: list[np.ndarray] = []
    for p in paths:
        ids, vec = read_checked(p)
        if parts and vec.shape[1] != parts[0].shape[1]:
            raise ConfigError(
                f"descriptor file {p}: {vec.shape[1]} dimensions, but {paths[0]} has {parts[0].shape[1]}; "
                "describe every set with the same model"
            )
        all_ids += ids
        parts.append(vec)
    if len(set(all_ids)) != len(all_ids):
        raise ConfigError("embedding map: an image id is in two of the descriptor files; give each set once")
    return all_ids, np.concatenate(parts)


def _by_set(ids: list[str], manifests: Mapping[str, Manifest]) -> tuple[np.ndarray, list[str]]:
    labels = [*manifests] if manifests else []
    patterns = [(name, SETS[name].id_pattern) for name in ("query", "reference", "training")]
    import re

    known = {name: set(m.ids) for name, m in manifests.items()}
    codes = np.empty(len(ids), dtype=np.uint8)
    index = {label: k for k, label in enumerate(labels)}
    for r, image_id in enumerate(ids):
        name = next((s for s, members in known.items() if image_id in members), None)
        if name is None:
            name = next((s for s, pat in patterns if re.fullmatch(pat, image_id)), "other")
        if name not in index:
            index[name] = len(labels)
            labels.append(name)
        codes[r] = index[name]
    return codes, labels


def _by_truth(ids: list[str], gt: GroundTruth | None) -> tuple[np.ndarray, list[str]] | None:
    if gt is None:
        return None
    labels = [
        "matched query",
        "distractor query",
        "copied reference",
        "uncopied reference",
        "not in the ground truth",
    ]
    matched = {q for q, _ in gt.pairs}
    copied = {r for _, r in gt.pairs}
    ref = SETS["reference"].id_pattern
    import re

    def code(i: str) -> int:
        if i in matched:
            return 0
        if i in gt.queries:
            return 1
        if i in copied:
            return 2
        if re.fullmatch(ref, i) and (gt.references is None or i in gt.references):
            return 3
        return 4

    return np.array([code(i) for i in ids], dtype=np.uint8), labels


def _by_verdict(ids: list[str], errors: Any) -> tuple[np.ndarray, list[str]] | None:
    if errors is None:
        return None
    report = getattr(errors, "report", errors)
    threshold = float(getattr(errors, "threshold", report.threshold))
    labels = ["found", "missed", "distractor", "false positive", "no verdict"]
    table = report.queries
    wrong = table["best_wrong_score"].fillna(-np.inf).to_numpy() >= threshold
    found = table["best_true_score"].fillna(-np.inf).to_numpy() >= threshold
    distractor = (table["kind"] == "distractor").to_numpy()
    word = np.where(wrong, 3, np.where(distractor, 2, np.where(found, 0, 1)))
    of = dict(zip(table.index.astype(str), word, strict=True))
    return np.array([of.get(i, 4) for i in ids], dtype=np.uint8), labels
