"""Training-ready access: a pinned selection's local files as a map-style dataset.

:class:`PinnedImages` has ``len`` and ``[i] -> (image_id, PIL.Image)``, the protocol PyTorch's
``DataLoader`` (and most training loops) expect, without isc_kit importing torch. Each file is
checked against the manifest's MD5 the first time it is read in a process; the ids, paths and
MD5s are held as three fixed-width numpy byte arrays (no Python object per row), so a
1,000,000-image dataset pickles into a worker process in one small message.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ChecksumMismatchError, ConfigError, ObjectNotFoundError

logger = logging.getLogger(__name__)


class PinnedImages:
    """The images of a pinned manifest under ``root`` (a fetch destination: ``root/<relpath>``).

    ``pinned`` is a :class:`~isc_kit.Manifest` or the path of a ``.pinned`` file. ``transform``
    (e.g. torchvision's ``ToTensor()``) is applied to each image; ``mode`` (e.g. ``"RGB"``)
    converts it first. An entry without a known MD5 is refused unless ``require_md5=False``
    (it is then read unchecked). Picklable, so DataLoader worker processes accept it.
    """

    def __init__(
        self,
        pinned: Any,
        root: str | os.PathLike[str],
        *,
        transform: Callable[[Any], Any] | None = None,
        mode: str | None = None,
        require_md5: bool = True,
    ):
        from .manifest import Manifest
        from .pinned import load_pinned

        manifest = pinned if isinstance(pinned, Manifest) else load_pinned(pinned)
        self.set_name = manifest.set_name
        self.root = Path(root)
        self.transform = transform
        self.mode = mode
        self._ids = manifest.ids.fixed_width()
        self._relpaths = manifest.relpaths.fixed_width()
        self._md5 = manifest.md5s.fixed_width()
        unknown = int((self._md5 == b"").sum())
        if unknown and require_md5:
            first = self._ids[np.argmax(self._md5 == b"")].decode()
            raise ConfigError(
                f"{unknown} of {len(self._ids)} {self.set_name} entries have no known MD5 (first: {first}), "
                "so they cannot be verified; pin from the publisher's metadata CSV, or pass require_md5=False"
            )
        self._verified = np.zeros(len(self._ids), dtype=bool)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"PinnedImages({len(self)} {self.set_name} images under {str(self.root)!r})"

    def image_id(self, index: int) -> str:
        return self._ids[self._index(index)].decode()

    def path(self, index: int) -> Path:
        """Where entry ``index`` is expected on disk."""
        return self.root / self._relpaths[self._index(index)].decode()

    def _index(self, index: int) -> int:
        n = len(self._ids)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for {n} images")
        return i

    def read_bytes(self, index: int) -> bytes:
        """The file's bytes, checked against the manifest's MD5 on the first read in this process."""
        i = self._index(index)
        path = self.root / self._relpaths[i].decode()
        try:
            data = path.read_bytes()
        except FileNotFoundError as err:
            raise ObjectNotFoundError(
                f"{path}: not found; fetch the selection first (isc-kit fetch PINNED {self.root})",
                url=str(path),
            ) from err
        expected = self._md5[i].decode()
        if not self._verified[i] and expected:
            actual = hashlib.md5(data).hexdigest()
            if actual != expected:
                raise ChecksumMismatchError(
                    str(path),
                    expected,
                    actual,
                    action=f"the file was not used; repair it with `isc-kit verify PINNED {self.root} --repair`",
                )
            self._verified[i] = True
        return data

    def __getitem__(self, index: int) -> tuple[str, Any]:
        from PIL import Image

        i = self._index(index)
        data = self.read_bytes(i)
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert(self.mode) if self.mode else opened.copy()
        out = self.transform(image) if self.transform is not None else image
        return self._ids[i].decode(), out

    @property
    def n_verified(self) -> int:
        """How many entries this process has verified so far."""
        return int(self._verified.sum())
