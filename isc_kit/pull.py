"""``isc-kit pull``: a DVC-tracked version from the team remote into cache and workspace, at engine speed.

For each tracked output (``.dvc`` files and ``dvc.lock`` outs, as DVC's own index lists them)
the ``.dir`` object is read from the local cache, else fetched from the remote; the objects the
cache lacks are fetched with the same engine as ``isc-kit fetch`` (every body MD5-checked
before it is renamed into ``.dvc/cache/files/md5/xx/...``, which ``dvc pull`` does not do by
default); then each workspace file is placed as ``dvc checkout`` would for the repository's
``cache.type`` (see :mod:`isc_kit.dvc_checkout`) and recorded in DVC's state database, so the next
``dvc status`` hashes nothing and ``dvc checkout`` has nothing to do.

Resumable after ``kill -9``: objects are renamed into the cache only once verified (the
engine's verified record beside the cache's ``md5`` folder says which ones are still writable),
and workspace files are renamed into place from temp names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ._dvcremote import DvcRemote, resolve_remote
from .errors import DvcError
from .outs import Out, PullResult

logger = logging.getLogger(__name__)

DEFAULT_JOBS = 128


def pull(
    repo_root: str | os.PathLike[str] = ".",
    targets: Sequence[str] = (),
    *,
    remote: str | None = None,
    jobs: int | None = None,
    retries: int = 5,
    force: bool = False,
    make_progress: Any = None,
    from_source: str | os.PathLike[str] | None = None,
) -> PullResult:
    """Fetch what the cache lacks for ``targets`` (default: every tracked output) and check it out.

    ``from_source``: a pinned manifest; objects the remote lacks are fetched from its public
    bucket by md5 (off by default: a remote missing objects is a push that did not finish, and
    a ``.dvc`` file does not name the manifest it came from).

    ``make_progress(n_objects)`` may return a progress callback (``set_size``,
    ``relative_update``, ``file_done``, ``close``) for the transfer.
    """
    from dvc.repo import Repo

    started = time.perf_counter()
    try:
        repo = Repo(os.fspath(repo_root))
    except Exception as err:
        raise DvcError(
            f"{repo_root}: cannot open the DVC repository ({err}); run inside a `dvc init` repo"
        ) from None
    try:
        with _locked(repo):
            result = _pull(
                repo, targets, remote, jobs or DEFAULT_JOBS, retries, force, make_progress, from_source
            )
    finally:
        repo.close()
    result.seconds = time.perf_counter() - started
    logger.debug("pull: %s", result.summary())
    return result


@contextlib.contextmanager
def _locked(repo: Any) -> Iterator[None]:
    """DVC's repository lock for the whole run, as ``dvc pull`` takes it; one clear line if it is held."""
    from dvc.lock import LockError

    try:
        repo.lock.lock()
    except LockError as err:
        raise DvcError(
            f"{repo.root_dir}: another DVC command is running ({err}); wait for it, then rerun"
        ) from None
    try:
        yield
    finally:
        repo.lock.unlock()


def _pull(
    repo: Any,
    targets: Sequence[str],
    remote: str | None,
    jobs: int,
    retries: int,
    force: bool,
    make_progress: Any,
    from_source: str | os.PathLike[str] | None = None,
) -> PullResult:
    from . import pull_cachefill
    from .dvc_checkout import Placer
    from .pull_workspace import place_outs

    result = PullResult()
    cache = repo.cache.local.path
    outs = collect_outs(repo, targets, result)
    result.outs = len(outs)
    remotes: dict[str | None, DvcRemote] = {}
    for out in outs:
        key = out.remote or remote
        if key not in remotes:
            remotes[key] = resolve_remote(repo.config, key)
    fill = pull_cachefill.CacheFill(cache, jobs, retries, result)
    groups = {key: [o for o in outs if (o.remote or remote) == key] for key in remotes}
    for key, rem in remotes.items():
        fill.fetch_listings(rem, groups[key])
    placer = Placer(list(repo.cache.local.cache_types))
    for key, rem in remotes.items():
        ready = [o for o in groups[key] if not o.is_dir or o.listing is not None]

        def place(ready: list[Out] = ready) -> None:
            place_outs(repo, ready, cache, placer, fill, force, result)

        fill.fetch_objects(rem, ready, make_progress, alongside=place)
        if from_source and fill.missing:
            got = fill.from_source(os.fspath(from_source), rem)
            if got:
                place_outs(repo, ready, cache, placer, fill, force, result, only=got)
    result.link_types = placer.used
    fill.finish()
    return result


def collect_outs(repo: Any, targets: Sequence[str], result: PullResult) -> list[Out]:
    """The cached outputs DVC's index lists (``.dvc`` files and pipeline outs), limited to ``targets``."""
    wanted = [os.path.abspath(t) for t in targets]
    outs: list[Out] = []
    for out in repo.index.outs:
        if not out.use_cache or out.hash_info is None or not out.hash_info.value:
            continue
        path = os.path.abspath(out.fs_path)
        stage_file = os.path.abspath(out.stage.path) if getattr(out.stage, "path", None) else ""
        if wanted and not any(_selects(w, path, stage_file) for w in wanted):
            continue
        if out.hash_name != "md5":
            result.failed.append(
                (out.def_path, f"hashed as {out.hash_name} (DVC 2 format); use `dvc pull` for it")
            )
            continue
        outs.append(Out(path, out.hash_info.value, out.remote, int(out.meta.size or 0)))
    if wanted and not outs and not result.failed:
        raise DvcError(f"{', '.join(targets)}: no DVC-tracked output there; see `dvc list . --dvc-only`")
    return outs


def _selects(target: str, path: str, stage_file: str) -> bool:
    if target in (stage_file, path):
        return True
    return target.startswith(path + os.sep) or path.startswith(target + os.sep)


__all__ = ["Out", "PullResult", "collect_outs", "pull"]
