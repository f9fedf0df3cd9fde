"""The column-wise plans (library and light CLI path) against a plain dict-based reference on random trees.

Each example builds a folder, a verified record (stale, wrong-md5, duplicate and torn lines
included) and a manifest (some md5s and sizes unknown, some rows absent, some files extra), then
checks that :func:`isc_kit.transfer.plan_fetch`, the light path's ``_classify`` and the record
readers say exactly what a few lines of dicts say.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from isc_kit import records
from isc_kit._lightfetch import _classify as light_classify
from isc_kit._localtree import scan
from isc_kit._pinned import PinnedRows
from isc_kit._status import CORRUPT, MISSING, UNVERIFIED, VERIFIED
from isc_kit.manifest import STRING, Manifest
from isc_kit.transfer import plan_fetch

MTIME = 1_700_000_000_123_456_789  # 19 digits: beyond float precision, so it must stay an integer
PREFIX = "all/reference_images/"

# per entry: is it listed, is a file present (and its bytes), what the manifest knows, what the record says
entry = st.fixed_dictionaries(
    {
        "listed": st.booleans(),
        "present": st.sampled_from(["no", "good", "bad-bytes", "bad-size"]),
        "md5_known": st.booleans(),
        "size_known": st.booleans(),
        "record": st.lists(st.sampled_from(["good", "stale", "other-md5", "torn", "junk"]), max_size=3),
        "subdir": st.booleans(),
    }
)


def _body(i: int) -> bytes:
    return f"image {i}\n".encode() * (i % 5 + 1)


def _reference(rows: list[dict], root: Path) -> dict[str, int]:
    """relpath -> status, the obvious way: a dict of the record's latest valid lines, then one rule per row."""
    latest: dict[str, tuple[int, int, str]] = {}
    path = records.record_path(root)
    if path.exists():
        for line in path.read_text().splitlines(keepends=True)[1:]:
            parts = line.rstrip("\n").split("\t")
            if (
                line.endswith("\n")
                and len(parts) == 4
                and parts[0]
                and parts[1].isdigit()
                and parts[2].lstrip("-").isdigit()
                and len(parts[3]) == 32
                and all(c in "0123456789abcdef" for c in parts[3])
            ):
                latest[parts[0]] = (int(parts[1]), int(parts[2]), parts[3])
    out = {}
    for r in rows:
        f = root / r["relpath"]
        if not f.is_file():
            out[r["relpath"]] = MISSING
            continue
        st_ = f.stat()
        if r["size"] is not None and st_.st_size != r["size"]:
            out[r["relpath"]] = CORRUPT
        elif r["md5"] is None:
            out[r["relpath"]] = UNVERIFIED
        else:
            rec = latest.get(r["relpath"])
            if rec is not None and rec[:2] == (st_.st_size, st_.st_mtime_ns):
                md5 = rec[2]
            else:
                md5 = hashlib.md5(f.read_bytes()).hexdigest()
            out[r["relpath"]] = VERIFIED if md5 == r["md5"] else CORRUPT
    return out


def _build(entries: list[dict], root: Path) -> list[dict]:
    """Write the folder and the record; returns the manifest rows (sorted by id)."""
    root.mkdir()
    record = [records.HEADER]
    rows = []
    for i, e in enumerate(entries):
        rel = f"{'sub/' if e['subdir'] else ''}R{i:06d}.jpg"
        body = _body(i)
        good_md5 = hashlib.md5(body).hexdigest()
        if e["present"] != "no":
            f = root / rel
            f.parent.mkdir(exist_ok=True)
            data = {"good": body, "bad-bytes": bytes([body[0] ^ 1]) + body[1:], "bad-size": body + b"!"}
            f.write_bytes(data[e["present"]])
            os.utime(f, ns=(MTIME, MTIME + i))
        size = len(body) + (e["present"] == "bad-size")
        for kind in e["record"]:
            if kind == "good":
                record.append(f"{rel}\t{size}\t{MTIME + i}\t{good_md5}\n")
            elif kind == "stale":
                record.append(f"{rel}\t{size}\t{MTIME + i + 1}\t{good_md5}\n")
            elif kind == "other-md5":
                record.append(f"{rel}\t{size}\t{MTIME + i}\t{'0' * 32}\n")
            elif kind == "torn":
                record.append(f"{rel}\t{size}\t{MTIME + i}\t{good_md5[:7]}\n")
            else:
                record.append(f"{rel}\tx{size}\t{MTIME + i}\t{good_md5}\n")
        if e["listed"]:
            rows.append(
                {
                    "image_id": f"R{i:06d}",
                    "relpath": rel,
                    "md5": good_md5 if e["md5_known"] else None,
                    "size": len(body) if e["size_known"] else None,
                }
            )
    path = records.record_path(root)
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(record))
    return rows


