"""Manifests: the entries of one set a selection names, and their pinned file form.

A :class:`Manifest` is the one entry model of isc_kit: ``image_id, relpath, md5, size`` per
image of one set, sorted by id, held as columns (:class:`~isc_kit.columns.StrColumn` and
``array('q')``; never a Python object per row) with the standard library only, so ``isc-kit
fetch`` and ``verify`` start without pandas. ``relpath`` is the key below the set's prefix and
the path below a local destination. :meth:`Manifest.to_arrow` and :attr:`Manifest.table` are
views for selections and for people (pandas); they are not a second implementation.

Its file form, the pinned manifest, is :mod:`isc_kit.pinned`.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .catalog import ImageSet, get_set
from .columns import StrColumn

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

COLUMNS = ("image_id", "relpath", "md5", "size")
_BLOCK = 65_536  # rows canonicalised per block: bounded transient lists

#: One item of a transfer: (relpath, S3 key, md5 or None, size or None).
Item = tuple[str, str, "str | None", "int | None"]


@dataclass(frozen=True, eq=False)
class Manifest:
    """Images of one set, sorted by id: ``ids``, ``relpaths``, ``md5s`` ("" = unknown), ``sizes`` (-1 = unknown)."""

    set_name: str
    bucket: str
    prefix: str
    ids: StrColumn
    relpaths: StrColumn
    md5s: StrColumn
    sizes: array = field(repr=False)
    selection: str = ""

    # ------------------------------------------------------------------------------------ building

    @classmethod
    def from_rows(
        cls,
        set_name: str,
        bucket: str,
        prefix: str,
        rows: Iterable[tuple[str, str, str | None, int | None]],
        selection: str = "",
    ) -> Manifest:
        """From ``(image_id, relpath, md5 or None, size or None)`` rows; sorted by id here."""
        ordered = sorted(rows, key=lambda r: r[0])
        sizes = array("q", (-1 if r[3] is None else int(r[3]) for r in ordered))
        return cls(
            set_name,
            bucket,
            prefix,
            StrColumn.from_strings(r[0] for r in ordered),
            StrColumn.from_strings(r[1] for r in ordered),
            StrColumn.from_strings(r[2] or "" for r in ordered),
            sizes,
            selection,
        )

    @classmethod
    def from_arrow(
        cls, set_name: str, bucket: str, prefix: str, table: pa.Table, selection: str = ""
    ) -> Manifest:
        """From an Arrow table with the four columns (nulls for unknown md5/size); sorted by id here."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if table.num_rows > 1:
            table = table.take(pc.sort_indices(table["image_id"]))
        size = pc.fill_null(table["size"].cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        sizes = array("q")
        sizes.frombytes(np.ascontiguousarray(size, dtype=np.int64).tobytes())
        return cls(
            set_name,
            bucket,
            prefix,
            StrColumn.from_arrow(table["image_id"]),
            StrColumn.from_arrow(table["relpath"]),
            StrColumn.from_arrow(table["md5"]),
            sizes,
            selection,
        )

    @classmethod
    def from_pandas(
        cls, set_name: str, bucket: str, prefix: str, frame: pd.DataFrame, selection: str = ""
    ) -> Manifest:
        """From a DataFrame with ``image_id, relpath, md5, size`` (NA for unknown)."""
        import pyarrow as pa

        table = pa.table(
            {
                "image_id": pa.array(frame["image_id"], pa.string(), from_pandas=True),
                "relpath": pa.array(frame["relpath"], pa.string(), from_pandas=True),
                "md5": pa.array(frame["md5"], pa.string(), from_pandas=True),
                "size": pa.array(frame["size"], pa.int64(), from_pandas=True),
            }
        )
        return cls.from_arrow(set_name, bucket, prefix, table, selection)

    # ------------------------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def image_set(self) -> ImageSet:
        return get_set(self.set_name).with_prefix(self.prefix)

    @property
    def total_bytes(self) -> int | None:
        """Sum of sizes, or None when any size is unknown."""
        return None if -1 in self.sizes else sum(self.sizes)

    @property
    def md5_known(self) -> int:
        o = self.md5s.offsets
        return sum(1 for i in range(len(self)) if o[i + 1] != o[i])

    def md5(self, row: int) -> str | None:
        return self.md5s[row] or None

    def size(self, row: int) -> int | None:
        s = self.sizes[row]
        return None if s < 0 else s

    def key(self, relpath: str) -> str:
        """The S3 key of an entry."""
        return self.prefix + relpath

    def items(self, rows: Iterable[int] | None = None) -> Iterator[Item]:
        """``(relpath, key, md5 or None, size or None)`` of ``rows`` (default: all), streamed."""
        prefix, rels, md5s, sizes = self.prefix, self.relpaths, self.md5s, self.sizes
        for row in range(len(self)) if rows is None else rows:
            rel, s = rels[row], sizes[row]
            yield rel, prefix + rel, md5s[row] or None, None if s < 0 else s

    # ------------------------------------------------------------------------------------ subsets

    def take(self, rows: Sequence[int], selection: str | None = None) -> Manifest:
        """The entries at ``rows`` (ascending), as a new manifest."""
        return replace(
            self,
            ids=self.ids.take(rows),
            relpaths=self.relpaths.take(rows),
            md5s=self.md5s.take(rows),
            sizes=array("q", (self.sizes[r] for r in rows)),
            selection=self.selection if selection is None else selection,
        )

    def subset(self, mask: Any, selection: str | None = None) -> Manifest:
        """Rows where ``mask`` (a sequence of booleans, e.g. a numpy array) is true."""
        return self.take([i for i, keep in enumerate(mask) if keep], selection)

    # ------------------------------------------------------------------------------------ views

    def to_arrow(self) -> pa.Table:
        """The entries as an Arrow table (zero-copy strings; nulls for unknown md5 and size)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        md5 = self.md5s.to_arrow()
        size = np.frombuffer(self.sizes, dtype=np.int64) if len(self) else np.zeros(0, np.int64)
        return pa.table(
            {
                "image_id": self.ids.to_arrow().cast(pa.string()),
                "relpath": self.relpaths.to_arrow().cast(pa.string()),
                "md5": pc.if_else(pc.equal(md5, ""), pa.scalar(None, pa.large_string()), md5).cast(
                    pa.string()
                ),
                "size": pa.array(size, pa.int64(), mask=size < 0),
            }
        )

    def to_pandas(self) -> pd.DataFrame:
        """A pandas view (``image_id, relpath, md5, size``; string[pyarrow] and Int64 with NA for unknown)."""
        import pandas as pd
        import pyarrow as pa

        return self.to_arrow().to_pandas(
            types_mapper=lambda t: (
                pd.StringDtype("pyarrow")
                if t == pa.string()
                else pd.Int64Dtype()
                if t == pa.int64()
                else None
            )
        )

    @cached_property
    def table(self) -> pd.DataFrame:
        """:meth:`to_pandas`, made once (for people and widgets; programs use the columns)."""
        return self.to_pandas()

    # ------------------------------------------------------------------------------------ identity

    def canonical_rows(self) -> Iterator[bytes]:
        """The pinned rows in blocks of bytes (``id,relpath,md5,size\\n``)."""
        ids, rels, md5s, sizes = self.ids, self.relpaths, self.md5s, self.sizes
        for start in range(0, len(self), _BLOCK):
            stop = min(start + _BLOCK, len(self))
            yield b"".join(
                b"%s,%s,%s,%s\n"
                % (ids.raw(i), rels.raw(i), md5s.raw(i), b"" if sizes[i] < 0 else b"%d" % sizes[i])
                for i in range(start, stop)
            )

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the canonical rows: equal for equal content on any machine."""
        digest = hashlib.sha256()
        for block in self.canonical_rows():
            digest.update(block)
        return "sha256:" + digest.hexdigest()


def concat(manifests: Iterable[Manifest]) -> pd.DataFrame:
    """All rows of several manifests with a ``set`` column (for overviews)."""
    import pandas as pd

    frames = [m.table.assign(set=m.set_name) for m in manifests]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*COLUMNS, "set"])
