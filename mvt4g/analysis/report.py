"""The analysis report: JSON tables, the best layer, and the output folder with its pictures.

Output folder (written atomically: a temporary folder renamed at the end)::

    analysis.json          the report (same object as ``mvt4g analyze --json``)
    heatmaps.png           PCK and harmonic mean, layer x timestep, per type (paper Fig. 4)
    scores.png             attention and confidence scores (paper Fig. 8)
    query_attention.png    with --visualize: one query's attention across frames (Fig. 3/15)

Tables are ``[layer][timestep]`` lists in the order of ``layers`` and ``timesteps``; cells
without query pairs are null.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mvt4g.analysis.correspondence import CORRESPONDENCE_TYPES
from mvt4g.analysis.runner import AnalysisResult, AnalysisSettings
from mvt4g.analysis.summary import (
    BEST_LAYER_TYPE,
    Z_CHANCE,
    Z_MARGIN,
    add_harmonic_means,
    best_layer,
    chance_pck,
    json_table,
    layer_verdict,
    metric_tables,
    pck_leader,
    pooled_layer_pck,
)
from mvt4g.fs.atomic import atomic_dir, check_output_path

REPORT_NAME = "analysis.json"
DEFINITIONS = {
    "pck": "share of (query, frame) pairs whose forward match (argmax of the per-frame attention) passes the "
    "cycle check and lies within delta_px of the co-visible ground-truth point",
    "attention": "per query, the model's attention (softmax over all keys) summed over its ground-truth tokens in "
    "the type's co-visible frames; mean over queries",
    "confidence": "max of the attention re-normalised over the ground-truth frame's keys; mean over (query, frame) pairs",
    "reliable": "share of pairs whose backward match returns within delta_px of the query",
    "harmonic_mean": "3 / (1/norm(pck) + 1/norm(attention) + 1/norm(confidence)), norm = min-max over the table",
    "types": "ref_temporal: reference -> reference, j != i; tgt_temporal: target -> target, j != i; "
    "cross_view: target query -> reference keys, all j",
}


def build_report(result: AnalysisResult, settings: AnalysisSettings) -> dict:
    """The JSON-ready report of a finished run."""
    plan = result.plan
    cfg = plan.config
    tables = metric_tables(result.cells)
    add_harmonic_means(tables)
    timesteps = [round(float(s) * 1000.0, 4) for s in plan.sigmas]
    first = result.cells[0][0].means()
    metrics = {}
    for name in CORRESPONDENCE_TYPES:
        entry = {m: json_table(t) for m, t in tables[name].items()}
        entry["pairs"] = int(first[name]["pairs"])
        entry["queries"] = int(first[name]["queries"])
        metrics[name] = entry
    per_type = {}
    for name in CORRESPONDENCE_TYPES:
        layer, score, _ = best_layer(tables[name]["harmonic_mean"], plan.layers)
        per_type[name] = {"layer": layer, "harmonic_mean": _num(score)}
    h, w = cfg.token_grid(*plan.size)
    best = _best_layer(result, tables, timesteps, per_type, chance_pck(plan.size, (h, w), plan.delta_px))
    cells = plan.cells * max(1, len(result.pairs))
    return {
        "model": str(plan.model_dir),
        "preset": cfg.name,
        "clips": [str(s.path) for s in plan.sources],
        "pairs": result.pairs,
        "skipped": result.skipped,
        "settings": {
            "timesteps": settings.timesteps, "shift": settings.shift, "sigmas": [round(float(s), 6) for s in plan.sigmas],
            "pairs_per_clip": settings.pairs, "queries_per_pair": settings.queries, "seed": settings.seed,
            "delta_px": plan.delta_px,
            "delta_rule": "given with --delta" if settings.delta_px is not None else
            "paper's 16 px scaled by token size: 16 * token_stride / 16 analysed pixels (one token)",
            "heads": settings.heads, "size": list(plan.size), "max_frames": cfg.video.frames,
            "token_grid": [h, w], "token_stride": cfg.token_stride,
            "dtype": settings.dtype, "layer_indexing": "0-based DiT block index",
        },  # fmt: skip
        "definitions": DEFINITIONS,
        "layers": list(plan.layers),
        "timesteps": timesteps,
        "metrics": metrics,
        "best_layer": best,
        "timing": {
            "seconds": round(result.seconds, 3), "forward_passes": result.forward_passes, "cells": cells,
            "seconds_per_cell": round(result.seconds / cells, 6) if cells else None,
        },  # fmt: skip
    }


def _best_layer(result: AnalysisResult, tables: dict, timesteps: list[float], per_type: dict, chance: float) -> dict:
    """The cross-view PCK leader, named as best only when it stands out (``summary.layer_verdict``),
    beside the paper's harmonic-mean choice."""
    layers = result.plan.layers
    hm_layer, score, _ = best_layer(tables[BEST_LAYER_TYPE]["harmonic_mean"], layers)
    layer_pck = pooled_layer_pck(result.cells)
    candidate = pck_leader(layer_pck, layers)
    verdict = layer_verdict(layer_pck, layers, candidate, chance)
    best = {
        "layer": candidate if verdict["stands_out"] else None,
        "candidate": candidate,
        "verdict": f"layer {candidate} stands out" if verdict["stands_out"] else "no layer stands out",
        **verdict,
        "type": BEST_LAYER_TYPE,
        "criterion": f"highest cross-view PCK pooled over timesteps; named only if it is >= 2x chance and "
        f">= {Z_CHANCE:g} standard errors above it, and >= {Z_MARGIN:g} standard errors above every other layer's",
        "chance_pck": _num(chance),
        "cross_view_pck_by_layer": [{"layer": layer, "pck": _num(p), "se": _num(e)} for layer, (p, e) in zip(layers, layer_pck)],
        "harmonic_mean_layer": hm_layer,
        "harmonic_mean": _num(score),
        "per_type": per_type,
    }  # fmt: skip
    if candidate is not None:
        li = layers.index(candidate)
        row = tables[BEST_LAYER_TYPE]["pck"][li]
        best["best_timestep"] = timesteps[int(np.argmax(np.where(np.isfinite(row), row, -np.inf)))]
        with np.errstate(invalid="ignore"):
            best["pck"] = {n: _num(np.nanmean(tables[n]["pck"][li])) for n in CORRESPONDENCE_TYPES}
    return best


