"""`mvt4g traj`: list the camera trajectory presets; show, export or plot one (or a file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from mvt4g.camera.choices import ARC_PATHS, SPEEDS, TRAJECTORY_FORMATS
from mvt4g.cli import common

app = typer.Typer(
    help=(
        "Camera trajectories: ReCamMaster's ten presets and a few more, trajectory files, plots.\n\n"
        "A trajectory is a camera-to-world pose per frame (OpenCV axes: x right, y down, z forward; "
        "metres), relative to frame 0, where the reference video's camera starts."
    ),
    no_args_is_help=True,
)


# The io layer's default clip length: what `traj show` builds presets for without --frames.
DEFAULT_FRAMES = common.core_constant("mvt4g.io.frames", "DEFAULT_FRAMES")


@app.command("list")
def list_presets(json_out: common.JsonOpt = False) -> None:
    """List the trajectory presets with what they do and their default amplitudes.

    Examples:

        mvt4g traj list

        mvt4g traj list --json | jq -r '.presets[].name'
    """
    from mvt4g.camera.trajectories import describe_presets
    from mvt4g.camera.trajectory_source import option_flag

    rows = describe_presets()
    if json_out:
        common.emit_json({"presets": rows})
        return
    from rich.table import Table

    table = Table(title="trajectory presets (mvt4g traj show NAME)", title_justify="left")
    for column in ("name", "what it does", "options (defaults)", "ReCamMaster"):
        table.add_column(column)
    for row in rows:
        defaults = ", ".join(f"{option_flag(k)} {v}" for k, v in row["defaults"].items()) or "-"
        table.add_row(row["name"], row["description"], defaults, row["recammaster_camera"] or "")
    common.console().print(table)


@app.command("show")
def show(
    source: Annotated[str, typer.Argument(metavar="NAME|FILE", help="A preset name (see `mvt4g traj list`) or a trajectory file.")],
    frames: Annotated[
        Optional[int],
        typer.Option(help=f"Number of frames (>= 2). Default: {DEFAULT_FRAMES} for presets; a file's own count (else it is resampled)."),
    ] = None,
    angle: Annotated[Optional[float], typer.Option(help="Degrees: pan, tilt and arc presets.")] = None,
    distance: Annotated[Optional[float], typer.Option(help="Metres: zoom and translate presets.")] = None,
    target_depth: Annotated[
        Optional[float],
        typer.Option(help="Metres to the point the camera looks at (translate, arc; default 4). 'inf' on translate: keep the orientation."),
    ] = None,
    speed: Annotated[
        Optional[str],
        typer.Option(click_type=click.Choice(SPEEDS), help="constant: equal steps; ease: MultiCamVideo's fast-start, slow-stop profile."),
    ] = None,
    arc_path: Annotated[
        Optional[str],
        typer.Option("--path", click_type=click.Choice(ARC_PATHS), help="Arcs: along the straight chord (ReCamMaster) or the circle."),
    ] = None,
    camera: Annotated[Optional[str], typer.Option(help="Camera in a camera_extrinsics.json that holds several (e.g. cam09).")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the trajectory JSON on stdout (the --format mvt4g file content).")
    ] = False,
    out: Annotated[Optional[Path], typer.Option(help="Write the trajectory to this file.")] = None,
    out_format: Annotated[
        Optional[str],
        typer.Option("--format", click_type=click.Choice(TRAJECTORY_FORMATS), help="--out format: mvt4g trajectory JSON (default) or ReCamMaster camera_extrinsics.json."),
    ] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Draw the path and camera frusta to this .png/.pdf/.svg.")] = None,
    overwrite: common.OverwriteOpt = False,
) -> None:
    """Show a preset or a trajectory file: a summary, its poses as JSON, a file, a plot.

    Files read: mvt4g trajectory JSON ({"name", "convention": "opencv", "pose": "c2w", "units":
    "m", "frames", "c2w"}) and ReCamMaster/MultiCamVideo camera_extrinsics.json (pick a camera
    with --camera). Poses are always made relative to frame 0.

    Examples:

        mvt4g traj show arc-left

        mvt4g traj show arc-left --angle 45 --path circle --speed ease --plot arc.png

        mvt4g traj show pan-right --frames 49 --json > pan.json

        mvt4g traj show zoom-in --out cams.json --format recammaster

        mvt4g traj show camera_extrinsics.json --camera cam09 --frames 21 --plot cam09.png
    """
    from mvt4g.camera import trajectory_files as tf
    from mvt4g.camera.trajectory_source import resolve_trajectory
    from mvt4g.errors import InputError
    from mvt4g.fs.atomic import check_output_path, write_json_atomic

    # Every check that can fail comes before any work or any write.
    if out_format is not None and out is None:
        raise InputError("--format sets the format of --out; give --out FILE too")
    for target in (out, plot):
        if target is not None:
            check_output_path(target, overwrite=overwrite)
    if out is not None and plot is not None and out.resolve() == plot.resolve():
        raise InputError("--out and --plot name the same file", path=out)
    if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError("--plot must end in .png, .pdf or .svg", path=plot)
    options = {"angle": angle, "distance": distance, "target_depth": target_depth, "speed": speed, "path": arc_path}
    trajectory = resolve_trajectory(source, camera, options)
    if frames is None:  # presets: the default clip length; files: their own count
        frames = DEFAULT_FRAMES if trajectory.spec is not None else len(trajectory.file_poses)
    c2w, _ = trajectory.poses(frames)
    name = trajectory.name

    if out is not None:
        fmt = out_format or TRAJECTORY_FORMATS[0]
        obj = tf.trajectory_json(name, c2w) if fmt == "mvt4g" else tf.recammaster_json(c2w)
        write_json_atomic(out, obj)
    if plot is not None:
        from mvt4g.camera.plot import plot_trajectories

        plot_trajectories({name: c2w}, plot, title=f"{name} ({len(c2w)} frames)")
    if json_out:
        common.emit_json(tf.trajectory_json(name, c2w))
        return
    _print_summary(name, c2w, trajectory.spec)
    if out is not None:
        common.info(f"wrote {out} ({out_format or TRAJECTORY_FORMATS[0]} format)")
    if plot is not None:
        common.info(f"wrote {plot}")


def _print_summary(name: str, c2w: object, spec: object) -> None:
    from mvt4g.camera.trajectory_files import trajectory_summary

    s = trajectory_summary(c2w)
    x, y, z = s["position_m"]  # type: ignore[misc]
    how = f", {spec.speed} speed" if spec is not None else ""  # type: ignore[attr-defined]
    common.info(f"[bold]{name}[/bold]: {s['frames']} frames{how}")
    common.info(f"  last frame: turned {s['rotation_deg']:.2f} deg, at x={x:+.3f} y={y:+.3f} z={z:+.3f} m (y down)")
    common.info(
        f"  path length {s['path_length_m']:.3f} m; largest step per frame "
        f"{s['max_step_m']:.4f} m, {s['max_step_deg']:.3f} deg"
    )
