"""Writing output files. (Stand-in until the full module lands.)"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterable


def write_output(path: str | os.PathLike[str], data: bytes | Iterable[bytes]) -> None:
    chunks = [data] if isinstance(data, bytes | bytearray) else data
    if str(path) == "-":
        for c in chunks:
            sys.stdout.buffer.write(c)
        sys.stdout.buffer.flush()
        return
    target = os.path.realpath(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)}.isc-tmp-{os.getpid()}-{secrets.token_hex(4)}"
    )
    try:
        with open(tmp, "wb") as fh:
            for c in chunks:
                fh.write(c)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
