"""What a step did: the small base of the results of fetch, pull, push and share (counts, failures,
``ok``, ``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass
class Result:
    """Counts, failures and time of one step. ``ok`` when nothing failed; ``to_dict`` for ``--json``."""

    failed: list[tuple[str, str]] = field(default_factory=list, kw_only=True)
    seconds: float = field(default=0.0, kw_only=True)

    #: What a failure's first element names in ``to_dict`` (``relpath`` or ``object``).
    FAILED_KEY: ClassVar[str] = "relpath"

    @property
    def ok(self) -> bool:
        return not self.failed

    def failures(self) -> list[dict[str, str]]:
        return [{self.FAILED_KEY: what, "reason": why} for what, why in self.failed]

    def to_dict(self) -> dict[str, Any]:
        """Every field (failures as objects, seconds rounded to ms) and ``ok``."""
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        d["failed"] = self.failures()
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.ok
        return d
