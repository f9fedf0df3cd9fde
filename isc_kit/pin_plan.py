"""What a pin would do, decided before anything is touched: :func:`plan_pin` checks a local tree
against its manifest (every file present and verified, or hashed now; nothing else there) and
returns a :class:`PinPlan`, whose :meth:`~PinPlan.raise_if_blocked` names what stops the pin.
:func:`isc_kit.pin.pin` acts on the plan.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ChecksumMismatchError, DvcError, InputFileError, Problem
from .local import MISSING, UNCHECKED, UNVERIFIED, VERIFIED, Destination, compare
from .manifest import Manifest

_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------- hashing


def file_md5(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest() if hasattr(hashlib, "file_digest") else _md5(fh)


def _md5(fh: Any) -> str:
    h = hashlib.md5()
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PinEntry:
    relpath: str
    md5: str
    size: int
    hashed: bool = False


@dataclass
class PinPlan:
    """What :func:`pin` would do: entries to pin and everything that stops it."""

    path: Path
    entries: list[PinEntry] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # regular files the manifest does not list
    others: list[str] = field(default_factory=list)  # symlinks, FIFOs, devices: never followed, never pinned
    bad: list[tuple[str, str]] = field(default_factory=list)  # (relpath, why) known wrong without hashing
    writing: list[str] = field(default_factory=list)  # part files of a live fetch
    hashed: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.unverified
            or self.mismatched
            or self.extra
            or self.others
            or self.bad
            or self.writing
        )

    def raise_if_blocked(self, manifest_path: str = "manifest") -> None:
        """One clear error naming the first problem of each kind and what to run."""
        where = str(self.path)
        if self.mismatched:
            rel, expected, actual = self.mismatched[0]
            raise ChecksumMismatchError(
                f"{where}/{rel}", expected, actual, action=f"nothing was pinned ({len(self.mismatched)} bad)"
            )
        if self.writing:
            raise DvcError(
                f"{where} is being written by a running fetch ({self.writing[0]} and {len(self.writing) - 1} more part "
                "files); wait for it to finish, then pin again"
            )
        problems: list[Problem] = []
        hint = ""
        if self.missing:
            problems += [Problem(0, "relpath", r, "listed in the manifest but missing") for r in self.missing]
            hint = f"fetch first: `isc-kit fetch {manifest_path} {where}`"
        if self.unverified:
            problems += [Problem(0, "relpath", r, "no matching verified record") for r in self.unverified]
            hint = hint or (
                f"run `isc-kit verify {manifest_path} {where}` (or pin with --hash to hash them now)"
            )
        if self.bad:
            problems += [Problem(0, "relpath", r, why) for r, why in self.bad]
            hint = hint or f"repair them: `isc-kit verify --repair {manifest_path} {where}`"
        if self.others:
            problems += [
                Problem(0, "relpath", r, "not a regular file (a symlink, FIFO or device): never pinned")
                for r in self.others
            ]
            hint = hint or "replace them with the real files (`isc-kit verify --repair` fetches them)"
        if self.extra:
            problems += [
                Problem(0, "relpath", r, "in the folder but not in the manifest") for r in self.extra
            ]
            hint = hint or f"remove them, or `isc-kit fetch --prune {manifest_path} {where}`"
        if problems:
            raise InputFileError(where, problems, hint=f"nothing was pinned; {hint}")


def plan_pin(
    manifest: Manifest,
    path: str | os.PathLike[str],
    *,
    hash_unverified: bool = False,
    jobs: int | None = None,
) -> PinPlan:
    """Check ``path`` against ``manifest``: every file present, verified (or hashed), nothing else there."""
    root = Path(path)
    plan = PinPlan(root)
    if not root.is_dir():
        plan.missing = list(manifest.relpaths)
        return plan
    dest = Destination(root)
    local = compare(manifest, dest, hash_unknown=hash_unverified, jobs=jobs)
    dest.remove_temps(local.temps, locked=False)
    rels, md5s, sizes = manifest.relpaths, manifest.md5s, local.local_sizes
    for row, state in enumerate(local.status):
        if state == VERIFIED:
            plan.entries.append(PinEntry(rels[row], md5s[row], sizes[row]))
        elif state == MISSING:
            plan.missing.append(rels[row])
        elif state == UNCHECKED or (state == UNVERIFIED and not hash_unverified):
            plan.unverified.append(rels[row])
        elif state == UNVERIFIED:  # no md5 to check against: pin what it is, hashed now
            plan.entries.append(PinEntry(rels[row], file_md5(dest.path(rels[row])), sizes[row], hashed=True))
        elif row in local.actual_md5:
            plan.mismatched.append((rels[row], md5s[row], local.actual_md5[row]))
        else:  # wrong size, or recorded as other bytes: a fetch (or verify --repair) mends it
            plan.bad.append((rels[row], local.reason(row)))
    plan.hashed = local.hashed
    plan.extra = local.extra
    plan.others = sorted(local.others)
    if plan.others:  # a symlink (or FIFO...) at a listed name is refused as what it is, not as "missing"
        refused = set(plan.others)
        plan.missing = [r for r in plan.missing if r not in refused]
    plan.writing = [t for t in local.temps if os.path.lexists(dest.path(t))]
    return plan
