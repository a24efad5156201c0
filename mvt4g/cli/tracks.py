"""`mvt4g tracks`: multi-view point tracks for clips; score them; draw them.

``mvt4g tracks CLIP... [options]`` is short for ``mvt4g tracks compute CLIP... [options]``: any
first argument that is not a subcommand name goes to ``compute`` (a clip directory literally
named ``score`` or ``show`` needs ``./score``).
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from mvt4g.cli import common


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


class Method(str, Enum):
    auto = "auto"
    geometry = "geometry"
    flow = "flow"
    plugin = "plugin"


class QueryFrames(str, Enum):
    first = "first"
    all = "all"


class QueryMode(str, Enum):
    first = "first"
    strided = "strided"


@app.command("compute")
def compute(
    clips: Annotated[list[Path], typer.Argument(help="Clip directories (videos/, cameras/, optional depth/ and masks/).")],
    method: Annotated[
        Method,
        typer.Option(help="auto: keep exact tracks if present, else geometry with depth, else flow."),
    ] = Method.auto,
    tracker: Annotated[
        str | None,
        typer.Option(help="Plug-in tracker MODULE:CALLABLE (module name or path to a .py file); implies --method plugin."),
    ] = None,
    grid: Annotated[
        str | None, typer.Option(help="Query grid ROWSxCOLS per view and query frame (default 30x52, the paper's).")
    ] = None,
    queries: Annotated[
        int | None, typer.Option("--queries", help="N random queries over the query views and frames instead of a grid.")
    ] = None,
    query_frames: Annotated[
        QueryFrames, typer.Option(help="Frames that get queries: the first frame, or every frame.")
    ] = QueryFrames.first,
    query_views: Annotated[
        str, typer.Option(help="Views that get queries: all, first, or a comma list of view names.")
    ] = "all",
    queries_from: Annotated[
        Path | None, typer.Option(help="Take the queries from this track file (to score against it).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --queries.")] = 0,
    depth_tol: Annotated[
        float, typer.Option(help="geometry: relative depth tolerance of the visibility test.")
    ] = 0.01,
    out: Annotated[
        Path | None, typer.Option(help="Output track file (one clip only). Default: CLIP/tracks.npz.")
    ] = None,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Compute multi-view tracks for clips and write them as tracks.npz.

    Resumable: a clip whose output was made from the same inputs and options is skipped.
    An existing output made otherwise (e.g. a clip's exact tracks) is kept unless --overwrite.
    The clip folders being written are this run's while it runs: a second run on one of them
    is refused ("clip folder is in use by pid N", exit 2).

    Examples:

        mvt4g tracks data/synth/scene_0000 --method flow --out flow.npz

        mvt4g tracks data/synth/* --method geometry --grid 15x26 --overwrite

        mvt4g tracks clip --tracker ./my_cotracker.py:track --queries-from clip/tracks.npz --out pred.npz
    """
    from mvt4g.tracks.compute import TrackOptions, lock_track_jobs, plan_track_jobs, run_track_job
    from mvt4g.tracks.queries import parse_grid

    options = TrackOptions(
        method=method.value, tracker=tracker, grid=parse_grid(grid) if grid else None, num_queries=queries,
        query_frames=query_frames.value, query_views=query_views, queries_from=queries_from, seed=seed,
        depth_tol=depth_tol,
    )
    jobs = plan_track_jobs(clips, options, out=out, overwrite=overwrite)  # checks everything before any work
    start = time.perf_counter()
    results = []
    with lock_track_jobs(jobs, overwrite=overwrite) as jobs, common.progress() as bar:
        task = bar.add_task("tracks", total=len(jobs))
        for job in jobs:
            results.append(run_track_job(job))
            bar.advance(task)
    seconds = time.perf_counter() - start
    if json_out:
        common.emit_json({"clips": results, "seconds": round(seconds, 3)})
        return
    written = sum(r["status"] == "written" for r in results)
    common.info(f"{written} track file(s) written, {len(results) - written} skipped, in {seconds:.2f} s")
    for r in results:
        if r["status"] == "written":
            common.info(
                f"  {r['out']}  ({r['method']}: {r['reason']}) {r['tracks']} tracks x {r['views']} views x "
                f"{r['frames']} frames, {100 * r['visible_fraction']:.1f}% visible, {r['seconds']:.2f} s"
            )
        else:
            common.info(f"  {r['out']}  ({r['status']}: {r['reason'] if r['status'] == 'exact' else 'inputs unchanged'})")
        for note in r["notes"]:
            common.info(f"    {note}")


@app.command("score")
def score(
    pred: Annotated[Path, typer.Argument(help="Predicted tracks (.npz).")],
    gt: Annotated[Path, typer.Argument(help="Ground-truth tracks (.npz) on the same queries.")],
    mode: Annotated[
        QueryMode, typer.Option(help="first: score frames after the query frame; strided: every frame but the query's.")
    ] = QueryMode.first,
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
    scores = score_tracks(p, g, mode=mode.value)
    if json_out:
        common.emit_json({"pred": str(pred), "gt": str(gt), "mode": mode.value, "pred_method": p.method,
                          "gt_method": g.method, "scores": scores})
        return
    common.info(f"{pred} ({p.method}) vs {gt} ({g.method}), query mode {mode.value}:")
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
    from mvt4g.errors import InputError
    from mvt4g.fs.atomic import check_output_path
    from mvt4g.io.clip import read_clip
    from mvt4g.io.video import write_video
    from mvt4g.tracks.format import read_tracks
    from mvt4g.tracks.overlay import draw_overlay

    c = read_clip(clip)
    track_path = tracks or c.tracks_path
    ts = read_tracks(track_path)
    if ts.tracks.shape[:2] != (len(c.views), c.frames) or tuple(ts.image_size) != (c.height, c.width):
        raise InputError(
            f"tracks are for {ts.num_views} views x {ts.num_frames} frames of {ts.image_size[1]}x{ts.image_size[0]}, "
            f"the clip has {len(c.views)} x {c.frames} of {c.width}x{c.height}",
            path=track_path,
        )
    if out.suffix.lower() != ".mp4":
        raise InputError("overlay output must be an .mp4 file", path=out)
    check_output_path(out, overwrite=overwrite)
    frames = [c.read_video(v) for v in c.views]
    video = draw_overlay(frames, ts, trail=trail, max_tracks=max_tracks)
    write_video(out, video, c.fps, pad_to_even=True, overwrite=overwrite)
    if json_out:
        common.emit_json({"out": str(out), "tracks": str(track_path), "frames": int(video.shape[0]),
                          "height": int(video.shape[1]), "width": int(video.shape[2])})
        return
    common.info(f"wrote {out}: {video.shape[0]} frames of {video.shape[2]}x{video.shape[1]} ({ts.num_views} views)")
