"""Reading input files: regular files (or ``-``) only, under a size cap. (Stand-in until the full module lands.)"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

from .errors import InputFileError, Problem

PINNED_LIMIT = 1 << 30


def read_input(path: str | os.PathLike[str], *, what: str, limit: int, fs: Any = None) -> bytes:
    """The bytes of ``path``; refuses anything but a regular file (or ``-``) and more than ``limit`` bytes."""
    name = str(path)
    if name == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        try:
            with open(name, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise InputFileError(
                        name, [Problem(0, "", name, f"not a regular file; pass a {what} file")]
                    )
                data = fh.read(limit + 1)
        except FileNotFoundError:
            raise InputFileError(
                name, [Problem(0, "", name, "no such file")], hint=f"check the {what} path"
            ) from None
        except IsADirectoryError:
            raise InputFileError(name, [Problem(0, "", name, f"is a folder, not a {what}")]) from None
        except PermissionError:
            raise InputFileError(name, [Problem(0, "", name, "permission denied")]) from None
    if len(data) > limit:
        raise InputFileError(name, [Problem(0, "", name, f"larger than {limit:,} bytes; not a {what}")])
    return data
