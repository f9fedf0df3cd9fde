"""Candidates for shell completion: command names without imports, a command's options from its parser."""

from __future__ import annotations

import argparse


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--") or len(s) == 2]


def _choices_after(parser: argparse.ArgumentParser, option: str) -> list[str] | None:
    for action in parser._actions:
        if option in action.option_strings:
            return [str(c) for c in action.choices] if action.choices else ([] if action.nargs != 0 else None)
    return None


def complete(comp_words: str, comp_cword: str) -> list[str]:
    """The words that may come at position ``comp_cword`` of ``comp_words`` (bash's COMP_WORDS/CWORD)."""
    from ._parser import PUBLIC, build_parser

    words = comp_words.split(" ")
    try:
        cword = int(comp_cword)
    except ValueError:
        cword = len(words) - 1
    current = words[cword] if 0 <= cword < len(words) else ""
    before = words[1:cword]
    positionals = [w for w in before if not w.startswith("-")]
    if not positionals:  # the command itself
        top = ["--version", "--verbose", "--quiet", "--help"] if current.startswith("-") else list(PUBLIC)
        return [w for w in top if w.startswith(current)]
    command = positionals[0]
    if command not in PUBLIC:
        return []
    parser = _subparsers(build_parser(command))[command]
    nested = _subparsers(parser)
    if nested:  # e.g. `s3 serve`
        if len(positionals) == 1:
            return [w for w in nested if w.startswith(current)]
        parser = nested.get(positionals[1], parser)
    if before and before[-1].startswith("-"):
        choices = _choices_after(parser, before[-1])
        if choices is not None:
            return [c for c in choices if c.startswith(current)]
    if current.startswith("-"):
        return [o for o in _options(parser) if o.startswith(current)]
    for action in parser._actions:  # a positional with choices, e.g. `completion bash`
        if (
            not action.option_strings
            and action.choices
            and not isinstance(action, argparse._SubParsersAction)
        ):
            return [str(c) for c in action.choices if str(c).startswith(current)]
    return []
