"""Pure view logic of the gallery: pages over a list of ids, and the pattern box's filter syntax.

Nothing here imports ipywidgets; the widget classes call these functions and the tests check
them without a frontend.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..select import Filter

PAGE_SIZES = (12, 24, 48, 96)


@dataclass(frozen=True)
class PageView:
    """Which slice of ``total`` items page ``page`` (0-based, already clamped) shows."""

    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1, so an empty selection still has a page 1 of 1)."""
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def start(self) -> int:
        return self.page * self.page_size

    @property
    def stop(self) -> int:
        return min(self.start + self.page_size, self.total)

    @property
    def is_first(self) -> bool:
        return self.page == 0

    @property
    def is_last(self) -> bool:
        return self.page >= self.pages - 1

    def label(self) -> str:
        """``'page 2 / 5 · images 25–48 of 110'`` (or ``'no images'``)."""
        if self.total == 0:
            return "page 1 / 1 · no images"
        return f"page {self.page + 1} / {self.pages} · images {self.start + 1}–{self.stop} of {self.total:,}"

    def items(self, ids: Sequence[str]) -> list[str]:
        return list(ids[self.start : self.stop])


def page_view(page: int, page_size: int, total: int) -> PageView:
    """A :class:`PageView` with ``page`` clamped into range (negative counts from the end, like -1 = last)."""
    if page_size < 1:
        raise ConfigError(f"page size must be at least 1, not {page_size}")
    pages = max(1, math.ceil(total / page_size))
    if page < 0:
        page = pages + page
    return PageView(min(max(page, 0), pages - 1), page_size, total)


def page_of(index: int, page_size: int) -> int:
    """The page that shows item ``index``."""
    return index // page_size


def parse_pattern(text: str) -> tuple[Filter, ...]:
    """The pattern box's text as ordered AWS CLI filters.

    Either the AWS CLI's own flags (``--exclude "*" --include "Q00*"``, applied in order, last
    match wins, as ``aws s3 cp --recursive`` does), or bare globs as a shorthand: ``Q00* Q01*``
    keeps only keys matching any of them (``--exclude "*" --include Q00* --include Q01*``).
    Patterns match the key below the set's prefix, e.g. ``Q00012.jpg``. Empty text keeps all.
    """
    try:
        tokens = shlex.split(text)
    except ValueError as err:
        raise ConfigError(f"pattern {text!r}: {err}; close the quote") from None
    if not tokens:
        return ()
    if not any(t.startswith("--") for t in tokens):
        return (("exclude", "*"), *(("include", t) for t in tokens))
    filters: list[Filter] = []
    i = 0
    while i < len(tokens):
        flag = tokens[i]
        value = None
        if "=" in flag and flag.startswith("--"):
            flag, value = flag.split("=", 1)
        if flag not in ("--include", "--exclude"):
            raise ConfigError(
                f"pattern {text!r}: {tokens[i]!r} is not --include or --exclude; "
                'write e.g. --exclude "*" --include "Q00*", or just Q00*'
            )
        if value is None:
            if i + 1 >= len(tokens):
                raise ConfigError(f"pattern {text!r}: {flag} needs a glob after it, e.g. {flag} 'Q00*'")
            value = tokens[i + 1]
            i += 1
        filters.append(("include" if flag == "--include" else "exclude", value))
        i += 1
    return tuple(filters)
