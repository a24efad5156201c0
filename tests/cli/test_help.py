"""Every --help reads at 80 columns: choices whole (never cut mid-word), `completions` listed,
and the choices the CLI offers are the core's own constants."""

from __future__ import annotations

import re

import click
import pytest

from mvt4g.cli.main import build_command, main

BOX = str.maketrans({c: " " for c in "│╭╮╰╯─"})


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_command()))


def test_every_command_is_covered():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "generate", "traj show", "eval", "convert recammaster", "completions"} <= names


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "mvt4g")
def test_help_at_80_columns_keeps_every_choice_whole(path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERMINAL_WIDTH", "80")
    capsys.readouterr()
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    text = " ".join(out.translate(BOX).split())
    command = dict(COMMANDS)[path]
    choices = [str(c) for p in command.params if isinstance(p.type, click.Choice) for c in p.type.choices]
    for choice in choices:
        assert re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", text), (path, choice)
        assert not split_words(text, choice), (path, choice, split_words(text, choice))


def split_words(text: str, word: str) -> list[str]:
    """Pieces ``(head, tail)`` of ``word`` that both stand as words of ``text``: what is left of a
    choice cut by a line break, in a table cell (``[davis|iphone|syntheti`` ... ``c]``) or in prose."""
    tokens = set(re.split(r"[\s\[\]|,.:;()'`]+", text))
    return [(word[:k], word[k:]) for k in range(3, len(word)) if word[:k] in tokens and word[k:] in tokens]


def _core_constant_calls():
    """Every ``common.core_constant("module", "NAME")`` in the CLI's sources (found with ast)."""
    import ast
    from pathlib import Path

    import mvt4g.cli

    for path in sorted(Path(mvt4g.cli.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "core_constant"
                    and len(node.args) == 2 and all(isinstance(a, ast.Constant) for a in node.args)):
                yield path.name, node.args[0].value, node.args[1].value


CORE_CONSTANTS = list(_core_constant_calls())


def test_the_cli_reads_core_constants():
    assert {name for _, _, name in CORE_CONSTANTS} >= {"METHODS", "FRAME_MODES", "DTYPE_NAMES", "SAMPLERS"}


@pytest.mark.parametrize("where, module, name", CORE_CONSTANTS, ids=lambda v: str(v))
def test_a_constant_read_from_source_is_the_imported_value(where, module, name):
    """core_constant reads a literal without importing its module: it must equal the real thing."""
    import importlib

    from mvt4g.cli.common import core_constant

    assert core_constant(module, name) == getattr(importlib.import_module(module), name), where
