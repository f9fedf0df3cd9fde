"""AWS CLI filter parity: isc_kit's RE2 translation matches ``fnmatch.fnmatchcase`` exactly, and the
ordered ``--exclude/--include`` evaluation matches the AWS CLI's (pattern joined to the source root,
matched against ``bucket/key``, every key starts included, the last match wins).

The reference model below is written from the AWS CLI's documented and observed behaviour
(``awscli/customizations/s3/filters.py``: ``os.path.join(root, pattern)`` then ``fnmatch.fnmatch``
on POSIX, where it is ``fnmatchcase``); the oracle for glob semantics is Python's own fnmatch.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from isc_kit.cli.main import main
from isc_kit.errors import ConfigError
from isc_kit.select import filter_mask, glob_to_regex

BUCKET = "drivendata-competition-fb-isc-data"
CHARS = "Q0129az-!]^[\\:/.*?"  # the characters that mean something to fnmatch, and a few that don't


def oracle(key: str, pattern: str) -> bool | None:
    """fnmatch.fnmatchcase, or None when Python cannot compile the pattern (a bad range)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" FutureWarnings
        try:
            return fnmatch.fnmatchcase(key, pattern)
        except re.error:
            return None


def ours(keys: list[str], pattern: str) -> list[bool]:
    return pc.match_substring_regex(pa.array(keys, pa.string()), glob_to_regex(pattern)).to_pylist()


# A set: optional "!", optional "]" first, then ranges (in any order, so empty/reversed ones too),
# single characters, "-" first or last, backslashes and "[" inside.
_member = st.one_of(
    st.sampled_from(list("Q0129az!^[:\\.")),
    st.tuples(st.sampled_from(list("0129az-\\Q")), st.sampled_from(list("0129az-\\Q"))).map("-".join),
)
bracket = st.builds(
    lambda neg, close, dash_first, members, dash_last, closed: (
        "["
        + ("!" if neg else "")
        + ("]" if close else "")
        + ("-" if dash_first else "")
        + "".join(members)
        + ("-" if dash_last else "")
        + ("]" if closed else "")
    ),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.lists(_member, max_size=4),
    st.booleans(),
    st.booleans(),
)
token = st.one_of(st.sampled_from(list(CHARS)), st.just("*"), st.just("?"), bracket)
patterns = st.lists(token, max_size=6).map("".join)
keys = st.lists(st.text(alphabet="Q0129az-!]^[\\:/.", max_size=7), min_size=1, max_size=30)


@settings(max_examples=1500, deadline=None)
@given(pattern=patterns, sample=keys)
@example(pattern="Q0[9-0]*", sample=["Q00001.jpg", "Q09.jpg"])
@example(pattern="Q0[z-a0]*", sample=["Q00001.jpg", "Q0z"])
@example(pattern="Q0[0--]*", sample=["Q00001.jpg", "Q0-"])
@example(pattern="Q[\\-1]*", sample=["Q-1", "Q\\1", "Q1"])
@example(pattern="Q[[:digit:][0]*", sample=["Q00001.jpg", "Q:0", "Q[0"])
@example(pattern="[]-a]", sample=["]", "a", "-", "^"])
@example(pattern="[!]-]", sample=["]", "-", "a"])
def test_translation_matches_fnmatchcase(pattern: str, sample: list[str]) -> None:
    expected = [oracle(k, pattern) for k in sample]
    if None in expected:  # fnmatch itself cannot compile it: isc_kit says so in one line
        with pytest.raises(ConfigError, match="bad character range"):
            glob_to_regex(pattern)
        return
    assert ours(sample, pattern) == expected


def aws_keeps(key: str, filters: list[tuple[str, str]], prefix: str) -> bool:
    """What ``aws s3 cp s3://BUCKET/PREFIX dest --recursive <filters>`` keeps (the reference model)."""
    root = f"{BUCKET}/{prefix}"
    keep = True
    for kind, pattern in filters:
        if oracle(f"{BUCKET}/{prefix}{key}", posixpath.join(root, pattern)):
            keep = kind == "include"
    return keep


filter_lists = st.lists(st.tuples(st.sampled_from(["include", "exclude"]), patterns), max_size=4)
prefixes = st.sampled_from(["", "all/query_images/", "all/q[1]/", "a*/", "x?/"])


@settings(max_examples=400, deadline=None)
@given(filters=filter_lists, sample=keys, prefix=prefixes)
@example(
    filters=[("exclude", "*"), ("include", "Q0*"), ("exclude", "Q00*")], sample=["Q00", "Q01"], prefix=""
)
@example(filters=[("exclude", "*")], sample=["Q1.jpg"], prefix="all/q[1]/")
@example(filters=[("exclude", "/Q*")], sample=["Q1.jpg"], prefix="all/query_images/")
def test_ordered_filters_match_the_aws_cli(
    filters: list[tuple[str, str]], sample: list[str], prefix: str
) -> None:
    sample = [k.lstrip("/") for k in sample]  # no relpath starts with "/" (the manifest refuses them)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = [aws_keeps(k, filters, prefix) for k in sample]
        except re.error:
            with pytest.raises(ConfigError):
                filter_mask(sample, filters, prefix)
            return
    assert filter_mask(sample, filters, prefix).tolist() == expected


ISSUE_PATTERNS = ["Q0[9-0]*", "Q0[z-a0]*", "Q0[0--]*", "Q[\\-1]*", "Q[[:digit:][0]*"]


@pytest.mark.parametrize("pattern", ISSUE_PATTERNS)
@pytest.mark.parametrize("kind", ["exclude", "include"])
def test_cli_ls_keeps_what_the_aws_cli_keeps(
    pattern: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f"Q{i:05d}" for i in (0, 1, 9, 10, 99, 900)]
    meta = tmp_path / "q.csv"
    meta.write_text(
        "image_id,s3_uri,md5_checksum\n"
        + "".join(f"{q},s3://{BUCKET}/all/query_images/{q}.jpg,{'0' * 32}\n" for q in ids)
    )
    flags = ["--exclude", "*", "--include", pattern] if kind == "include" else ["--exclude", pattern]
    code = main(["-q", "ls", "query", "--metadata", str(meta), *flags, "--json", "--allow-empty"])
    out = capsys.readouterr()
    assert code == 0, out.err
    filters = [("exclude", "*"), ("include", pattern)] if kind == "include" else [("exclude", pattern)]
    expected = sum(aws_keeps(f"{q}.jpg", filters, "all/query_images/") for q in ids)
    assert json.loads(out.out)["count"] == expected
