"""Before the network: take entries from the local DVC cache, where a repository around the folder has them.

Switching a selection back (``T0001*``, then ``T000*`` again) names images whose bytes are already in
``.dvc/cache`` under their MD5. Each candidate object is hashed (in parallel, like verify) and, when
its MD5 is the manifest's, placed as the repository's ``cache.type`` would place it (a hard link for
``hardlink``, else a reflink or a copy; never a symlink, since a destination holds regular files),
then recorded as verified. Anything else still goes to the network.
"""

from __future__ import annotations

import logging
import os

from .._hashing import hash_files
from ..dvcfiles import find_repo, place_object
from ..errors import DvcError
from ..local import Destination
from ..manifest import Manifest
from ..placement import placing

logger = logging.getLogger(__name__)


def _modes(cache_type: str) -> list[str]:
    wanted = [t.strip() for t in cache_type.split(",") if t.strip()]
    modes = [m for m in wanted if m in ("hardlink", "reflink", "copy")]
    return [*modes, "copy"] if "copy" not in modes else modes


def take_from_cache(manifest: Manifest, rows: list[int], dest: Destination) -> tuple[list[int], int]:
    """Place the ``rows`` whose verified bytes are in the local DVC cache; (rows still to fetch, rows taken)."""
    try:
        repo = find_repo(dest.root)
    except DvcError:
        return rows, 0
    rels, md5s = manifest.relpaths, manifest.md5s
    candidates: list[tuple[int, str, int]] = []  # (index into rows, object path, size)
    for k, row in enumerate(rows):
        md5 = md5s[row]
        if not md5:
            continue
        obj = str(repo.object_path(md5))
        try:
            size = os.stat(obj).st_size
        except OSError:
            continue
        candidates.append((k, obj, size))
    if not candidates:
        return rows, 0
    modes = _modes(repo.cache_type)
    objects = {k: obj for k, obj, _ in candidates}
    taken: set[int] = set()
    good: list[tuple[str, int, int, str]] = []
    with dest.record_writer() as writer:
        for h in hash_files(candidates, total_bytes=sum(c[2] for c in candidates)):
            row = rows[h.row]
            if h.md5 is None or h.md5 != md5s[row]:
                continue  # a damaged cache object: the network has the right bytes
            final = dest.path(rels[row])
            dest.parent(final)
            if not _place(objects[h.row], final, modes):
                continue
            st = os.lstat(final)
            taken.add(h.row)
            good.append((rels[row], st.st_size, st.st_mtime_ns, h.md5))
            if len(good) >= 1000:
                writer.add_many(good)
                good.clear()
        writer.add_many(good)
    if taken:
        logger.info("took %d file(s) from the local DVC cache %s", len(taken), repo.cache)
    return [row for k, row in enumerate(rows) if k not in taken], len(taken)


def _place(obj: str, final: str, modes: list[str]) -> bool:
    """Put the object's bytes at ``final`` (replacing a corrupt file there) by the first mode that works."""
    for mode in modes:
        try:  # a workspace copy is the user's file (0o644), not a read-only cache object; a hardlink is both
            with placing(final, mode=None if mode == "hardlink" else 0o644) as p:
                place_object(obj, p.tmp, mode)
            return True
        except OSError as err:
            logger.debug("%s: cannot place by %s (%s)", final, mode, err)
    return False