def _manifest(rows: list[dict]) -> Manifest:
    table = pd.DataFrame(
        {
            "image_id": pd.array([r["image_id"] for r in rows], dtype=STRING),
            "relpath": pd.array([r["relpath"] for r in rows], dtype=STRING),
            "md5": pd.array([r["md5"] for r in rows], dtype=STRING),
            "size": pd.array([r["size"] for r in rows], dtype="Int64"),
        }
    )
    return Manifest("reference", "drivendata-competition-fb-isc-data", PREFIX, table)


# every combination once, so the rare ones do not depend on the draw
EVERY_CASE = [
    {"listed": True, "present": p, "md5_known": m, "size_known": s, "record": r, "subdir": s}
    for p in ("no", "good", "bad-bytes", "bad-size")
    for m in (True, False)
    for s in (True, False)
    for r in ([], ["good"], ["stale"], ["other-md5"], ["good", "torn"], ["stale", "good"], ["good", "stale"])
] + [
    {"listed": False, "present": "good", "md5_known": True, "size_known": True, "record": [], "subdir": True}
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entry, max_size=25))
@example(EVERY_CASE)
@example([e for e in EVERY_CASE if e["md5_known"] and e["record"] in (["good"], ["other-md5"])])
def test_plans_agree_with_a_dict_reference(entries: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ref"
        rows = _build(entries, root)
        want = _reference(rows, root)  # before plan_fetch, which records what it hashes
        rels = [r["relpath"] for r in rows]

        light = light_classify(
            PinnedRows(
                "reference",
                "drivendata-competition-fb-isc-data",
                PREFIX,
                rels,
                [r["md5"] for r in rows],
                [-1 if r["size"] is None else r["size"] for r in rows],
            ),
            root,
            scan(str(root)),
        )
        needs_hash = any(
            want[r["relpath"]] in (VERIFIED, CORRUPT)
            and r["md5"] is not None
            and (root / r["relpath"]).is_file()
            and (r["size"] is None or (root / r["relpath"]).stat().st_size == r["size"])
            and not _record_vouches(root, r["relpath"])
            for r in rows
        )
        if needs_hash:
            assert light is None
        else:
            assert light is not None
            todo, unverified = light
            assert [rels[i] for i in todo] == [r for r in rels if want[r] in (MISSING, CORRUPT)]
            assert unverified == sum(s == UNVERIFIED for s in want.values())

        plan = plan_fetch(_manifest(rows), root)
        assert dict(zip(rels, plan.status.tolist(), strict=True)) == want
        on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        assert sorted(plan.extra) == sorted(set(on_disk) - set(rels))


def _record_vouches(root: Path, rel: str) -> bool:
    """Whether the record's latest valid line for ``rel`` matches the file's size and mtime."""
    f = root / rel
    st_ = f.stat()
    got = records.load_verified(root).get(rel)
    return got is not None and (got.size, got.mtime_ns) == (st_.st_size, st_.st_mtime_ns)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["R000001.jpg", "R000002.jpg", "a/R000003.jpg"]),
            st.integers(0, 2**63 - 1),
            st.integers(-(2**63), 2**63 - 1),
            st.sampled_from(["0" * 32, "f" * 32, "0123456789abcdef" * 2]),
            st.sampled_from(["ok", "torn", "bad-int", "overflow"]),
        ),
        max_size=12,
    )
)
def test_record_readers_agree(lines: list[tuple[str, int, int, str, str]]) -> None:
    """read_table (Arrow), load_verified and iter_entries keep the same latest valid line per file."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "ref"
        text = [records.HEADER]
        want: dict[str, records.VerifiedEntry] = {}
        for rel, size, mtime, md5, kind in lines:
            if kind == "ok":
                text.append(f"{rel}\t{size}\t{mtime}\t{md5}\n")
                want[rel] = records.VerifiedEntry(size, mtime, md5)
            elif kind == "torn":
                text.append(f"{rel}\t{size}\t{mtime}\t{md5[:5]}\n")
            elif kind == "bad-int":
                text.append(f"{rel}\t{size}x\t{mtime}\t{md5}\n")
            else:
                text.append(f"{rel}\t{size}\t{2**63 + abs(mtime)}\t{md5}\n")
        records.record_path(dest).parent.mkdir(parents=True)
        records.record_path(dest).write_text("".join(text))
        assert records.load_verified(dest) == want
        assert records.read_entries(dest, set(want)) == want
        folded = {rel: records.VerifiedEntry(s, m, h) for rel, s, m, h in records.iter_entries(dest)}
        assert folded == want
