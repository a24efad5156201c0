"""Option choices read from the core's own constants, imported only when a choice is needed.

``typer.Option(click_type=LazyChoice(loader))`` takes its names from ``loader()`` (a core
constant such as ``mvt4g.eval.bench.BENCH_NAMES``) the first time click asks for them: when
the option is parsed, its command's ``--help`` is shown or completions are generated. So the
CLI never restates a core list, and starting ``mvt4g`` does not import the package (e.g.
torch behind ``mvt4g.eval``) that owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose names come from ``loader()`` on first use."""

    def __init__(self, loader: Callable[[], Sequence[str]], case_sensitive: bool = True) -> None:
        self._loader = loader
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._choices is None:
            self._choices = tuple(self._loader())
        return self._choices

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        self._choices = tuple(value)
