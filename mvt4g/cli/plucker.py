"""`mvt4g plucker`: precompute Plücker ray maps for clips (cached, keyed by their inputs)."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mvt4g.cli import common


class FramesMode(str, Enum):
    latent = "latent"
    all = "all"


class MapDtype(str, Enum):
    float16 = "float16"
    float32 = "float32"


def plucker(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Clip directories or cameras.json files."),
    ],
    frames: Annotated[
        FramesMode,
        typer.Option(help="'latent': every 4th frame (0, 4, ..., 80 for 81), one per latent frame; 'all': every frame."),
    ] = FramesMode.latent,
    dtype: Annotated[MapDtype, typer.Option(help="float16 (half the disk) or float32.")] = MapDtype.float16,
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
    from mvt4g.errors import InputError
    from mvt4g.io.plucker_cache import cached_key, load_camera_source, plan_requests, write_plucker

    if out is not None and len(sources) > 1:
        raise InputError("--out takes one source; without it each clip gets its own plucker/ folder")
    if out is not None and not out.parent.is_dir():
        raise InputError(f"output directory {str(out.parent)!r} does not exist", path=out)
    target_size = common.parse_size(size) if size else None
    # Validate every source before writing anything.
    plans = []
    for source in sources:
        cameras, default_out = load_camera_source(source)
        requests = plan_requests(cameras, frames=frames.value, dtype=dtype.value, relative_to_view=relative_to, size=target_size)
        plans.append((source, out or default_out, requests))

    start = time.perf_counter()
    results = []
    total = sum(len(r) for _, _, r in plans)
    with common.progress() as bar:
        task = bar.add_task("Plücker maps", total=total)
        for source, out_dir, requests in plans:
            out_dir.mkdir(exist_ok=True)
            for req in requests:
                path = out_dir / f"{req.view}.safetensors"
                if not force and cached_key(path) == req.key():
                    status, shape = "current", None
                else:
                    status, shape = "written", write_plucker(path, req)
                results.append(
                    {"source": str(source), "view": req.view, "path": str(path), "status": status,
                     "frames": len(req.indices), "height": req.cameras.height, "width": req.cameras.width,
                     "dtype": req.dtype, "shape": list(shape) if shape else None}
                )
                bar.advance(task)
    seconds = time.perf_counter() - start
    if json_out:
        common.emit_json({"outputs": results, "seconds": round(seconds, 3)})
        return
    written = sum(r["status"] == "written" for r in results)
    common.info(
        f"{written} ray map(s) written, {len(results) - written} current, "
        f"{len(plans)} source(s) in {seconds:.2f} s"
    )
    for r in results:
        common.info(f"  {r['path']}  [{r['status']}] {r['frames']} frames {r['height']}x{r['width']} {r['dtype']}")
