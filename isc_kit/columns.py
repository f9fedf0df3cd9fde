"""A column of strings stored back to back: one ``bytes`` object and int64 offsets, never a str per row.

This is Arrow's ``large_string`` layout, so :meth:`StrColumn.to_arrow` is zero-copy, yet it needs
only the standard library: the fetch and verify paths hold a million relpaths and md5s in a few
tens of MB and start without importing numpy, pyarrow or pandas.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


class StrColumn(Sequence[str]):
    """An immutable sequence of UTF-8 strings: ``data`` holds them back to back, ``offsets`` has n + 1 ends."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: bytes, offsets: array):
        if offsets.typecode != "q" or not len(offsets) or offsets[0] != 0 or offsets[-1] != len(data):
            raise ValueError("offsets must be int64, start at 0 and end at len(data)")
        self.data = data
        self.offsets = offsets

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> StrColumn:
        return cls.from_raw(v.encode() for v in values)

    @classmethod
    def from_arrow(cls, values: pa.Array | pa.ChunkedArray) -> StrColumn:
        """From an Arrow string array (nulls become ""); copies the two buffers once."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pc.fill_null(values.cast(pa.large_string()), "")
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
        n = len(arr)
        if n == 0:
            return cls(b"", array("q", [0]))
        ends = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
        start, stop = int(ends[0]), int(ends[-1])
        offsets = array("q")
        offsets.frombytes((ends - start).tobytes())
        return cls(arr.buffers()[2].to_pybytes()[start:stop], offsets)

    def to_arrow(self) -> pa.LargeStringArray:
        import pyarrow as pa

        return pa.LargeStringArray.from_buffers(
            len(self), pa.py_buffer(self.offsets), pa.py_buffer(self.data)
        )

    def fixed_width(self) -> np.ndarray:
        """The values as a numpy ``S<width>`` array (one copy when all have one length, as ids and md5s do)."""
        import numpy as np

        n = len(self)
        if n == 0:
            return np.zeros(0, dtype="S1")
        ends = np.frombuffer(self.offsets, dtype=np.int64)
        widths = np.diff(ends)
        width = int(widths.max())
        if width > 0 and (widths == width).all():
            return np.frombuffer(self.data, dtype=f"S{width}").copy()
        return np.array([self.raw(i) for i in range(n)], dtype=f"S{max(width, 1)}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        o = self.offsets
        return self.data[o[index] : o[index + 1]].decode()

    def raw(self, index: int) -> bytes:
        """The UTF-8 bytes of one value (no decoding)."""
        o = self.offsets
        return self.data[o[index] : o[index + 1]]

    def __iter__(self) -> Iterator[str]:
        data, o = self.data, self.offsets
        for i in range(len(o) - 1):
            yield data[o[i] : o[i + 1]].decode()

    def take(self, rows: Iterable[int]) -> StrColumn:
        data, o = self.data, self.offsets
        return StrColumn.from_raw(data[o[i] : o[i + 1]] for i in rows)

    @classmethod
    def from_raw(cls, values: Iterable[bytes]) -> StrColumn:
        offsets = array("q", [0])
        parts: list[bytes] = []
        end = 0
        for raw in values:
            parts.append(raw)
            end += len(raw)
            offsets.append(end)
        return cls(b"".join(parts), offsets)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StrColumn):
            return self.data == other.data and self.offsets == other.offsets
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(repr(v) for v in self[:3])
        return f"StrColumn([{shown}{', ...' if len(self) > 3 else ''}], n={len(self)})"

    def tolist(self) -> list[str]:
        return list(self)
