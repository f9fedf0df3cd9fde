#!/usr/bin/env python3
"""Git clean filter for notebooks: what git stores has no outputs and no volatile metadata.

Reads a notebook on stdin, writes it on stdout with every code cell's outputs and execution count
emptied, cell metadata dropped (JupyterLab's ``collapsed``, ``scrolled``, ``execution`` timings,
``trusted``), and the notebook metadata reduced to the kernelspec and the language name (no widget
state, no language version). Standard library only, so it runs before the venv exists.
``make setup`` registers it (``git config filter.nbstrip.clean``); ``.gitattributes`` applies it to
``*.ipynb``. Input that is not a notebook passes through unchanged.
"""

from __future__ import annotations

import json
import sys

KEEP_NOTEBOOK_METADATA = ("kernelspec",)


def strip(book: dict) -> dict:
    meta = book.get("metadata", {})
    kept = {k: meta[k] for k in KEEP_NOTEBOOK_METADATA if k in meta}
    if "language_info" in meta:
        kept["language_info"] = {"name": meta["language_info"].get("name", "python")}
    book["metadata"] = kept
    for cell in book.get("cells", []):
        cell["metadata"] = {}
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return book


def main() -> int:
    text = sys.stdin.read()
    try:
        book = json.loads(text)
    except ValueError:
        sys.stdout.write(text)
        return 0
    if not isinstance(book, dict) or "cells" not in book:
        sys.stdout.write(text)
        return 0
    sys.stdout.write(json.dumps(strip(book), indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
