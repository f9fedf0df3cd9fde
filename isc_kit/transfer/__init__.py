"""Fetch: plan what a destination lacks, then transfer it with every byte MD5-checked.

- :mod:`.plan` — :func:`plan_fetch` / :class:`FetchPlan` (what is missing, corrupt, verified)
- :mod:`.run` — :func:`fetch`, :func:`repair`
- :mod:`.result` — :class:`FetchResult`
- :mod:`.mirrors` — the primary source and its mirrors, probed and ranked
- :mod:`.engine` — bounded concurrent transfers, retries, mirror fall-back
- :mod:`.bodywriter` — hash bodies in batches, write and rename only the right ones
- :mod:`.getters` — the :class:`~.getters.Getter` protocol: raw HTTP, proxy (aiohttp) and signed (s3fs)
- :mod:`.rawhttp` — the lean HTTP/1.1 client for anonymous GETs (its connection pool)
- :mod:`.httpconn` — one keep-alive connection: the response parser it receives bodies with
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import FetchPlan, plan_fetch
    from .result import FetchResult
    from .run import DEFAULT_JOBS, DEFAULT_RETRIES, fetch, repair

__all__ = ["DEFAULT_JOBS", "DEFAULT_RETRIES", "FetchPlan", "FetchResult", "fetch", "plan_fetch", "repair"]

# The face names its submodules' objects without importing them: a module that needs only the plan
# (``verify``) imports ``transfer.plan`` and does not pull in the transfer machinery (no import circle).
_HOME = {"FetchPlan": "plan", "plan_fetch": "plan", "FetchResult": "result"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_HOME.get(name, 'run')}", __name__), name)
    globals()[name] = value
    return value
