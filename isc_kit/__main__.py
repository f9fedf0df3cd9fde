"""``python -m isc_kit`` is ``isc-kit``."""

from .cli.main import entry

entry()
