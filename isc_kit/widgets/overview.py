"""The overview: counts, bytes and verified share per set, and plots of file sizes and image dimensions.

Computed from the manifests and the images present locally (a fetch destination, or the lazy
S3 cache). :func:`overview_table` and :func:`image_stats` are pure data; :func:`plot_overview`
draws with matplotlib's object API (no pyplot state); :class:`Overview` shows both.
"""

from __future__ import annotations

import html
import io
import logging
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .._format import human_bytes
from ..manifest import Manifest
from .imagesource import VERIFIED, ImageSource, entries

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ("set", "images", "bytes", "local", "verified", "verified_share")


def _source_for(images: ImageSource | Mapping[str, ImageSource], set_name: str) -> ImageSource:
    if isinstance(images, Mapping):
        return images.get(set_name) or images["*"]
    return images


def image_stats(
    manifests: Mapping[str, Manifest], images: ImageSource | Mapping[str, ImageSource]
) -> pd.DataFrame:
    """One row per image: ``set, image_id, bytes, local, state, width, height``.

    ``bytes`` is the manifest's size, else the local file's; ``width``/``height`` come from the
    header of the local file (<NA> when it is not local or unreadable).
    """
    rows: list[dict[str, Any]] = []
    for set_name, manifest in manifests.items():
        source = _source_for(images, set_name)
        for e in entries(manifest):
            path = source.local_path(manifest, e)
            size, width, height = e.size, None, None
            if path is not None:
                size = size if size is not None else path.stat().st_size
                try:
                    with Image.open(path) as im:
                        width, height = im.size
                except (UnidentifiedImageError, OSError):
                    pass
            rows.append(
                {
                    "set": set_name,
                    "image_id": e.image_id,
                    "bytes": size,
                    "local": path is not None,
                    "state": source.state(manifest, e),
                    "width": width,
                    "height": height,
                }
            )
    frame = pd.DataFrame(rows, columns=["set", "image_id", "bytes", "local", "state", "width", "height"])
    for col in ("bytes", "width", "height"):
        frame[col] = frame[col].astype("Int64")
    return frame


def overview_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Per set: images, bytes (None when any size is unknown), local files, verified files and share."""
    out = []
    for set_name, group in stats.groupby("set", sort=False):
        n = len(group)
        verified = int((group["state"] == VERIFIED).sum())
        out.append(
            {
                "set": set_name,
                "images": n,
                "bytes": None if group["bytes"].isna().any() else int(group["bytes"].sum()),
                "local": int(group["local"].sum()),
                "verified": verified,
                "verified_share": verified / n if n else 0.0,
            }
        )
    return pd.DataFrame(out, columns=list(TABLE_COLUMNS))


def table_html(table: pd.DataFrame) -> str:
    """The overview table as a small HTML table with human units."""
    head = "".join(f"<th>{c}</th>" for c in ("set", "images", "bytes", "local", "verified"))
    rows = []
    for r in table.itertuples(index=False):
        rows.append(
            f"<tr><td>{html.escape(str(r.set))}</td><td>{r.images:,}</td><td>{human_bytes(r.bytes)}</td>"
            f"<td>{r.local:,}</td><td>{r.verified:,} ({r.verified_share:.0%})</td></tr>"
        )
    return f'<table class="isc-overview-table"><tr>{head}</tr>{"".join(rows)}</table>'


#: Text, axes and ticks are drawn in this colour, then replaced by JupyterLab's font colour in the SVG,
#: so the plot follows the light or dark theme (and a theme switch) without being redrawn.
INK = "#010203"
THEME_INK = "var(--jp-ui-font-color1, #222)"
#: The figure's style: transparent background, theme ink for everything that is not data.
THEME_STYLE: Any = {  # typed Any: matplotlib types rc keys as a Literal union
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "legend.frameon": False,
    "svg.fonttype": "none",
}


def plot_overview(stats: pd.DataFrame) -> Any:
    """A matplotlib Figure: file-size histogram and width × height scatter, one colour per set."""
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context(THEME_STYLE):
        return _plot(stats, Figure(figsize=(10, 3.6), layout="constrained"))


def _plot(stats: pd.DataFrame, fig: Any) -> Any:
    ax_size, ax_dims = fig.subplots(1, 2)
    for set_name, group in stats.groupby("set", sort=False):
        sizes = group["bytes"].dropna().astype(float) / 1000
        if len(sizes):
            ax_size.hist(sizes, bins=30, alpha=0.6, label=str(set_name))
        dims = group.dropna(subset=["width", "height"])
        if len(dims):
            ax_dims.scatter(
                dims["width"].astype(int), dims["height"].astype(int), s=8, alpha=0.6, label=str(set_name)
            )
    ax_size.set(title="file sizes", xlabel="KB", ylabel="images")
    ax_dims.set(title="image dimensions (local files)", xlabel="width (px)", ylabel="height (px)")
    for ax in (ax_size, ax_dims):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def figure_svg(fig: Any) -> str:
    """The figure as inline SVG whose text and axes take JupyterLab's font colour (light or dark)."""
    import matplotlib as mpl

    out = io.StringIO()
    with mpl.rc_context(THEME_STYLE):
        fig.savefig(out, format="svg")
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: it is inlined in HTML
    return svg.replace(INK, THEME_INK)


class Overview(widgets.VBox):
    """Counts, bytes and verified share per set, with size and dimension plots; ``refresh()`` recomputes."""

    def __init__(
        self,
        manifests: Manifest | Mapping[str, Manifest],
        images: ImageSource | Mapping[str, ImageSource],
        **kwargs: Any,
    ):
        self._manifests = (
            {manifests.set_name: manifests} if isinstance(manifests, Manifest) else dict(manifests)
        )
        self._images = images
        self._table_box = widgets.HTML()
        self._table_box.add_class("isc-overview")
        self._plot = widgets.HTML()
        self._plot.add_class("isc-overview-plot")
        self._refresh_button = widgets.Button(description="refresh", icon="refresh")
        self._refresh_button.on_click(lambda _b: self.refresh())
        self.stats = pd.DataFrame()
        self.table = pd.DataFrame()
        super().__init__([self._refresh_button, self._table_box, self._plot], **kwargs)
        self.refresh()

    def refresh(self) -> None:
        self.stats = image_stats(self._manifests, self._images)
        self.table = overview_table(self.stats)
        self._table_box.value = table_html(self.table)
        self._plot.value = figure_svg(plot_overview(self.stats))
