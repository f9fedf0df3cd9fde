"""fnmatch globs as RE2 regexes, for matching a million keys at once with pyarrow.

The translation reproduces ``fnmatch.fnmatchcase`` (the matcher the AWS CLI's filters use) exactly,
including its reading of odd sets, and emits only RE2 syntax (no lookaheads or atomic groups, which
newer ``fnmatch.translate`` output uses and RE2 lacks). tests/manifest/test_filters_fnmatch.py checks it
against fnmatch on generated patterns.
"""

from __future__ import annotations

from .errors import ConfigError

_NEVER = r"[^\x{0}-\x{10FFFF}]"  # an empty set: RE2 has no (?!)


def glob_to_regex(pattern: str) -> str:
    """An fnmatch glob as an anchored RE2 regex matching exactly what ``fnmatch.fnmatchcase`` matches.

    ``*`` and ``?`` match ``/`` too; ``[...]`` sets follow fnmatch's own reading (``!`` negates, a
    leading ``]`` is a member, reversed or empty ranges are dropped, ``[`` inside a set is a plain
    character, a set without its ``]`` is a literal ``[``); a backslash is a plain character. Every
    literal other than a letter or digit is emitted as a hex escape, so nothing is read as RE2 syntax.
    """
    out, i, n = ["(?s)^"], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            cls, i = _bracket(pattern, i)
            out.append(cls)
        else:
            out.append(_lit(c))
    out.append("$")
    return "".join(out)


def _lit(c: str) -> str:
    return c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}"


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """The RE2 for a set whose ``[`` is just before ``i``, and the index after it (fnmatch's rules)."""
    n = len(pattern)
    j = i
    if j < n and pattern[j] == "!":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n and pattern[j] != "]":
        j += 1
    if j >= n:  # no closing bracket: a literal "["
        return _lit("["), i
    # Atoms as fnmatch lays them out: (char, is_joiner); only joiners (unescaped "-") can make ranges.
    body = pattern[i:j]
    chunks = [body] if "-" not in body else _range_chunks(pattern, i, j)
    atoms: list[tuple[str, bool]] = []
    for k, chunk in enumerate(chunks):
        if k:
            atoms.append(("-", True))
        atoms += [(ch, False) for ch in chunk]
    if not atoms:
        return _NEVER, j + 1
    negate = atoms[0] == ("!", False)
    if negate:
        atoms = atoms[1:]
        if not atoms:
            return ".", j + 1
    return ("[^" if negate else "[") + "".join(_class_items(pattern, atoms)) + "]", j + 1


def _range_chunks(pattern: str, i: int, j: int) -> list[str]:
    """Split a set's body at the hyphens that make ranges and drop empty (reversed) ranges, as fnmatch does."""
    chunks: list[str] = []
    k = i + 2 if pattern[i] == "!" else i + 1
    while True:
        k = pattern.find("-", k, j)
        if k < 0:
            break
        chunks.append(pattern[i:k])
        i = k + 1
        k = k + 3
    last = pattern[i:j]
    if last:
        chunks.append(last)
    else:
        chunks[-1] += "-"
    for k in range(len(chunks) - 1, 0, -1):
        if chunks[k - 1][-1] > chunks[k][0]:
            chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
            del chunks[k]
    return chunks


def _class_items(pattern: str, atoms: list[tuple[str, bool]]) -> list[str]:
    """Read the atoms as a regex set is read: ``x``, then a joiner and ``y`` make the range x-y."""
    items: list[str] = []
    k = 0
    while k < len(atoms):
        ch = atoms[k][0]
        k += 1
        if k < len(atoms) and atoms[k][1]:  # a joiner follows
            if k + 1 >= len(atoms):  # "x-" at the end: both are members
                items += [_lit(ch), _lit("-")]
                break
            end = atoms[k + 1][0]
            k += 2
            if end < ch:
                raise ConfigError(
                    f"filter pattern {pattern!r}: bad character range {ch}-{end} in a [...] set"
                )
            items.append(f"{_lit(ch)}-{_lit(end)}")
        else:
            items.append(_lit(ch))
    return items
