"""The tracked outputs pull and push walk (:class:`Out`) and what a pull did (:class:`PullResult`),
below :mod:`.pull`, :mod:`.pull_cachefill` and :mod:`.pull_workspace`, which all use them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .dvc_checkout import iter_listing
from .results import Result


@dataclass
class Out:
    """One tracked output: workspace path, object id, and (for a folder) its ``.dir`` bytes."""

    path: str
    oid: str
    remote: str | None = None
    size: int = 0
    listing: bytes | None = None

    @property
    def is_dir(self) -> bool:
        return self.oid.endswith(".dir")

    @property
    def root(self) -> str:
        """The folder the entries' relpaths are relative to."""
        return self.path if self.is_dir else os.path.dirname(self.path)

    def entries(self) -> Iterator[tuple[str, str]]:
        """(relpath below :attr:`root`, md5) of every file the output holds."""
        if not self.is_dir:
            yield os.path.basename(self.path), self.oid
            return
        assert self.listing is not None
        yield from iter_listing(self.listing)


@dataclass
class PullResult(Result):
    """What :func:`isc_kit.pull.pull` did. ``ok`` when nothing failed and nothing was left in the way."""

    outs: int = 0
    files: int = 0
    fetched: int = 0
    cached: int = 0
    placed: int = 0
    unchanged: int = 0
    recorded: int = 0
    bytes: int = 0
    conflicts: list[str] = field(default_factory=list)
    link_types: list[str] = field(default_factory=list)

    FAILED_KEY: ClassVar[str] = "object"

    @property
    def ok(self) -> bool:
        return not self.failed and not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["conflicts"] = list(self.conflicts)
        return d

    def summary(self) -> str:
        rate = self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.files:,} files in {self.outs} output(s): {self.fetched:,} objects fetched "
            f"({self.bytes / 1e6:,.1f} MB, MD5-checked), {self.cached:,} already cached; {self.placed:,} placed, "
            f"{self.unchanged:,} already in place; {len(self.failed):,} failed in {self.seconds:.1f} s "
            f"({rate:,.1f} MB/s)"
        )
        if self.conflicts:
            text += f"; {len(self.conflicts):,} modified file(s) left alone (--force replaces them)"
        return text

    __str__ = summary
