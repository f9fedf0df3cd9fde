"""Formatting shared by the CLI and the widgets."""

from __future__ import annotations


def human_bytes(n: float | None, unknown: str = "unknown") -> str:
    """``23.4 KB`` in decimal units; ``unknown`` for None."""
    if n is None:
        return unknown
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
