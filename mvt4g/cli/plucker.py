"""`mvt4g plucker`: precompute Plücker ray maps for clips (cached, keyed by their inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from mvt4g.cli import common
from mvt4g.cli.jobs import run_jobs


# The core's own choices, read without importing numpy (see common.core_constant).
FRAME_MODES = common.core_constant("mvt4g.io.plucker_cache", "FRAME_MODES")
DTYPE_NAMES = common.core_constant("mvt4g.io.plucker_cache", "DTYPE_NAMES")


def plucker(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Clip directories or cameras.json files."),
    ],
    frames: Annotated[
        str,
        typer.Option(click_type=click.Choice(FRAME_MODES),
                     help="'latent': every 4th frame (0, 4, ..., 80 for 81), one per latent frame; 'all': every frame."),
    ] = FRAME_MODES[0],
    dtype: Annotated[
        str, typer.Option(click_type=click.Choice(DTYPE_NAMES), help="float16 (half the disk) or float32."),
    ] = DTYPE_NAMES[0],
    relative_to: Annotated[
        Optional[str],
        typer.Option("--relative-to", help="Express every camera relative to this view's frame-0 pose (as ReCamMaster does)."),
    ] = None,
    size: Annotated[
        Optional[str],
        typer.Option(help="HxW: maps for frames resized to cover this size and centre-cropped (e.g. a training size)."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Output folder (only with one source). Default: CLIP/plucker."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute even when the cache is current.")] = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Precompute Plücker ray maps: [F, 6, H, W] per view, channels (d, m = o x d).

    Writes CLIP/plucker/VIEW.safetensors (tensor `rays` plus metadata). Each file carries a
    key of its inputs: a current file is kept, a stale one (cameras, size, frames, dtype or
    reference changed) is recomputed.

    Examples:

        mvt4g plucker data/synth/scene_0000

        mvt4g plucker data/synth/* --relative-to cam01 --dtype float32

        mvt4g plucker clip/cameras/cameras.json --frames all --out maps/
    """
    from mvt4g.io.plucker_cache import plan_plucker_jobs, run_plucker_job

    target_size = common.parse_size(size) if size else None
    jobs = plan_plucker_jobs(sources, frames=frames, dtype=dtype, relative_to_view=relative_to,
                             size=target_size, out=out, force=force)  # fmt: skip
    results, seconds = run_jobs(jobs, run_plucker_job, "Plücker maps")
    if json_out:
        common.emit_json({"outputs": results, "seconds": round(seconds, 3)})
        return
    written = sum(r["status"] == "written" for r in results)
    common.info(
        f"{written} ray map(s) written, {len(results) - written} current, "
        f"{len(sources)} source(s) in {seconds:.2f} s"
    )
    for r in results:
        common.info(f"  {r['path']}  [{r['status']}] {r['frames']} frames {r['height']}x{r['width']} {r['dtype']}")
