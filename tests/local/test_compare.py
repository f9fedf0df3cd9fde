"""compare(): the one judge of what a folder holds of a manifest, checked against a small dict-based oracle.

Generated cases mix every local situation (absent, right bytes, wrong bytes, wrong size, extra files,
a symlink) with every record situation (none, matching, stale, naming other bytes), md5 and size known or
not. The oracle states the rules in plain Python; fetch plans, verify, pin, the pipeline's metrics and
the widgets all take their answer from compare, so this is the contract they share.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isc_kit.local import CORRUPT, MISSING, UNCHECKED, UNVERIFIED, VERIFIED, Destination, compare
from isc_kit.manifest import Manifest
from isc_kit.records import RecordWriter

LOCAL = ("absent", "right", "wrong-bytes", "wrong-size")
RECORD = ("none", "matching", "stale", "other-md5")


def body(i: int) -> bytes:
    return f"image {i}".encode() * 3


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def oracle(
    local: str, record: str, md5_known: bool, size_known: bool, rehash: bool, hash_unknown: bool
) -> int:
    """The rules, in order: presence, size, md5 known, record (unless rehash), else the bytes decide."""
    if local == "absent":
        return MISSING
    if size_known and local == "wrong-size":
        return CORRUPT
    if not md5_known:
        return UNVERIFIED
    if not rehash and record == "matching":
        return VERIFIED
    if not rehash and record == "other-md5":
        return CORRUPT
    if not hash_unknown:
        return UNCHECKED
    return VERIFIED if local == "right" else CORRUPT


case = st.tuples(st.sampled_from(LOCAL), st.sampled_from(RECORD), st.booleans(), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cases=st.lists(case, min_size=1, max_size=12),
    extra=st.integers(0, 2),
    rehash=st.booleans(),
    hash_unknown=st.booleans(),
)
def test_compare_agrees_with_the_oracle(
    tmp_path_factory, cases: list[tuple[str, str, bool, bool]], extra: int, rehash: bool, hash_unknown: bool
) -> None:
    root = tmp_path_factory.mktemp("cmp") / "dest"
    root.mkdir()
    dest = Destination(root)
    rows = []
    with RecordWriter(dest.record_path) as writer:
        for i, (local, record, md5_known, size_known) in enumerate(cases):
            rel, good = f"R{i:06d}.jpg", body(i)
            rows.append(
                (f"R{i:06d}", rel, md5(good) if md5_known else None, len(good) if size_known else None)
            )
            if local == "absent":
                continue
            data = {"right": good, "wrong-bytes": bytes(len(good)), "wrong-size": good + b"!"}[local]
            (root / rel).write_bytes(data)
            st_ = (root / rel).stat()
            if record == "matching":
                writer.add(rel, st_.st_size, st_.st_mtime_ns, md5(good))
            elif record == "stale":
                writer.add(rel, st_.st_size, st_.st_mtime_ns - 1, md5(good))
            elif record == "other-md5":
                writer.add(rel, st_.st_size, st_.st_mtime_ns, md5(b"other"))
    for k in range(extra):
        (root / f"extra{k}.jpg").write_bytes(b"x")
    os.symlink("/etc/hostname", root / "link.jpg")
    manifest = Manifest.from_rows("reference", "b", "all/reference_images/", rows)

    local = compare(manifest, dest, rehash=rehash, hash_unknown=hash_unknown, record=False)

    want = [oracle(*c, rehash, hash_unknown) for c in cases]
    assert list(local.status) == want
    assert local.extra == [f"extra{k}.jpg" for k in range(extra)]
    assert local.others == ["link.jpg"]  # never followed, never "extra", never verified
    hashed = sum(1 for c in cases if _read(c, rehash, hash_unknown))
    assert local.hashed == hashed
    for row, state in enumerate(local.status):
        assert (row in local.reasons) == (state == CORRUPT)


def _read(c: tuple[str, str, bool, bool], rehash: bool, hash_unknown: bool) -> bool:
    """Whether the oracle needs the file's bytes to decide."""
    local, record, md5_known, size_known = c
    if local == "absent" or (size_known and local == "wrong-size") or not md5_known:
        return False
    if not rehash and record in ("matching", "other-md5"):
        return False
    return hash_unknown


def test_newly_verified_files_are_recorded_and_then_trusted(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    root.mkdir()
    (root / "R000000.jpg").write_bytes(body(0))
    manifest = Manifest.from_rows(
        "reference", "b", "all/reference_images/", [("R000000", "R000000.jpg", md5(body(0)), None)]
    )
    first = compare(manifest, root)
    assert (first.status[0], first.hashed) == (VERIFIED, 1)
    second = compare(manifest, root)
    assert (second.status[0], second.hashed) == (VERIFIED, 0)  # the record vouches now: nothing read
