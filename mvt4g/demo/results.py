"""Model-side stages of the demo: generation, evaluation and attention analysis of each trained model.

The same core code as ``mvt4g generate``, ``mvt4g eval --bench synthetic`` and ``mvt4g analyze``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from mvt4g.demo.settings import DemoSettings
from mvt4g.demo.stages import TRAJECTORIES, Progress, no_progress

REAL_TRAJECTORY = "arc-left"
#: Metric groups of the evaluation (weight-free, meaningful at the demo's size).
EVAL_GROUPS = ["psnr", "ssim", "region_psnr", "temporal_flickering"]


def generate_videos(settings: DemoSettings, model_dir: Path, heldout: list[Path], out: Path, *, tracks: bool,
                    progress: Progress = no_progress) -> dict:  # fmt: skip
    """Held-out scenes' reference view (cam01, with its cameras) along arc-left and zoom-in, and
    the real video along arc-left. With ``tracks``, the tracking head's tracks of a 4x4 grid too."""
    from mvt4g.model.checkpoint import read_config
    from mvt4g.sample.batch import plan_jobs, run_jobs
    from mvt4g.sample.pipeline import GeneratePipeline
    from mvt4g.sample.reference import ReferenceOptions, plan_reference
    from mvt4g.sample.sampler import SamplingSettings
    from mvt4g.sample.targets import trajectory_targets

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
        jobs = plan_jobs([plan], trajectory_targets(list(TRAJECTORIES)), out_dir=out / scene.name,
                         query_spec="grid:4x4" if tracks else None, size=size, token_stride=config.token_stride,
                         overwrite=True)  # fmt: skip
        batches.append((scene.name, options, jobs))
    notes = []
    if settings.real_video is not None:
        options = ReferenceOptions(frames=settings.frames, height=size[0], width=size[1], frame_policy="trim")
        plan = plan_reference(settings.real_video, options)
        jobs = plan_jobs([plan], trajectory_targets([REAL_TRAJECTORY]), out_dir=out / "real", size=size,
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
            row = {"source": name, "reference": str(outcome.job.reference.path), "trajectory": outcome.job.target.name,
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
             progress: Progress = no_progress, *, groups: list[str] | None = None, copy: bool = True) -> dict:  # fmt: skip
    """``mvt4g eval --bench synthetic`` on the held-out scenes (reference cam01, every other view
    a target with its exact render) for each model, and (``copy``) for copying the reference. The
    generated videos are kept in ``out/MODEL/SCENE/VIEW.mp4``. ``groups``: the metric groups
    (default ``EVAL_GROUPS``; the ablation study adds ``camera``)."""
    from mvt4g.eval.bench import open_bench
    from mvt4g.eval.runner import CopySource, EvalSettings, ModelSource, run_eval

    size = (settings.height, settings.width)
    out.mkdir(parents=True, exist_ok=True)
    bench = open_bench("synthetic", heldout_root)
    keys = bench.keys()
    groups = list(EVAL_GROUPS if groups is None else groups)
    eval_settings = EvalSettings(groups=groups, frames=settings.frames, size=size)
    sources = {name: ModelSource(path, frames=settings.frames, size=size, steps=settings.sample_steps,
                                 seed=settings.seed, device="cpu", save_dir=out / name, overwrite=True)
               for name, path in models.items()}  # fmt: skip
    if copy:
        sources[COPY] = CopySource(frames=settings.frames, size=size)
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
    return {"bench": "synthetic", "items": len(keys), "groups": groups, "sources": rows, "videos": str(out),
            "comparisons": comparisons(rows, list(models))}  # fmt: skip


#: Standard errors a paired mean difference must exceed to count as a difference.
Z_DIFFERENCE = 2.0
COPY = "copy the reference"


def paired_difference(a: list[dict], b: list[dict], metric: str) -> dict:
    """Mean of ``a - b`` over the items both scored (finite values), its standard error and the verdict.

    Items share scenes and one sampling seed, so they are not independent draws: the verdict
    ("better", "worse" or "no difference" at ``Z_DIFFERENCE`` standard errors) is a screen, not
    a significance test.
    """
    b_by_item = {r["item"]: r.get(metric) for r in b}
    diffs = [r[metric] - b_by_item[r["item"]] for r in a
             if r.get(metric) is not None and b_by_item.get(r["item"]) is not None
             and math.isfinite(r[metric]) and math.isfinite(b_by_item[r["item"]])]  # fmt: skip
    n = len(diffs)
    if n < 2:
        return {"metric": metric, "n": n, "mean": None, "se": None, "verdict": "not enough items"}
    mean = float(np.mean(diffs))
    se = float(np.std(diffs, ddof=1) / math.sqrt(n))
    verdict = "better" if mean > Z_DIFFERENCE * se else "worse" if mean < -Z_DIFFERENCE * se else "no difference"
    return {"metric": metric, "n": n, "mean": mean, "se": se, "verdict": verdict}


def comparisons(rows: dict, models: list[str], metric: str = "psnr") -> list[dict]:
    """What beat what: every model against copying, the fine-tunes against each other and the base."""
    pairs = [(m, COPY) for m in models if COPY in rows]
    pairs += [(a, b) for a, b in (("mvtrack4gen", "baseline"), ("mvtrack4gen", "base"), ("baseline", "base"))
              if a in rows and b in rows]  # fmt: skip
    return [{"a": a, "b": b, **paired_difference(rows[a]["items"], rows[b]["items"], metric)} for a, b in pairs]


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
    by_layer = best["cross_view_pck_by_layer"]
    return {
        "model": str(model_dir),
        "layers": plan.layers,
        "timesteps": report["timesteps"],
        "tap_layer": plan.config.tap_layer,
        "best_layer": best.get("layer"),
        "candidate": best.get("candidate"),
        "verdict": best["verdict"],
        "reason": best["reason"],
        "chance_pck": best["chance_pck"],
        "cross_view_pck_by_layer": [r["pck"] for r in by_layer],
        "cross_view_se_by_layer": [r["se"] for r in by_layer],
        "files": report.get("files", {}),
        "seconds": report["timing"]["seconds"],
    }
