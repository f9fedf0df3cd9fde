"""Scoring, by track: :mod:`.matching` (predictions files and the ISC µAP) and :mod:`.descriptors`
(the descriptor track: HDF5 descriptors searched with faiss as the official evaluation does).

``from isc_kit.evaluate import evaluate, load_predictions, ...`` keeps working as before the split.
The descriptor names load faiss and h5py on first use only. The package is callable too:
``isc_kit.evaluate(gt, predictions)`` is :func:`evaluate`, whichever of the function or this package
the attribute ``isc_kit.evaluate`` happens to hold (importing a submodule rebinds it to the package).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .matching import (
    CAP_MODES,
    DEFAULT_MAX_PREDICTIONS,
    HEADER,
    Predictions,
    evaluate,
    find_duplicates,
    load_predictions,
    write_predictions,
)
from .result import EvalResult

_DESCRIPTOR_NAMES = ("read_descriptors", "write_descriptors", "evaluate_descriptors", "search_descriptors")

__all__ = [
    "CAP_MODES",
    "DEFAULT_MAX_PREDICTIONS",
    "HEADER",
    "EvalResult",
    "Predictions",
    "evaluate",
    "evaluate_descriptors",
    "find_duplicates",
    "load_predictions",
    "read_descriptors",
    "search_descriptors",
    "write_descriptors",
    "write_predictions",
]


def __getattr__(name: str) -> Any:
    if name in _DESCRIPTOR_NAMES:
        return getattr(importlib.import_module(".descriptors", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`evaluate` (see the module docstring)."""

    def __call__(self, *args: Any, **kwargs: Any) -> EvalResult:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
