"""The `mvt4g` entry point: the root command, its global options, and error handling.

Every error a user can cause becomes one line on stderr and exit code 2; a failed run exits 1;
``--debug`` (or ``MVT4G_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Annotated, Optional

import click
import typer

from mvt4g.cli import common
from mvt4g.errors import EXIT_BAD_INPUT, EXIT_FAILED, MVT4GError

# --help lists commands in the order of the pipeline, not in typer's commands-then-groups order.
PIPELINE_ORDER = ("demo", "synth", "tracks", "plucker", "traj", "train", "generate", "eval", "analyze", "info", "convert",
                  "completions")  # fmt: skip


class _PipelineOrderGroup(typer.core.TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(PIPELINE_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    name="mvt4g",
    cls=_PipelineOrderGroup,
    help=(
        "MVTrack4Gen: camera-controlled novel-view video from a monocular video, with multi-view "
        "point tracking as geometric supervision.\n\n"
        "Human output goes to stderr; --json (on each command) prints one JSON object on stdout. "
        "Exit codes: 0 ok, 1 the work failed, 2 bad input or usage."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version_callback(value: bool) -> None:
    if value:
        from mvt4g import __version__

        print(f"mvt4g {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or informational output.")] = False,
) -> None:
    if debug:
        common.STATE.debug = True
    common.STATE.quiet = quiet


def _register() -> None:
    # Each command module keeps its heavy imports inside its functions, so this stays fast.
    # One import + one registration per command, in the order --help lists them.
    from mvt4g.cli import traj

    app.add_typer(traj.app, name="traj")

    from mvt4g.cli import plucker

    app.command("plucker")(plucker.plucker)

    from mvt4g.cli import info

    app.command("info")(info.info)

    from mvt4g.cli import convert

    app.add_typer(convert.app, name="convert")

    from mvt4g.cli import synth

    app.command("synth")(synth.synth)

    from mvt4g.cli import tracks

    app.add_typer(tracks.app, name="tracks")

    from mvt4g.cli import analyze

    app.command("analyze")(analyze.analyze)

    from mvt4g.cli import generate

    app.command("generate")(generate.generate)

    from mvt4g.cli import train

    app.add_typer(train.app, name="train")

    from mvt4g.cli import eval as eval_cli

    app.command("eval")(eval_cli.eval_command)

    from mvt4g.cli import demo

    app.command("demo")(demo.demo)

    from mvt4g.cli import completions

    app.command("completions")(completions.completions)


_register()

#: Metavar of every option with a fixed set of values; the values go into its help text, where
#: they wrap between words (a long ``[a|b|c]`` metavar was cut mid-word at 80 columns).
CHOICE_METAVAR = "CHOICE"


def readable_choices(command: click.Command) -> click.Command:
    """Make every command's ``--help`` list its options' choices in the help text.

    Applied when a help page is formatted, not when the tree is built: choice lists that the
    core loads lazily (``LazyChoice``) are then only loaded for the page that shows them.
    """
    original = command.format_help

    def format_help(ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.Choice) and param.metavar is None:
                param.metavar = CHOICE_METAVAR
                listed = ", ".join(map(str, param.type.choices))
                param.help = f"{(param.help or '').rstrip()} Choices: {listed}.".lstrip()
        original(ctx, formatter)

    command.format_help = format_help  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        readable_choices(sub)
    return command


def build_command() -> click.Command:
    """The click command tree of ``mvt4g`` (what :func:`main` runs)."""
    return readable_choices(typer.main.get_command(app))


def _error_line(message: str) -> None:
    sys.stderr.write(f"mvt4g: error: {message}\n")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C raises KeyboardInterrupt."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[list[int]]:
    """Make SIGTERM an exception for the command's duration.

    Python's default for SIGTERM ends the process on the spot, like kill -9: temporary files
    stay and locks are dropped unreleased. As an exception, every ``with`` and ``finally``
    runs (temporaries removed, half-written items deleted) and the exit code is 143. `train`
    puts its own handler (checkpoint, then stop) in place while it runs. Yields a list that
    gets the signal number once SIGTERM arrived (typer turns the exception into a bare
    ``Exit(130)``, so the exit code alone cannot tell).
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def raise_terminated(signum, frame):
        if received:  # a second SIGTERM (timeout sends two) must not cut the cleanup short
            return
        received.append(signum)
        raise _Terminated()

    old = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    with _sigterm_raises() as sigterm:
        code = _main(argv)
    if sigterm and code == 130:  # the command ended by the SIGTERM exception
        _error_line("stopped by SIGTERM")
        return 143
    return code


def _main(argv: list[str] | None) -> int:
    # Each call starts from the environment's defaults (main() also runs in-process in tests).
    common.STATE.debug = common.debug_from_env()
    common.STATE.quiet = False
    command = build_command()
    try:
        result = command.main(args=argv, prog_name="mvt4g", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _error_line("aborted")
        return 130
    except click.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # click >= 8.2: help was shown, exit 2 as click does
            return EXIT_BAD_INPUT
        # Usage errors: one line, with the subcommand named so the user knows whose --help to read.
        where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) is not None else ""
        _error_line(f"{where}{exc.format_message()}")
        return EXIT_BAD_INPUT
    except MVT4GError as exc:
        if common.STATE.debug:
            traceback.print_exc()
        _error_line(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error_line("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 (the last line of defence: a bug, reported briefly)
        if common.STATE.debug:
            traceback.print_exc()
        _error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return EXIT_FAILED
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
