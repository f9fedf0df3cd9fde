"""Fetch: plan what a destination lacks, then transfer it with every byte MD5-checked.

- :mod:`.plan` — :func:`plan_fetch` / :class:`FetchPlan` (what is missing, corrupt, verified)
- :mod:`.run` — :func:`fetch`, :func:`repair`, :class:`FetchResult`, mirrors
- :mod:`.engine` — bounded concurrent transfers, retries, mirror fall-back
- :mod:`.bodywriter` — hash bodies in batches, write and rename only the right ones
- :mod:`.getters` — the :class:`~.getters.Getter` protocol: raw HTTP, proxy (aiohttp) and signed (s3fs)
- :mod:`.rawhttp` — the lean HTTP/1.1 client for anonymous GETs
"""

from .plan import FetchPlan, plan_fetch
from .run import DEFAULT_JOBS, DEFAULT_RETRIES, FetchResult, fetch, repair

__all__ = ["DEFAULT_JOBS", "DEFAULT_RETRIES", "FetchPlan", "FetchResult", "fetch", "plan_fetch", "repair"]
