"""`mvt4g tracks`: multi-view point tracks for clips; score them; draw them.

``mvt4g tracks CLIP... [options]`` is short for ``mvt4g tracks compute CLIP... [options]``: any
first argument that is not a subcommand name goes to ``compute`` (a clip directory literally
named ``score`` or ``show`` needs ``./score``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from mvt4g.cli import common
from mvt4g.cli.jobs import run_with_progress

# The core's own choices and defaults, read without importing OpenCV (see common.core_constant).
METHODS = common.core_constant("mvt4g.tracks.compute", "METHODS")
QUERY_FRAMES = common.core_constant("mvt4g.tracks.compute", "QUERY_FRAMES")
QUERY_MODES = common.core_constant("mvt4g.tracks.metrics", "QUERY_MODES")
DEFAULT_GRID = common.core_constant("mvt4g.tracks.queries", "DEFAULT_GRID")
DEFAULT_DEPTH_TOL = common.core_constant("mvt4g.tracks.exact.depth", "DEFAULT_DEPTH_TOL")


class _DefaultCompute(TyperGroup):
    """A group whose unknown first argument (a clip path or an option) starts ``compute``."""

    default_command = "compute"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultCompute,
    help=(
        "Multi-view point tracks: compute them for clips (geometry, flow or a plug-in tracker), "
        "score them with TAP-Vid metrics, draw them.\n\n"
        "Short form: `mvt4g tracks CLIP... [OPTIONS]` runs `compute`."
    ),
    no_args_is_help=True,
)


@app.command("compute")
def compute(
    clips: Annotated[
        list[Path],
        typer.Argument(
            help="Clip directories (videos/, cameras/, optional depth/ and masks/), or dataset folders: "
            "every clip below one is tracked (bad ones reported and skipped)."
        ),
    ],
    method: Annotated[
        str,
        typer.Option(
            click_type=click.Choice(METHODS),
            help="auto: keep exact tracks if present, else geometry with depth, else flow.",
        ),
    ] = METHODS[0],
    tracker: Annotated[
        str | None,
        typer.Option(help="Plug-in tracker MODULE:CALLABLE (module name or path to a .py file); implies --method plugin."),
    ] = None,
    grid: Annotated[
        str | None,
        typer.Option(help=f"Query grid ROWSxCOLS per view and query frame (default {DEFAULT_GRID[0]}x{DEFAULT_GRID[1]}, the paper's)."),
    ] = None,
    queries: Annotated[
        int | None, typer.Option("--queries", help="N random queries over the query views and frames instead of a grid.")
    ] = None,
    query_frames: Annotated[
        str,
        typer.Option(click_type=click.Choice(QUERY_FRAMES), help="Frames that get queries: the first frame, or every frame."),
    ] = QUERY_FRAMES[0],
    query_views: Annotated[
        str, typer.Option(help="Views that get queries: all, first, or a comma list of view names.")
    ] = "all",
    queries_from: Annotated[
        Path | None, typer.Option(help="Take the queries from this track file (to score against it).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --queries.")] = 0,
    depth_tol: Annotated[
        float, typer.Option(help="geometry: relative depth tolerance of the visibility test.")
    ] = DEFAULT_DEPTH_TOL,
    out: Annotated[
        Path | None, typer.Option(help="Output track file (one clip only). Default: CLIP/tracks.npz.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Clips computed in parallel processes, the CPU threads shared out among them; the tracks are the same.",
        ),
    ] = 1,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Compute multi-view tracks for clips or whole datasets and write them as CLIP/tracks.npz.

    A dataset folder (e.g. MultiCamVideo's train/, or `mvt4g synth`'s output) is searched for
    clips at any depth. A bad clip found there (no cameras, views of different lengths) is
    reported on one line and skipped, the others are tracked, and the run exits 1 naming it;
    a bad clip named directly stops the run before any work (exit 2).

    Resumable: a clip whose output was made from the same inputs and options is skipped.
    An existing output made otherwise (e.g. a clip's exact tracks) is kept unless --overwrite.
    The clip folders being written are this run's while it runs: a second run on one of them
    is refused ("clip folder is in use by pid N", exit 2).

    At the end a table gives each clip's quality signals: visible (all views and frames), own
    view (frames where a track holds in its query view: for flow, chained steps that pass the
    forward-backward check), cross view, and associated (other views a track is found in).

    Examples:

        mvt4g tracks MultiCamVideo-Dataset/train --method flow --grid 30x52 --workers 2

        mvt4g tracks data/synth/scene_0000 --method flow --out flow.npz

        mvt4g tracks data/synth/* --method geometry --grid 15x26 --overwrite

        mvt4g tracks clip --tracker ./my_cotracker.py:track --queries-from clip/tracks.npz --out pred.npz
    """
    from mvt4g.errors import WorkFailed
    from mvt4g.tracks.compute import TrackOptions, lock_track_jobs
    from mvt4g.tracks.dataset import plan_dataset, run_track_jobs
    from mvt4g.tracks.quality import summarize
    from mvt4g.tracks.queries import parse_grid

    options = TrackOptions(
        method=method, tracker=tracker, grid=parse_grid(grid) if grid else None, num_queries=queries,
        query_frames=query_frames, query_views=query_views, queries_from=queries_from, seed=seed,
        depth_tol=depth_tol,
    )
    plan = plan_dataset(clips, options, out=out, overwrite=overwrite)  # checks everything before any work
    for bad in plan.bad:
        _warn_line(f"skipped {bad.problem}")
    # One clip named directly fails as it always did (its own error and exit code); in a
    # dataset or a list of clips, a failed clip is reported and the others go on.
    keep_going = plan.scanned or len(plan.entries) > 1

    def work(advance):
        def on_done(row):
            advance()
            if row["status"] == "failed":
                _warn_line(row["error"])

        return run_track_jobs(jobs, workers=workers, keep_going=keep_going, on_done=on_done)

    with lock_track_jobs(plan.jobs, overwrite=overwrite) as jobs:
        job_rows, seconds = run_with_progress(len(jobs), "tracks", work)
    results = plan.rows(job_rows)
    failed = [r["clip"] for r in results if r["status"] == "failed"]
    if json_out:
        common.emit_json({"clips": results, "summary": summarize(results), "failed": failed, "workers": workers,
                          "seconds": round(seconds, 3)})  # fmt: skip
    else:
        _print_compute(results, seconds, table=plan.scanned or len(results) > 1)
    if failed:
        names = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        raise WorkFailed(f"{len(failed)} of {len(results)} clip(s) failed: {names}")


