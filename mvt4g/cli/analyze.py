"""`mvt4g analyze`: emergent correspondences in the 3D attention, per layer and timestep (paper Sec. 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from mvt4g.cli import common

# The core's own list, read without importing torch (see common.core_constant).
DTYPE_NAMES = common.core_constant("mvt4g.analysis.runner", "DTYPE_NAMES")


def analyze(
    clips: Annotated[list[Path], typer.Argument(help="Clip directories with tracks.npz (2+ views).")],
    model: Annotated[Path, typer.Option("--model", help="Model directory (save_pretrained) or a run directory holding model/.")],
    layers: Annotated[str, typer.Option(help="Blocks to analyse, 0-based: all, a-b or i,j (e.g. 10-20,25).")] = "all",
    timesteps: Annotated[int, typer.Option(help="Analyse the N sigmas of an N-step sampler (t = 1000 sigma).")] = 10,
    pairs: Annotated[int, typer.Option(help="Ordered (reference, target) view pairs drawn per clip.")] = 1,
    queries: Annotated[int, typer.Option(help="Ground-truth tracks per pair; each visible latent frame is a query point.")] = 256,
    out: Annotated[Path, typer.Option("--out", help="Output folder (created with any missing parent folders).")] = Path("analysis"),
    visualize: Annotated[
        str | None, typer.Option(help="x,y,frame: draw this target-view point's attention (clip pixels, clip frame).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the pair and track draws and of the noise.")] = 0,
    delta: Annotated[
        float | None, typer.Option("--delta", help="Match threshold in analysed pixels (default: one token, the paper's 16 px at 16 px/token).")
    ] = None,
    head: Annotated[str, typer.Option(help="Attention heads: mean (average of per-head attention) or one head index.")] = "mean",
    shift: Annotated[float, typer.Option(help="Sampler timestep shift (ReCamMaster: 5).")] = 5.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    dtype: Annotated[str, typer.Option(click_type=click.Choice(DTYPE_NAMES), help="Model dtype.")] = "float32",
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default; 1 is fastest for tiny models).")] = 0,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Measure the correspondences hidden in the model's 3D attention, per layer and timestep.

    For each clip, view pair and timestep the target is noised, the model runs once with taps on
    every analysed layer, and the attention rows of ground-truth track points (exact tracks from
    `mvt4g synth`, or pseudo ground truth from `mvt4g tracks`) are scored for three kinds of
    correspondence: reference temporal, target temporal and cross-view (target query, reference
    keys). Metrics: PCK of cycle-consistent argmax matches, attention score (attention mass on
    the correct matches), confidence score (peak of the attention re-normalised over a frame),
    and their harmonic mean after min-max normalisation. Writes OUT/analysis.json,
    OUT/heatmaps.png (layer x timestep, as the paper's Fig. 4), OUT/scores.png and, with
    --visualize, OUT/query_attention.png. The layer with the highest cross-view PCK (pooled over
    timesteps) is named best only when it stands out: at least twice the chance level of the
    token grid and 3 standard errors (over query points) above it, and 2 standard errors above
    every other layer; otherwise the verdict is "no layer stands out". The harmonic-mean choice
    per correspondence type (the paper's criterion) is shown beside it.

    Examples:

        mvt4g analyze --model runs/tiny data/synth/scene_0000 --timesteps 5 --out analysis

        mvt4g analyze --model runs/wan --layers 10-25 --pairs 2 --visualize 400,240,60 clips/*
    """
    from mvt4g.analysis.report import build_report, check_out_dir, write_outputs
    from mvt4g.analysis.runner import (
        AnalysisSettings,
        parse_visualize,
        plan_analysis,
        run_analysis,
    )

    settings = AnalysisSettings(
        layers=layers, timesteps=timesteps, shift=shift, pairs=pairs, queries=queries, delta_px=delta,
        heads=head, seed=seed, device=device, dtype=dtype, visualize=parse_visualize(visualize),
        threads=threads,
    )  # fmt: skip
    plan = plan_analysis(model, list(clips), settings)
    check_out_dir(out, overwrite)
    forwards = len(plan.pairs) * len(plan.sigmas)
    common.info(
        f"analysing {len(plan.layers)} layer(s) x {len(plan.sigmas)} timestep(s) on {len(plan.pairs)} pair(s) "
        f"of {len(plan.sources)} clip(s) at {plan.size[0]}x{plan.size[1]} (delta {plan.delta_px:g} px)"
    )
    with common.progress() as bar:
        task = bar.add_task("Forward passes", total=forwards)
        result = run_analysis(plan, settings, on_forward=lambda: bar.advance(task))
    report = build_report(result, settings)
    write_outputs(result, report, out, overwrite=overwrite)
    if settings.visualize is not None and "query_attention" not in report["files"]:
        common.warn("--visualize: the first pair was skipped, so no query_attention.png was drawn")
    for skipped in result.skipped:
        common.warn(f"skipped {skipped['clip']} {skipped['reference']}->{skipped['target']}: {skipped['reason']}")
    if json_out:
        common.emit_json(report)
        return
    _print_summary(report, out)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_summary(report: dict, out: Path) -> None:
    from rich.table import Table

    best = report["best_layer"]
    table = Table(title="Best layer per correspondence type (harmonic mean, averaged over timesteps)")
    for col in ("type", "best layer", "harmonic mean", "pairs"):
        table.add_column(col)
    for name, entry in best["per_type"].items():
        score = entry["harmonic_mean"]
        table.add_row(name, str(entry["layer"]), "-" if score is None else f"{score:.3f}", str(report["metrics"][name]["pairs"]))
    if not common.STATE.quiet:
        common.console().print(table)
    if not common.STATE.quiet:
        pck_table = Table(title=f"Cross-view PCK per layer, pooled over timesteps (chance {best['chance_pck'] or 0:.4f})")
        for col in ("layer", "PCK", "± se"):
            pck_table.add_column(col)
        for row in best["cross_view_pck_by_layer"]:
            pck_table.add_row(str(row["layer"]), _fmt(row["pck"], 4), _fmt(row["se"], 4))
        common.console().print(pck_table)
    line = f"{best['verdict']} (cross-view): {best['reason']}"
    timing = report["timing"]
    common.info(f"{line}; {timing['seconds']:.1f} s, {timing['seconds_per_cell']:.3g} s per layer x timestep cell")
    vis = report.get("visualize")
    if vis is not None:
        common.info(
            f"query_attention.png: point {vis['point_px']} (analysed pixels) in target view {vis['target']} of "
            f"{vis['clip']} (reference {vis['reference']}), layer {vis['layer']}, t = {vis['timestep']:.0f}"
        )
    common.info(f"wrote {out}/analysis.json and the heatmaps")
