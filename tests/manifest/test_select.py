"""Selections: AWS CLI filter rules, id ranges and lists, seeded samples, ground-truth subsets."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isc_kit.catalog import get_set
from isc_kit.errors import ConfigError, EmptySelectionError, InputFileError
from isc_kit.manifest import Manifest
from isc_kit.select import (
    Selection,
    filter_mask,
    glob_to_regex,
    ground_truth_subset,
    listing_prefix,
    parse_id_range,
    read_id_list,
    sample_ids,
    select,
)

QUERY_IDS = [f"Q{i:05d}" for i in range(50_000)]


def manifest(ids: list[str], set_name: str = "query") -> Manifest:
    table = pd.DataFrame(
        {
            "image_id": pd.array(ids, dtype="string[pyarrow]"),
            "relpath": pd.array([f"{i}.jpg" for i in ids], dtype="string[pyarrow]"),
            "md5": pd.array(["0" * 32] * len(ids), dtype="string[pyarrow]"),
            "size": pd.array([1] * len(ids), dtype="Int64"),
        }
    )
    return Manifest.from_pandas(set_name, "b", get_set(set_name).prefix, table)


@pytest.fixture(scope="module")
def query_set() -> Manifest:
    return manifest(QUERY_IDS)


# ------------------------------------------------------------------------------------- AWS filter rules


def test_exclude_all_include_q00_is_exactly_the_first_thousand(query_set: Manifest) -> None:
    picked = select(query_set, Selection(filters=(("exclude", "*"), ("include", "Q00*"))))
    assert picked.ids == [f"Q{i:05d}" for i in range(1000)]


def test_next_thousand_like_the_instructions(query_set: Manifest) -> None:
    picked = select(query_set, Selection(filters=(("exclude", "*"), ("include", "Q01*"))))
    assert picked.ids[0] == "Q01000"
    assert picked.ids[-1] == "Q01999"
    assert len(picked) == 1000


def test_include_alone_changes_nothing(query_set: Manifest) -> None:
    assert len(select(query_set, Selection(filters=(("include", "Q00*"),)))) == 50_000


def test_reverse_order_selects_nothing(query_set: Manifest) -> None:
    selection = Selection(filters=(("include", "Q00*"), ("exclude", "*")), allow_empty=True)
    assert len(select(query_set, selection)) == 0


def test_last_matching_filter_wins(query_set: Manifest) -> None:
    filters = (("exclude", "*"), ("include", "Q0*"), ("exclude", "Q00*"), ("include", "Q000*"))
    ids = select(query_set, Selection(filters=filters)).ids
    assert ids[:100] == [f"Q{i:05d}" for i in range(100)]  # re-included by the last filter
    assert "Q00100" not in ids  # excluded by the third
    assert ids[100] == "Q01000"
    assert len(ids) == 100 + 9000


def test_every_key_starts_included(query_set: Manifest) -> None:
    assert len(select(query_set, Selection(filters=(("exclude", "Q1*"),)))) == 40_000


def test_star_matches_slash() -> None:
    keys = ["a/b/Q00001.jpg", "Q00002.jpg", "a/Q00003.png"]
    assert filter_mask(keys, [("exclude", "*"), ("include", "*.jpg")]).tolist() == [True, True, False]
    assert filter_mask(keys, [("exclude", "a*jpg")]).tolist() == [False, True, True]


def test_patterns_match_keys_relative_to_the_set_prefix(query_set: Manifest) -> None:
    # "all/query_images/Q00*" would match nothing: AWS joins patterns to the source prefix
    selection = Selection(filters=(("exclude", "*"), ("include", "all/query_images/Q00*")))
    with pytest.raises(EmptySelectionError, match="relative to all/query_images/"):
        select(query_set, selection)
    assert len(select(query_set, selection, allow_empty=True)) == 0


@pytest.mark.parametrize(
    ("pattern", "key", "hit"),
    [
        ("Q0000?.jpg", "Q00005.jpg", True),
        ("Q0000?.jpg", "Q00015.jpg", False),
        ("Q0000[0-4].jpg", "Q00004.jpg", True),
        ("Q0000[!0-4].jpg", "Q00004.jpg", False),
        ("Q0000[!0-4].jpg", "Q00009.jpg", True),
        ("q00*", "Q00001.jpg", False),  # case-sensitive, as on S3
        ("Q00001.jpg", "Q00001.jpg", True),
        ("Q.0001.jpg", "Q00001.jpg", False),  # a dot is literal
        ("[", "[", True),
        ("*]", "a]", True),
    ],
)
def test_glob_semantics_match_fnmatchcase(pattern: str, key: str, hit: bool) -> None:
    assert fnmatch.fnmatchcase(key, pattern) is hit
    assert bool(filter_mask([key], [("exclude", "*"), ("include", pattern)])[0]) is hit


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.text(alphabet="Q0123*?[]!-./ab", max_size=8),
    key=st.text(alphabet="Q0123./ab-]", max_size=10),
)
def test_glob_translation_agrees_with_fnmatch(pattern: str, key: str) -> None:
    assert bool(filter_mask([key], [("exclude", "*"), ("include", pattern)])[0]) == fnmatch.fnmatchcase(
        key, pattern
    )
    assert glob_to_regex(pattern).startswith("(?s)^")


@pytest.mark.parametrize(
    ("filters", "prefix"),
    [
        ((("exclude", "*"), ("include", "Q00*")), "Q00"),
        ((("exclude", "*"), ("include", "Q001*"), ("include", "Q002*")), "Q00"),
        ((("exclude", "*"), ("include", "*.jpg")), ""),
        ((("include", "Q00*"),), ""),  # nothing is excluded: everything must be listed
        ((), ""),
    ],
)
def test_listing_prefix_is_the_longest_safe_server_side_prefix(filters: tuple, prefix: str) -> None:
    assert listing_prefix(filters) == prefix


# ------------------------------------------------------------------------------------- ids


def test_id_range_is_inclusive() -> None:
    refs = manifest([f"R{i:06d}" for i in range(3000)], "reference")
    picked = select(refs, Selection(ranges=("R000000:R000999",)))
    assert picked.ids[0] == "R000000"
    assert picked.ids[-1] == "R000999"
    assert len(picked) == 1000


def test_several_ranges_and_open_ends(query_set: Manifest) -> None:
    assert len(select(query_set, Selection(ranges=("Q00000:Q00009", "Q49990:")))) == 20
    assert select(query_set, Selection(ranges=(":Q00002",))).ids == ["Q00000", "Q00001", "Q00002"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [("Q00010:Q00001", "empty"), ("R000000:R000009", "not a query id"), ("Q60000:Q60001", "outside")],
)
def test_bad_id_ranges_are_clear(spec: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_id_range(spec, get_set("query"))


def test_id_list_file(tmp_path: Path, query_set: Manifest) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("# my picks\nQ00003\n\nQ00001.jpg\n  Q49999  \n")
    picked = select(query_set, Selection(id_file=str(path)))
    assert picked.ids == ["Q00001", "Q00003", "Q49999"]


def test_id_list_with_bad_lines_names_them(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("Q00003\nR000001\n../etc\n")
    with pytest.raises(InputFileError) as info:
        read_id_list(path, get_set("query"))
    assert [p.line for p in info.value.problems] == [2, 3]


# ------------------------------------------------------------------------------------- samples


def _splitmix64(x: int) -> int:
    """The documented algorithm, written again with Python integers."""
    m = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_sample_follows_the_documented_algorithm() -> None:
    seed = 42
    key = {i: _splitmix64(_splitmix64(seed) ^ ((ord(i[0]) << 40) | int(i[1:]))) for i in QUERY_IDS}
    expected = sorted(QUERY_IDS, key=key.__getitem__)[:25]
    assert sample_ids(QUERY_IDS, 25, seed) == expected


def test_seeded_sample_is_stable_golden() -> None:
    # Recorded once; must never change between machines or library versions.
    assert sample_ids(QUERY_IDS, 10, 0) == [
        "Q13121", "Q23696", "Q40001", "Q23722", "Q36747", "Q30945", "Q06327", "Q19848", "Q36388", "Q04644",
    ]  # fmt: skip
    assert sample_ids([f"R{i:06d}" for i in range(1000)], 5, 7) == [
        "R000906", "R000656", "R000070", "R000653", "R000418",
    ]  # fmt: skip


def test_sample_is_nested_and_order_independent(query_set: Manifest) -> None:
    small = set(select(query_set, Selection(sample=50, seed=3)).ids)
    large = set(select(query_set, Selection(sample=500, seed=3)).ids)
    assert small < large
    shuffled = manifest(list(reversed(QUERY_IDS)))
    assert set(select(shuffled, Selection(sample=50, seed=3)).ids) == small
    assert set(select(query_set, Selection(sample=50, seed=4)).ids) != small


def test_sample_applies_after_filters(query_set: Manifest) -> None:
    picked = select(query_set, Selection(filters=(("exclude", "*"), ("include", "Q00*")), sample=30, seed=1))
    assert len(picked) == 30
    assert all(i < "Q01000" for i in picked.ids)


def test_sample_larger_than_selection_takes_all(query_set: Manifest) -> None:
    assert len(select(query_set, Selection(ranges=("Q00000:Q00009",), sample=100))) == 10


# ------------------------------------------------------------------------------------- ground truth


def test_ground_truth_subset_keeps_pairs_and_adds_distractors() -> None:
    pairs = [("Q00000", "R000010"), ("Q00001", "R000011"), ("Q00001", "R000012"), ("Q00003", "R000013")]
    queries = [f"Q{i:05d}" for i in range(6)]  # Q00002, Q00004, Q00005 are distractor queries
    refs = [f"R{i:06d}" for i in range(20)]
    q, r = ground_truth_subset(pairs, queries, refs, queries=6, distractors=3, seed=0)
    assert q == queries
    matched = {"R000010", "R000011", "R000012", "R000013"}
    assert matched <= set(r)
    extra = set(r) - matched
    assert len(extra) == 3
    assert not extra & matched
    q2, r2 = ground_truth_subset(pairs, queries, refs, queries=2, distractors=0, seed=5)
    assert len(q2) == 2
    assert set(r2) == {ref for qq, ref in pairs if qq in q2}