def _signals(row: dict) -> str:
    """`` (own view 52.8%, cross view 18.8%, associated 23.4%)`` for the signals a row has."""
    q = row.get("quality") or {}
    parts = [f"{name} {100 * q[key]:.1f}%" for key, name in
             (("own_view", "own view"), ("cross_view", "cross view"), ("associated", "associated")) if q.get(key) is not None]  # fmt: skip
    return f" ({', '.join(parts)})" if parts else ""


def _warn_line(text: str) -> None:
    """A warning kept on one line (a clip's path and its problem), whatever the terminal's width."""
    from rich.markup import escape

    common.console().print(f"[yellow]warning:[/yellow] {escape(text)}", soft_wrap=True)


def _print_compute(results: list[dict], seconds: float, *, table: bool) -> None:
    import os

    from mvt4g.tracks.quality import format_quality_table

    count = {s: sum(r["status"] == s for r in results) for s in ("written", "current", "exact", "failed")}
    common.info(
        f"{count['written']} track file(s) written, {count['current'] + count['exact']} skipped"
        + (f", {count['failed']} failed" if count["failed"] else "") + f", in {seconds:.2f} s"
    )
    if table:  # one line per clip: the table
        clips = [r["clip"] for r in results]
        base = os.path.commonpath([os.path.abspath(c) for c in clips])
        if len(clips) == 1 or base in map(os.path.abspath, clips):
            base = os.path.dirname(base)
        names = [os.path.relpath(os.path.abspath(c), base) for c in clips]
        if not common.STATE.quiet:  # not wrapped at the terminal's width, no markup: a table
            common.console().print(format_quality_table(results, names), soft_wrap=True, markup=False)
        return
    for r in results:
        if r["status"] == "written":
            common.info(
                f"  {r['out']}  ({r['method']}: {r['reason']}) {r['tracks']} tracks x {r['views']} views x "
                f"{r['frames']} frames, {100 * r['visible_fraction']:.1f}% visible{_signals(r)}, {r['seconds']:.2f} s"
            )
        elif r["status"] in ("current", "exact"):
            common.info(f"  {r['out']}  ({r['status']}: {r['reason'] if r['status'] == 'exact' else 'inputs unchanged'})")
        for note in r.get("notes", []):
            common.info(f"    {note}")


@app.command("score")
def score(
    pred: Annotated[Path, typer.Argument(help="Predicted tracks (.npz).")],
    gt: Annotated[Path, typer.Argument(help="Ground-truth tracks (.npz) on the same queries.")],
    mode: Annotated[
        str,
        typer.Option(
            click_type=click.Choice(QUERY_MODES),
            help="first: score frames after the query frame; strided: every frame but the query's.",
        ),
    ] = QUERY_MODES[0],
    json_out: common.JsonOpt = False,
) -> None:
    """TAP-Vid metrics of PRED against GT: delta_avg, average Jaccard, occlusion accuracy.

    Coordinates are rescaled to 256x256; thresholds 1, 2, 4, 8, 16 px. Reported for temporal pairs
    (the query's own view), cross-view pairs (other views) and all. PRED must be made on GT's
    queries: `mvt4g tracks CLIP --queries-from GT --out PRED`.
    """
    from mvt4g.tracks.format import read_tracks
    from mvt4g.tracks.metrics import format_table, score_tracks

    p, g = read_tracks(pred), read_tracks(gt)
    scores = score_tracks(p, g, mode=mode)
    if json_out:
        common.emit_json({"pred": str(pred), "gt": str(gt), "mode": mode, "pred_method": p.method,
                          "gt_method": g.method, "scores": scores})
        return
    common.info(f"{pred} ({p.method}) vs {gt} ({g.method}), query mode {mode}:")
    common.info(format_table(scores))


@app.command("show")
def show(
    clip: Annotated[Path, typer.Argument(help="Clip directory.")],
    out: Annotated[Path, typer.Option(help="Output video (.mp4).")],
    tracks: Annotated[Path | None, typer.Option(help="Track file (default: CLIP/tracks.npz).")] = None,
    trail: Annotated[int, typer.Option(min=0, help="Trail length in frames.")] = 8,
    max_tracks: Annotated[int, typer.Option(min=1, help="Draw at most this many tracks (spread over the queries).")] = 300,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Draw tracks over the clip's videos: coloured trails, views side by side.

    Example:

        mvt4g tracks show data/synth/scene_0000 --out overlay.mp4
    """
    from mvt4g.tracks.overlay import write_overlay

    row = write_overlay(clip, out, tracks=tracks, trail=trail, max_tracks=max_tracks, overwrite=overwrite)
    if json_out:
        common.emit_json({k: row[k] for k in ("out", "tracks", "frames", "height", "width")})
        return
    common.info(f"wrote {row['out']}: {row['frames']} frames of {row['height']}x{row['width']} ({row['views']} views)")
