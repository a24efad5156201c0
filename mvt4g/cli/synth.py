"""`mvt4g synth`: render procedural multi-view dynamic scenes with exact depth, masks and tracks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from mvt4g.cli import common


def synth(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created with any missing parent folders).")],
    scenes: Annotated[int, typer.Option(help="Number of scenes (scene_0000, scene_0001, ...).")] = 1,
    views: Annotated[int, typer.Option(help="Synchronized cameras per scene (cam01 is the reference view).")] = 4,
    frames: Annotated[int, typer.Option(help="Frames per view.")] = 21,
    size: Annotated[str, typer.Option(help="HxW in pixels, both even (H.264), e.g. 96x160 or 480x832.")] = "96x160",
    seed: Annotated[int, typer.Option(help="Run seed: scene i is drawn from (seed, i), whatever --scenes/--workers.")] = 0,
    points: Annotated[int, typer.Option(help="Exact multi-view tracks per scene.")] = 2048,
    workers: Annotated[int, typer.Option(help="Scenes rendered in parallel processes.")] = 1,
    threads: Annotated[int, typer.Option(help="torch CPU threads per worker.")] = 1,
    supersample: Annotated[
        int, typer.Option(help="Anti-aliasing: mean of s x s colour rays per pixel (depth, masks, tracks stay exact).")
    ] = 1,
    objects: Annotated[int | None, typer.Option(help="Moving objects per scene (default: 3-5 at random).")] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of the videos.")] = 15.0,
    preset_views: Annotated[
        str | None,
        typer.Option(
            help="Also render cam01 moved along these camera presets (comma-separated, e.g. "
            "arc-left,zoom-in), as views named after them: exact targets for `mvt4g eval` of the presets.",
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing",
            help="Keep scene folders this run would write identically (same seed, index and settings in "
            "their meta.json) and render only the others; a scene written with other settings is refused "
            "unless --overwrite.",
        ),
    ] = False,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Render synthetic multi-view clips with exact ground truth.

    Each scene: a textured ground and sky dome, 3-5 textured spheres, boxes and cylinders moving
    and turning (entering and leaving the frame, occluding each other), and synchronized
    cameras: cam01 static or slow, the others on random MultiCamVideo-like trajectories. Each
    scene folder is a clip: videos/camNN.mp4, cameras/cameras.json, depth/camNN.npz (z-depth,
    metres), masks/camNN.npz (0 = ground/sky, k = object k), tracks.npz (exact tracks, visible
    by depth test), meta.json (caption, seed, provenance). Same seed, same scenes.

    Examples:

        mvt4g synth --out data/synth --scenes 8 --workers 2

        mvt4g synth --out data/synth --scenes 16 --workers 2 --skip-existing

        mvt4g synth --out data/big --scenes 1 --frames 81 --size 480x832 --supersample 2

        mvt4g synth --out data/heldout --scenes 8 --seed 9001 --preset-views arc-left,arc-right,zoom-in,zoom-out
    """
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    height, width = common.parse_size(size)
    settings = SynthSettings(
        views=views, frames=frames, height=height, width=width, seed=seed, points=points,
        supersample=supersample, fps=fps, num_objects=objects, threads=threads,
        preset_views=tuple(p.strip() for p in preset_views.split(",")) if preset_views else (),
    )  # fmt: skip
    settings.validate()
    start = time.perf_counter()
    skipped: list[Path] = []
    with common.progress() as bar:
        task = bar.add_task("Scenes", total=scenes)

        def on_skip(path: Path) -> None:
            skipped.append(path)
            bar.advance(task)

        paths = synthesize(settings, out, scenes, workers=workers, overwrite=overwrite, skip_existing=skip_existing,
                           on_done=lambda _path: bar.advance(task), on_skip=on_skip)  # fmt: skip
    seconds = time.perf_counter() - start
    if json_out:
        common.emit_json({
            "out": str(out), "scenes": [str(p) for p in paths], "skipped": [str(p) for p in skipped],
            "views": views, "frames": frames, "size": [height, width], "seed": seed, "points": points,
            "seconds": round(seconds, 3),
        })  # fmt: skip
        return
    kept = f", {len(skipped)} already written and kept" if skipped else ""
    common.info(
        f"{len(paths)} scene(s) of {views} view(s) x {frames} frames at {height}x{width} in {out}{kept} ({seconds:.1f} s)"
    )
