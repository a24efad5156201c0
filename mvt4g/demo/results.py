"""Model-side stages of the demo: generation, evaluation and attention analysis of each trained model.

The same core code as ``mvt4g generate``, ``mvt4g eval --bench synthetic`` and ``mvt4g analyze``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from mvt4g.demo.settings import DemoSettings
from mvt4g.demo.stages import Progress, no_progress
TRAJECTORIES = ("arc-left", "zoom-in")
REAL_TRAJECTORY = "arc-left"
#: Metric groups of the evaluation (weight-free, meaningful at the demo's size).
EVAL_GROUPS = ["psnr", "ssim", "temporal_flickering"]


def generate_videos(settings: DemoSettings, model_dir: Path, heldout: list[Path], out: Path, *, tracks: bool,
                    progress: Progress = no_progress) -> dict:  # fmt: skip
    """Held-out scenes' reference view (cam01, with its cameras) along arc-left and zoom-in, and
    the real video along arc-left. With ``tracks``, the tracking head's tracks of a 4x4 grid too."""
    from mvt4g.model.checkpoint import read_config
    from mvt4g.sample.batch import plan_jobs, run_jobs
    from mvt4g.sample.pipeline import GeneratePipeline
    from mvt4g.sample.reference import ReferenceOptions, plan_reference
    from mvt4g.sample.sampler import SamplingSettings
    from mvt4g.sample.targets import parse_trajectories

    config = read_config(model_dir)
    size = (settings.height, settings.width)
    sampling = SamplingSettings(steps=settings.sample_steps)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = GeneratePipeline(model_dir, device="cpu")
    batches = []  # (name, options, jobs): one output folder per reference (synth references are all cam01.mp4)
    for scene in heldout[:2]:
        options = ReferenceOptions(frames=settings.frames, height=size[0], width=size[1], frame_policy="trim",
                                   camera_file=f"{scene / 'cameras' / 'cameras.json'}:cam01")  # fmt: skip
        plan = plan_reference(scene / "videos" / "cam01.mp4", options)
        jobs = plan_jobs([plan], parse_trajectories(list(TRAJECTORIES)), out_dir=out / scene.name,
                         query_spec="grid:4x4" if tracks else None, size=size, token_stride=config.token_stride,
                         overwrite=True)  # fmt: skip
        batches.append((scene.name, options, jobs))
    notes = []
    if settings.real_video is not None:
        options = ReferenceOptions(frames=settings.frames, height=size[0], width=size[1], frame_policy="trim")
        plan = plan_reference(settings.real_video, options)
        jobs = plan_jobs([plan], parse_trajectories([REAL_TRAJECTORY]), out_dir=out / "real", size=size,
                         token_stride=config.token_stride, overwrite=True)  # fmt: skip
        batches.append(("real", options, jobs))
    else:
        notes.append("no real video (../shared/data/real/bear.mp4 not found; pass --real-video)")
    total = sum(len(j) for _, _, j in batches)
    items, done = [], 0
    for name, options, jobs in batches:
        outcomes = run_jobs(pipeline, jobs, options, settings=sampling, seed=settings.seed, overwrite=True,
                            extra_metadata={"generated_by": "mvt4g demo"})  # fmt: skip
        for outcome in outcomes:
            done += 1
            progress(done, total)
            row = {"source": name, "reference": str(outcome.job.reference.path), "trajectory": outcome.job.trajectory.name,
                   "ok": outcome.ok, "seconds": round(outcome.seconds, 2)}  # fmt: skip
            if outcome.ok:
                row["video"] = str(outcome.job.paths.video)
                row["outputs"] = outcome.job.paths.to_dict()
            else:
                row["error"] = outcome.error
            items.append(row)
    failed = [r for r in items if not r["ok"]]
    return {"model": str(model_dir), "items": items, "failed": len(failed), "steps": settings.sample_steps,
            "load_s": round(pipeline.load_seconds, 2), "notes": notes}  # fmt: skip


def _mean_metrics(results) -> dict[str, float]:
    names = sorted({k for r in results for k in r.metrics})
    out = {}
    for name in names:
        values = [r.metrics[name] for r in results if name in r.metrics and math.isfinite(r.metrics[name])]
        if values:
            out[name] = float(np.mean(values))
    return out


