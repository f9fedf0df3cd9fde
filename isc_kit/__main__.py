"""``python -m isc_kit`` is ``isc-kit``."""

from .cli.main import entry

if __name__ == "__main__":
    entry()
