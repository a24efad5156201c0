"""What every subcommand shares: output streams, JSON, progress bars and option types.

Human output goes to stderr (rich); ``--json`` prints exactly one JSON object on stdout.
Progress bars show only on an interactive stderr and never with ``--quiet``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer


@dataclass
class CliState:
    debug: bool = False
    quiet: bool = False


def debug_from_env() -> bool:
    return os.environ.get("MVT4G_DEBUG", "") not in ("", "0")


STATE = CliState(debug=debug_from_env())

# Options that several commands share, declared once so their help reads the same everywhere.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (for scripts).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]


def console():
    """The stderr console (rich), created on first use so `--help` stays fast."""
    from rich.console import Console

    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = Console(stderr=True, highlight=False)
    return _CONSOLE


_CONSOLE = None


def info(message: str) -> None:
    """A human-readable line on stderr, unless ``--quiet``."""
    if not STATE.quiet:
        console().print(message)


def warn(message: str) -> None:
    """A warning on stderr (shown even with ``--quiet``)."""
    console().print(f"[yellow]warning:[/yellow] {message}")


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def show_progress() -> bool:
    return not STATE.quiet and sys.stderr.isatty()


class _NoProgress:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass

    def remove_task(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def progress(transient: bool = True) -> Iterator[Any]:
    """A rich Progress on an interactive stderr, or an object with the same methods that does nothing."""
    if not show_progress():
        yield _NoProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console(), transient=transient) as bar:
        yield bar


def core_constant(module: str, name: str) -> Any:
    """The literal value of ``module.name`` (a tuple of choices, a default), read from the
    module's source instead of importing it: the command line builds its choices and help from
    the core's own constants without importing torch or OpenCV for ``--help``.

    Only a top-level ``NAME = <literal>`` is read; anything else is a bug caught by the tests
    (tests/test_cli_help.py compares every value with the imported module's).
    """
    import ast

    import mvt4g

    # The file from the package folder, not importlib.util.find_spec: that imports the parent
    # packages (mvt4g.eval's __init__ imports torch, 2.5 s on every start).
    base = Path(mvt4g.__file__).parent.joinpath(*module.split(".")[1:])
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not module.startswith("mvt4g.") or not path.is_file():
        raise LookupError(f"no module {module}")
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return ast.literal_eval(node.value)
    raise LookupError(f"{module} has no literal {name}")


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (e.g. ``480x832``) into ``(height, width)``."""
    from mvt4g.errors import InputError

    parts = text.lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"size must be HxW, e.g. 480x832; got {text!r}") from None
    if h <= 0 or w <= 0:
        raise InputError(f"size must be positive, got {text!r}")
    return h, w


def agree_ranks(error, ranks) -> None:
    """Stop every rank when any failed a step all of them do (checks, locks, loading the model).

    One process raises its error as always. Under torchrun rank 0 raises its own error or the
    first failing rank's (one line); the other ranks leave silently with the same exit code.
    """
    from mvt4g.errors import InputError, WorkFailed
    from mvt4g.model.distributed import first_failure

    if not ranks.distributed:
        if error is not None:
            raise error
        return
    failure = first_failure(error, ranks)
    if failure is None:
        return
    rank, code, message = failure
    if not ranks.is_main:
        raise typer.Exit(code)
    if error is not None:
        raise error
    raise (InputError if code == 2 else WorkFailed)(f"rank {rank}: {message}")