def evaluate(settings: DemoSettings, models: dict[str, Path], heldout_root: Path, out: Path,
             progress: Progress = no_progress) -> dict:  # fmt: skip
    """``mvt4g eval --bench synthetic`` on the held-out scenes (reference cam01, every other view
    a target with its exact render) for each model, and for copying the reference. The
    generated videos are kept in ``out/MODEL/SCENE/VIEW.mp4``."""
    from mvt4g.eval.bench import open_bench
    from mvt4g.eval.runner import CopySource, EvalSettings, ModelSource, run_eval

    size = (settings.height, settings.width)
    out.mkdir(parents=True, exist_ok=True)
    bench = open_bench("synthetic", heldout_root)
    keys = bench.keys()
    eval_settings = EvalSettings(groups=list(EVAL_GROUPS), frames=settings.frames, size=size)
    sources = {name: ModelSource(path, frames=settings.frames, size=size, steps=settings.sample_steps,
                                 seed=settings.seed, device="cpu", save_dir=out / name, overwrite=True)
               for name, path in models.items()}  # fmt: skip
    sources["copy the reference"] = CopySource(frames=settings.frames, size=size)
    total, done = len(keys) * len(sources), [0]

    def tick(label, outcome) -> None:
        done[0] += 1
        progress(done[0], total)

    rows = {}
    for name, source in sources.items():
        start = time.perf_counter()
        result = run_eval(bench, source, eval_settings, on_item=tick)
        per_item = [{"item": f"{r.sequence}/{r.trajectory}", **{k: float(v) for k, v in r.metrics.items()}}
                    for r in result.results]  # fmt: skip
        rows[name] = {
            "mean": _mean_metrics(result.results),
            "items": per_item,
            "scored": len(result.results),
            "skipped": [f"{s.sequence}/{s.trajectory}: {s.reason}" for s in result.skipped_videos],
            "seconds": round(time.perf_counter() - start, 2),
        }
    copy = rows["copy the reference"]["items"]
    for name in models:
        items = rows[name]["items"]
        rows[name]["wins_over_copy"] = sum(
            1 for a, b in zip(items, copy) if a["item"] == b["item"] and a.get("psnr", -1) > b.get("psnr", math.inf)
        )
    return {"bench": "synthetic", "items": len(keys), "groups": EVAL_GROUPS, "sources": rows, "videos": str(out)}


def analyze(settings: DemoSettings, model_dir: Path, heldout: list[Path], out: Path, progress: Progress = no_progress) -> dict:
    """``mvt4g analyze``: attention correspondence of every layer at 3 timesteps on held-out scenes."""
    from mvt4g.analysis.report import build_report, write_outputs
    from mvt4g.analysis.runner import AnalysisSettings, plan_analysis, run_analysis

    analysis = AnalysisSettings(layers="all", timesteps=3, pairs=1, queries=128, seed=settings.seed, device="cpu").validate()
    plan = plan_analysis(model_dir, list(heldout[:2]), analysis)
    out.parent.mkdir(parents=True, exist_ok=True)
    total, done = len(plan.pairs) * len(plan.sigmas), [0]

    def tick() -> None:
        done[0] += 1
        progress(done[0], total)

    result = run_analysis(plan, analysis, on_forward=tick)
    report = build_report(result, analysis)
    write_outputs(result, report, out, overwrite=True)
    best = report["best_layer"]
    tap = plan.config.tap_layer
    cross = report["metrics"]["cross_view"]
    return {
        "model": str(model_dir),
        "layers": plan.layers,
        "timesteps": report["timesteps"],
        "tap_layer": tap,
        "best_layer": best.get("layer"),
        "best_pck": best.get("pck"),
        "cross_view_pck_by_layer": _layer_means(cross.get("pck")),
        "files": report.get("files", {}),
        "seconds": report["timing"]["seconds"],
    }


def _layer_means(table) -> list[float | None]:
    """Mean over timesteps of a JSON layer x timestep table (None where nothing was scored)."""
    if not table:
        return []
    means = []
    for row in table:
        values = [v for v in row if isinstance(v, (int, float)) and math.isfinite(v)]
        means.append(float(np.mean(values)) if values else None)
    return means
