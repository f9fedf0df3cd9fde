"""isc_kit: fetch, verify, pin and explore the Image Similarity Challenge (ISC 2021 / DISC21) image sets.

The public API is the names in ``__all__``; they are imported on first use so that
``import isc_kit`` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "IscKitError": "errors",
    "Source": "source",
    "resolve_source": "source",
    "Manifest": "manifest",
    "read_metadata": "metadata",
    "manifest_from_listing": "metadata",
    "load_pinned": "pinned",
    "write_pinned": "pinned",
    "Selection": "select",
    "select": "select",
    "plan_fetch": "transfer",
    "fetch": "transfer",
    "verify": "verify",
    "pin": "pin",
    "load_ground_truth": "groundtruth",
    "evaluate": "evaluate",
    "EmbeddedS3": "s3server",
    "PinnedImages": "dataset",
}

__all__ = [
    "EmbeddedS3",
    "IscKitError",
    "Manifest",
    "PinnedImages",
    "Selection",
    "Source",
    "evaluate",
    "fetch",
    "load_ground_truth",
    "load_pinned",
    "manifest_from_listing",
    "pin",
    "plan_fetch",
    "read_metadata",
    "resolve_source",
    "select",
    "verify",
    "write_pinned",
]

if TYPE_CHECKING:
    from .dataset import PinnedImages
    from .errors import IscKitError
    from .evaluate import evaluate
    from .groundtruth import load_ground_truth
    from .manifest import Manifest
    from .metadata import manifest_from_listing, read_metadata
    from .pin import pin
    from .pinned import load_pinned, write_pinned
    from .s3server import EmbeddedS3
    from .select import Selection, select
    from .source import Source, resolve_source
    from .transfer import fetch, plan_fetch
    from .verify import verify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'isc_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
