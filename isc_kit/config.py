"""Settings resolution: explicit argument, then ``ISC_KIT_*`` environment, then AWS conventions, then defaults.

Everything is read at call time, never at import, so tests and notebooks can change the
environment freely.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A non-empty environment value, or None."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


def env_bool(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    value = env_str(name, environ)
    if value is None:
        return None
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ConfigError(f"environment variable {name}={value!r} is not a boolean; use true or false")


def resolve_endpoint(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """Endpoint URL: argument, ``ISC_KIT_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, else AWS."""
    for value in (
        explicit,
        env_str("ISC_KIT_ENDPOINT_URL", environ),
        env_str("AWS_ENDPOINT_URL_S3", environ),
        env_str("AWS_ENDPOINT_URL", environ),
    ):
        if value:
            if not value.startswith(("http://", "https://")):
                raise ConfigError(f"endpoint URL {value!r} must start with http:// or https://")
            return value.rstrip("/")
    return None


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """Read a params.yaml; a clear error for a missing or malformed file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file; run from the project folder or pass --params") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{p}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{p}:{where}: invalid YAML ({problem}); fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, found {type(data).__name__}")
    return data
