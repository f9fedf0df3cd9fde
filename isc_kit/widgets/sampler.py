"""The sampler: seed and size inputs, Resample, an optional "keep ground-truth pairs" switch, the sample
shown in a :class:`~.gallery.Gallery`, and "use this sample", which hands it to the DVC pipeline.

Traits ``set_name``, ``seed``, ``size``, ``keep_pairs`` and ``distractors`` drive the draw;
``sample`` (``{set: Manifest}``) is the result. The drawing and writing logic is in
:mod:`._sampling`.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Dict, Int, Unicode, observe

from ..errors import IscKitError
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from ._sampling import QUERY_SETS, UsedSample, draw_sample, use_sample
from .gallery import Gallery
from .imagesource import ImageSource
from .thumbnails import ThumbnailCache

logger = logging.getLogger(__name__)


class Sampler(widgets.VBox):
    """Draw seeded samples of a set, look at them, and write the one you like into params.yaml."""

    set_name = Unicode("")
    seed = Int(0)
    size = Int(24)
    keep_pairs = Bool(False)
    distractors = Int(0)
    sample = Dict()
    params_path = Unicode("params.yaml")
    status = Unicode("")

    def __init__(
        self,
        manifests: Manifest | Mapping[str, Manifest],
        images: ImageSource | Mapping[str, ImageSource],
        *,
        ground_truth: GroundTruth | None = None,
        params_path: str | os.PathLike[str] = "params.yaml",
        seed: int = 0,
        size: int = 24,
        thumbnails: ThumbnailCache | None = None,
        page_size: int = 24,
        **kwargs: Any,
    ):
        self._manifests = (
            {manifests.set_name: manifests} if isinstance(manifests, Manifest) else dict(manifests)
        )
        if not self._manifests:
            raise IscKitError("the sampler needs at least one manifest")
        self._ground_truth = ground_truth
        self._ready = False
        self._set_box = widgets.Dropdown(
            options=list(self._manifests), description="set", layout=widgets.Layout(width="200px")
        )
        self._seed_box = widgets.IntText(description="seed", layout=widgets.Layout(width="150px"))
        self._size_box = widgets.BoundedIntText(
            min=0, max=10_000_000, description="size", layout=widgets.Layout(width="160px")
        )
        self._query_set = next((s for s in self._manifests if s in QUERY_SETS), None)
        pairs_possible = (
            ground_truth is not None and self._query_set is not None and "reference" in self._manifests
        )
        self._pairs_box = widgets.Checkbox(
            description="keep ground-truth pairs",
            indent=False,
            disabled=not pairs_possible,
            tooltip=_PAIRS_TIP if pairs_possible else _why_no_pairs(ground_truth, self._manifests),
        )
        self._distractor_box = widgets.BoundedIntText(
            min=0, max=10_000_000, description="+ refs", layout=widgets.Layout(width="150px", display="none")
        )
        self._resample = widgets.Button(description="Resample", icon="random", button_style="info")
        self._resample.add_class("isc-resample")
        self._use = widgets.Button(description="Use this sample", icon="check", button_style="success")
        self._use.add_class("isc-use-sample")
        self._status_box = widgets.HTML()
        self._status_box.add_class("isc-sampler-status")
        first = next(iter(self._manifests))
        self.gallery = Gallery(self._manifests[first], images, thumbnails=thumbnails, page_size=page_size)
        self.gallery._set_box.layout.display = "none"  # the sampler's own set box drives it
        self.gallery.observe(self._on_gallery_set_name, "set_name")
        self._resample.on_click(self._on_resample_click)
        self._use.on_click(self._on_use_click)
        for box, name in (
            (self._set_box, "set_name"),
            (self._seed_box, "seed"),
            (self._size_box, "size"),
            (self._pairs_box, "keep_pairs"),
            (self._distractor_box, "distractors"),
        ):
            widgets.link((box, "value"), (self, name))
        super().__init__(
            [
                widgets.HBox([self._set_box, self._seed_box, self._size_box, self._resample]),
                widgets.HBox([self._pairs_box, self._distractor_box, self._use]),
                self._status_box,
                self.gallery,
            ],
            **kwargs,
        )
        self.add_class("isc-sampler")
        with self.hold_trait_notifications():
            self.params_path = os.fspath(params_path)
            self.seed, self.size = seed, size
            self.set_name = first
        self._ready = True
        self._draw()

    # ------------------------------------------------------------------------------ public API

    def resample(self) -> None:
        """A new draw: the next seed (so every sample you saw can be drawn again from its seed)."""
        self.seed += 1

    def use(self) -> UsedSample | None:
        """Write the current sample for the pipeline (see :func:`._sampling.use_sample`)."""
        try:
            result = use_sample(self.sample, self.params_path)
        except (IscKitError, OSError) as err:
            self._say(f"could not use this sample: {err}", error=True)
            return None
        self._say(result.summary())
        return result

    # ------------------------------------------------------------------------------ events

    @observe("set_name", "seed", "size", "keep_pairs", "distractors")
    def _on_draw_inputs(self, change: dict[str, Any]) -> None:
        if change["name"] == "keep_pairs":
            self._distractor_box.layout.display = "flex" if self.keep_pairs else "none"
        self._draw()

    def _on_gallery_set_name(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self.set_name and change["new"] in self._manifests:
            self.set_name = change["new"]

    def _on_resample_click(self, _button: widgets.Button) -> None:
        self.resample()

    def _on_use_click(self, _button: widgets.Button) -> None:
        self.use()

    def _draw(self) -> None:
        if not self._ready or not self.set_name:
            return
        pairs = self.keep_pairs and self._ground_truth is not None and self._query_set is not None
        # with pairs kept the draw is always of queries; the set box picks which half is shown
        drawn_from = (
            (self.set_name if self.set_name in QUERY_SETS else self._query_set) if pairs else self.set_name
        )
        try:
            sample = draw_sample(
                self._manifests,
                str(drawn_from),
                self.size,
                self.seed,
                ground_truth=self._ground_truth if pairs else None,
                distractors=self.distractors,
            )
        except IscKitError as err:  # the gallery must not keep showing an older sample
            self.sample = {}
            with self.gallery.hold_trait_notifications():
                self.gallery.manifests = {}
            self._say(str(err), error=True)
            return
        self.sample = sample
        counts = ", ".join(f"{len(m)} {s}" for s, m in sample.items())
        how = "ground-truth pairs, " if pairs else ""
        self._say(f"sample ({how}seed {self.seed}): {counts}; showing {self.set_name}")
        with self.gallery.hold_trait_notifications():
            self.gallery.manifests = dict(sample)
            self.gallery.set_name = self.set_name if self.set_name in sample else str(drawn_from)
        self.gallery.selected = ""

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status = text
        cls = "isc-error" if error else "isc-ok"
        self._status_box.value = f'<span class="{cls}">{html.escape(text)}</span>'


_PAIRS_TIP = "sample queries and bring every reference they match (plus '+ refs' unmatched ones)"


def _why_no_pairs(ground_truth: GroundTruth | None, manifests: Mapping[str, Manifest]) -> str:
    """Why "keep ground-truth pairs" is disabled, in one plain sentence."""
    if ground_truth is None:
        return "Keeping pairs needs the ground truth: pass ground_truth= to the sampler."
    return "Keeping pairs needs both a query and a reference manifest in the sampler."
