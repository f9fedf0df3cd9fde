"""Progress adapters: fsspec ``Callback`` objects that drive a tqdm bar (terminal or notebook).

The core (:mod:`isc_kit.transfer`, :mod:`isc_kit.verify`) only calls ``set_size``,
``relative_update`` (bytes) and, when present, ``file_done(ok)``; it never imports tqdm.
"""

from __future__ import annotations

import sys
from typing import Any

from fsspec.callbacks import Callback


class TqdmProgress(Callback):
    """A bytes bar with rate and ETA, plus files done / failed in the postfix.

    ``notebook``: True for ``tqdm.notebook``, False for the terminal bar on stderr, None to let
    ``tqdm.auto`` decide. ``disable=None`` hides the terminal bar when stderr is not a terminal.
    """

    def __init__(
        self,
        desc: str = "fetch",
        *,
        files: int | None = None,
        notebook: bool | None = None,
        disable: bool | None = None,
        **tqdm_kwargs: Any,
    ):
        super().__init__()
        if notebook is None:
            from tqdm.auto import tqdm
        elif notebook:
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        options: dict[str, Any] = {
            "desc": desc,
            "unit": "B",
            "unit_scale": True,
            "unit_divisor": 1000,
            "dynamic_ncols": True,
            "smoothing": 0.1,
        }
        if notebook is False or notebook is None:
            options.update(file=sys.stderr, disable=disable)
        options.update(tqdm_kwargs)
        self.files_total = files
        self.files_done = 0
        self.files_failed = 0
        self.bar = tqdm(total=0, **options)

    def set_size(self, size: int | None) -> None:
        self.size = size
        self.bar.total = size or None
        self.bar.refresh()

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc
        self.bar.update(inc)

    def absolute_update(self, value: int) -> None:
        self.relative_update(value - self.value)

    def call(self, *args: Any, **kwargs: Any) -> None:  # fsspec hook entry point: keep the bar in step
        self.bar.update(self.value - self.bar.n)

    def file_done(self, ok: bool = True) -> None:
        self.files_done += 1
        if not ok:
            self.files_failed += 1
        of = f"/{self.files_total:,}" if self.files_total else ""
        failed = f" failed={self.files_failed:,}" if self.files_failed else ""
        self.bar.postfix = f"files={self.files_done:,}{of}{failed}"

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    desc: str = "fetch", *, files: int | None = None, notebook: bool | None = None, **kw: Any
) -> TqdmProgress:
    """A :class:`TqdmProgress` (``tqdm.auto`` picks the notebook widget inside Jupyter)."""
    return TqdmProgress(desc, files=files, notebook=notebook, **kw)


__all__ = ["TqdmProgress", "progress_bar"]
