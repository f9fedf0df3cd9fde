"""Progress: the one protocol long steps report to, a no-op default, and tqdm bars (terminal or notebook).

The protocol is fsspec's ``Callback`` (``set_size``, ``relative_update`` in bytes) plus
``file_done(ok)`` and ``close()``. Steps take ``progress=`` and call it unconditionally; ``None``
means :data:`NO_PROGRESS`, and any fsspec ``Callback`` is accepted as it is (:func:`as_progress`
adds what it lacks). This module imports neither fsspec nor tqdm (each costs ~0.1 s of start-up);
:class:`TqdmProgress` imports tqdm when a bar is made, and speaks fsspec's callback interface
too, so it can be handed to fsspec calls.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    def set_size(self, size: int | None) -> None: ...

    def relative_update(self, inc: int = 1) -> None: ...

    def file_done(self, ok: bool = True) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """Reports nowhere."""

    def set_size(self, size: int | None) -> None:
        pass

    def relative_update(self, inc: int = 1) -> None:
        pass

    def file_done(self, ok: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


NO_PROGRESS = NoProgress()


class _Adapted:
    """An fsspec ``Callback`` (or anything with ``set_size``/``relative_update``) completed to :class:`Progress`."""

    def __init__(self, inner: Any):
        self.inner = inner

    def set_size(self, size: int | None) -> None:
        self.inner.set_size(size)

    def relative_update(self, inc: int = 1) -> None:
        self.inner.relative_update(inc)

    def file_done(self, ok: bool = True) -> None:
        done = getattr(self.inner, "file_done", None)
        if done is not None:
            done(ok)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def as_progress(progress: Any) -> Progress:
    """``None``/``False`` -> :data:`NO_PROGRESS`; a full :class:`Progress` as it is; an fsspec Callback adapted."""
    if progress is None or progress is False:
        return NO_PROGRESS
    if isinstance(progress, Progress):
        return progress
    return _Adapted(progress)


@contextlib.contextmanager
def default_progress(progress: Any, desc: str, files: int) -> Iterator[Progress]:
    """The caller's progress; for ``None`` inside a notebook a widget bar made (and closed) here.

    So a long step shows a bar in Jupyter without being asked; ``progress=False`` shows none.
    """
    if progress is None and files and in_notebook():
        bar = TqdmProgress(desc, files=files, notebook=True)
        try:
            yield bar
        finally:
            bar.close()
        return
    yield as_progress(progress)


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where a widget bar shows and stderr bars do not)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class TqdmProgress:
    """A bar with rate and ETA, plus files done / failed in the postfix.

    Counts bytes while the total size is known, else files (publisher manifests know no sizes):
    the bar always has a total, percentage and ETA. ``notebook``: True for ``tqdm.notebook``,
    False for the terminal bar on stderr, None to decide by :func:`in_notebook`. ``disable=None``
    hides the terminal bar when stderr is not a terminal.
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
        if notebook is None:
            notebook = in_notebook()
        if notebook:
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        options: dict[str, Any] = {"desc": desc, "dynamic_ncols": True, "smoothing": 0.1}
        if not notebook:
            options.update(file=sys.stderr, disable=disable)
        options.update(tqdm_kwargs)
        self.files_total = files
        self.files_done = 0
        self.files_failed = 0
        self.size: int | None = None
        self.value = 0
        self._by_files = False
        self.bar = tqdm(total=files or None, unit="file", **options)

    def set_size(self, size: int | None) -> None:
        """Bytes to come; when unknown (or 0 with files to come), the bar counts files instead."""
        self.size = size
        self._by_files = not size and bool(self.files_total)
        if self._by_files:
            self.bar.unit, self.bar.unit_scale = "file", False
            self.bar.total = self.files_total
        else:
            self.bar.unit, self.bar.unit_scale, self.bar.unit_divisor = "B", True, 1000
            self.bar.total = size or None
        self.bar.refresh()

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc
        if not self._by_files:
            self.bar.update(inc)

    def absolute_update(self, value: int) -> None:
        self.relative_update(value - self.value)

    def branched(self, *args: Any, **kwargs: Any) -> None:  # fsspec: no per-file child bars
        return None

    def call(self, *args: Any, **kwargs: Any) -> None:  # fsspec hook entry point
        pass

    def file_done(self, ok: bool = True) -> None:
        self.files_done += 1
        if not ok:
            self.files_failed += 1
        if self._by_files:
            self.bar.update(1)
        of = f"/{self.files_total:,}" if self.files_total else ""
        failed = f" failed={self.files_failed:,}" if self.files_failed else ""
        self.bar.set_postfix_str(f"files={self.files_done:,}{of}{failed}", refresh=False)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    desc: str = "fetch", *, files: int | None = None, notebook: bool | None = None, **kw: Any
) -> TqdmProgress:
    """A :class:`TqdmProgress` (a widget bar inside Jupyter, stderr elsewhere)."""
    return TqdmProgress(desc, files=files, notebook=notebook, **kw)


__all__ = [
    "NO_PROGRESS",
    "NoProgress",
    "Progress",
    "TqdmProgress",
    "as_progress",
    "default_progress",
    "progress_bar",
]
