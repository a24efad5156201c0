"""`mvt4g completions SHELL`: print a static completion script (bash, zsh or fish).

The scripts in completions/ are generated from the command tree by mvt4g.cli.completion_gen;
tests/test_completions.py fails when they are stale.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mvt4g.cli.completion_gen import SHELLS


def completions(shell: Annotated[str, typer.Argument(metavar="SHELL", help=f"One of {', '.join(SHELLS)}.")]) -> None:
    """Print the shell completion script for bash, zsh or fish (source it, or save it where your shell looks).

    Examples:

        mvt4g completions bash > ~/.local/share/bash-completion/completions/mvt4g

        mvt4g completions zsh > ~/.zfunc/_mvt4g
    """
    from mvt4g.cli.completion_gen import render
    from mvt4g.errors import InputError

    if shell not in SHELLS:
        raise InputError(f"unknown shell {shell!r} (choose {', '.join(SHELLS[:-1])} or {SHELLS[-1]})")
    print(render(shell), end="")
