"""`mvt4g completions SHELL`: print a static completion script (bash, zsh or fish).

The scripts in completions/ are generated from the command tree by mvt4g.cli.completion_gen;
tests/test_completions.py fails when they are stale.
"""

from __future__ import annotations

from typing import Annotated

import typer


def completions(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the shell completion script for bash, zsh or fish (source it, or save it where your shell looks)."""
    from mvt4g.cli.completion_gen import render
    from mvt4g.errors import InputError

    if shell not in ("bash", "zsh", "fish"):
        raise InputError(f"unknown shell {shell!r} (choose bash, zsh or fish)")
    print(render(shell), end="")
