"""``isc-kit completion bash|zsh``: print a shell completion script (no extra dependency).

The script asks ``isc-kit`` itself for candidates (``ISC_KIT_COMPLETE=1``, as pip does), and
that answer imports only the subcommand being completed, so a Tab costs one fast start.
"""

from __future__ import annotations

import argparse

NAME = "completion"
HELP = "print a shell completion script (bash or zsh)"

BASH = """\
# isc-kit completion for bash; load it with: eval "$(isc-kit completion bash)"
_isc_kit_complete() {
    local words="${COMP_WORDS[*]}" IFS=$'\\n'
    COMPREPLY=($(COMP_WORDS="$words" COMP_CWORD="$COMP_CWORD" ISC_KIT_COMPLETE=1 \\
        "${COMP_WORDS[0]}" 2>/dev/null))
}
complete -o default -F _isc_kit_complete isc-kit
"""
ZSH = """\
# isc-kit completion for zsh; load it with: eval "$(isc-kit completion zsh)"
autoload -U +X bashcompinit && bashcompinit
""" + BASH.split("\n", 1)[1]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh"], help="the shell to print the script for")


def run(args: argparse.Namespace) -> int:
    print(BASH if args.shell == "bash" else ZSH, end="")
    return 0