def _num(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None


def check_out_dir(out: str | Path, overwrite: bool) -> Path:
    """Refuse a missing parent or an existing folder (without ``overwrite``) before any work."""
    return check_output_path(out, overwrite=overwrite, is_dir=True)


def write_outputs(result: AnalysisResult, report: dict, out: str | Path, *, overwrite: bool = False) -> dict[str, str]:
    """Write the report and pictures into ``out`` atomically; returns {name: path}. Adds ``files`` to ``report``."""
    from mvt4g.analysis.plots import plot_layer_timestep, plot_query_attention

    out = check_out_dir(out, overwrite)
    plan = result.plan
    tables = metric_tables(result.cells)
    add_harmonic_means(tables)
    timesteps = report["timesteps"]
    names = {"report": REPORT_NAME, "heatmaps": "heatmaps.png", "scores": "scores.png"}
    vis_cell = _visual_cell(result, report)
    if vis_cell is not None:
        names["query_attention"] = "query_attention.png"
    report["files"] = {key: str(out / name) for key, name in names.items()}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        label = f"{plan.config.name}: {len(result.pairs)} pair(s)"
        plot_layer_timestep(tables, plan.layers, timesteps, ("pck", "harmonic_mean"), tmp / names["heatmaps"],
                            title=f"{label}: matching accuracy and harmonic mean")  # fmt: skip
        plot_layer_timestep(tables, plan.layers, timesteps, ("attention", "confidence"), tmp / names["scores"],
                            title=f"{label}: attention and confidence scores", curves=False)  # fmt: skip
        if vis_cell is not None:
            li, ti = vis_cell
            pair = result.visual_pair
            frame, xy = plan.visualize
            report["visualize"] = {"clip": pair.clip, "reference": pair.reference, "target": pair.target,
                                   "latent_frame": frame, "point_px": [round(xy[0], 3), round(xy[1], 3)],
                                   "layer": plan.layers[li], "timestep": timesteps[ti]}  # fmt: skip
            plot_query_attention(pair.frames_rgb, result.visual_maps[vis_cell], frame, xy, tmp / names["query_attention"],
                                 title=f"{pair.clip}: query in target {pair.target}, reference {pair.reference}; "
                                 f"layer {plan.layers[li]}, t = {timesteps[ti]:.0f}")  # fmt: skip
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return report["files"]


def _visual_cell(result: AnalysisResult, report: dict) -> tuple[int, int] | None:
    """The (layer, timestep) cell drawn for --visualize: the best layer at its best timestep."""
    if result.plan.visualize is None or result.visual_pair is None or not result.visual_maps:
        return None
    best = report["best_layer"]
    layers = result.plan.layers
    li = layers.index(best["candidate"]) if best.get("candidate") is not None else 0
    ti = report["timesteps"].index(best["best_timestep"]) if best.get("best_timestep") is not None else 0
    return li, ti
