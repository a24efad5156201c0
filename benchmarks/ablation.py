"""The paper's Tables 3 and 4 at our scale: fine-tunes of the shipped base, several seeds, held-out scenes.

Every run fine-tunes ``--base`` (default: the shipped ``base``, ``mvt4g info --model base``) for
the same ``--steps`` with the demo's recipe (``mvt4g.demo.training.finetune_config``: the
paper's scope, self-attention + camera modules + tracking head, AdamW 2e-4, batch 4), one run
per (config, seed):

    Table 3   i_plucker   Plücker conditioning, L_diff only (same trainable scope)
              ii_corr     + L_corr on the tapped layer's attention rows
              iii_track   + the tracking head (L_track)
              iv_both     both (the method)
    Table 4   iv_layerL   iv_both with the tapped block L (``--layers``; the base's own tap
                          layer is the iv_both run itself, trained once)

Data (``mvt4g.demo.stages.make_data``): synthetic scenes of the shipped base's distribution,
4 views, at the base's video size unless ``--frames`` / ``--size``; training scenes with
``--train-seed``, held-out scenes with ``--heldout-seed``, which also carry cam01 moved along
arc-left and zoom-in (``SynthSettings.preset_views``) as exact targets.

Metrics of each run on the held-out scenes (reference cam01, every other view a target; the
same sampling seed, the train seed, for every run, so runs differ only by their weights):

* ``psnr``, ``ssim``, ``psnr_covisible_static``, ``psnr_covisible_moving``: ``mvt4g eval``'s
  groups psnr, ssim and region_psnr (``mvt4g.demo.results.evaluate``).
* ``rot_err``, ``trans_err``, ``cam_mc``: ``mvt4g eval``'s camera group, camctrl convention
  (sums over frames), over the items whose pose estimate converged; ``camera_converged`` counts
  them (at 32x32 it rarely converges).
* ``head_track_px`` (configs with a head): the tracking head's tracks at generation time,
  exactly as ``mvt4g generate --query-points`` makes them (last denoising step of the same
  generation the image metrics score), for up to ``HEAD_POINTS`` exact tracks visible in the
  reference's frame 0; the error is the mean distance (px, clip size) to the exact track in the
  target view over the frames where it is visible (from the item's first scored frame). The
  anchor ``query_px`` is the same error for a track that stays at its query point.
* ``tap_pck``: cross-view PCK of the run's tapped layer (``mvt4g analyze``, pooled over 3
  timesteps; ``mvt4g.demo.results.analyze``) and the chance level of the token grid. The
  analysis runs at the model's own video size: a fine-tune's is its training size, the base's
  its own (they differ only when ``--frames`` / ``--size`` differ from the base's).

Per config: mean ± standard deviation over seeds. Against (i), per metric: the per-seed paired
differences (same seed = same batches and initialisation of the new modules); "no difference"
when |mean| < 2 standard errors of those differences (``mvt4g.demo.results.paired_difference``,
seeds as its items), else better or worse in the metric's direction; n/a where (i) has no value
(it has no head). A screen over few seeds, not a significance test. Anchors: the base without
fine-tuning and copying the reference.

Resumable: data, features, each run's training (its run directory resumes from checkpoints)
and each run's evaluation (``seedN.eval.json`` beside it) are reused while their settings match;
a run whose settings changed (``--steps``, ``--base``, the data) is trained again from the base.
Outputs in ``--out``: ``results.json``, ``report.md``, ``ablation.png``.

    python benchmarks/ablation.py --out /tmp/study                     # defaults: 100 steps, seeds 0 1 2
    python benchmarks/ablation.py --out /tmp/study --configs i_plucker iv_both --layers --seeds 0
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mvt4g.demo import results, stages, training  # noqa: E402
from mvt4g.demo.settings import DemoSettings, stage_key  # noqa: E402
from mvt4g.fs.atomic import write_json_atomic, write_text_atomic  # noqa: E402
from mvt4g.fs.jsonio import read_json  # noqa: E402

#: Table 3 rows: (tracking head, L_corr).
CONFIGS = {"i_plucker": (False, False), "ii_corr": (False, True), "iii_track": (True, False), "iv_both": (True, True)}
REFERENCE = "i_plucker"
EVAL_GROUPS = ["psnr", "ssim", "region_psnr", "camera"]
HEAD_POINTS = 32
#: (key, label, +1 higher is better / -1 lower is better).
METRICS = [("psnr", "PSNR", 1), ("ssim", "SSIM", 1), ("psnr_covisible_static", "PSNR cov. static", 1),
           ("psnr_covisible_moving", "PSNR cov. moving", 1), ("head_track_px", "head track err px", -1),
           ("rot_err", "RotErr rad", -1), ("trans_err", "TransErr", -1), ("cam_mc", "CamMC", -1),
           ("tap_pck", "tapped-layer PCK", 1)]  # fmt: skip
#: Paired mean differences at most this large are float rounding, whatever their standard error.
NUMERICAL_NOISE = 1e-9
VERSION = 1  # bump when what a run's evaluation measures changes: cached eval.json files are redone


@dataclass(frozen=True)
class Row:
    """One row of the tables: a fine-tuning config (the run it needs is ``run_id``)."""

    name: str
    table: int
    head: bool
    corr: bool
    tap_layer: int

    @property
    def run_id(self) -> str:
        return f"{'head' if self.head else 'nohead'}-{'corr' if self.corr else 'nocorr'}-layer{self.tap_layer}"


def plan_rows(configs: list[str], layers: list[int], tap: int, num_layers: int) -> list[Row]:
    """Table 3 rows, then Table 4's iv_both per tapped layer (the base's tap is iv_both's run)."""
    bad = [layer for layer in layers if not 0 <= layer < num_layers]
    if bad:
        raise SystemExit(f"--layers: the base has blocks 0..{num_layers - 1}, got {bad}")
    rows = [Row(name, 3, *CONFIGS[name], tap) for name in configs]
    rows += [Row(f"iv_layer{layer}", 4, True, True, layer) for layer in layers]
    return rows


# ----------------------------------------------------------------------------- cached stages


def cached(path: Path, key: str, work) -> tuple[dict, bool]:
    """``work()``'s result stored at ``path`` with the ``key`` it was computed for; reused while
    the key matches (an interrupted study redoes only what did not finish)."""
    if path.is_file():
        record = read_json(path, what="stage record")
        if record.get("key") == key:
            return record["result"], True
    result = work()
    write_json_atomic(path, {"key": key, "result": result})
    return result, False


def prepare_data(s: DemoSettings, args, out: Path) -> tuple[dict, str, bool]:
    """Training and held-out scenes plus the feature cache; returns the data record and its key."""
    values = {"views": s.views, "frames": s.frames, "size": [s.height, s.width], "train": s.train_scenes,
              "heldout": s.heldout_scenes, "seeds": [args.train_seed, args.heldout_seed],
              "scenes": stages.SCENE_DISTRIBUTION, "trajectories": stages.TRAJECTORIES}  # fmt: skip
    key = stage_key("study-data", values, [])

    def make() -> dict:
        shutil.rmtree(out / "data", ignore_errors=True)  # scenes of other settings: the features go with them
        data = stages.make_data(s, out / "data", heldout_seed=args.heldout_seed)
        cfg = training.finetune_config([Path(p) for p in data["train"]], out / "runs" / "features", s.base_dir,
                                       method=True, frames=s.frames, height=s.height, width=s.width, seed=0,
                                       threads=s.torch_threads)  # fmt: skip
        data["features"] = stages.make_features(cfg)
        return data

    data, reused = cached(out / "data.json", key, make)
    log(f"data: {len(data['train'])} training + {len(data['heldout'])} held-out scenes{' (reused)' if reused else ''}")
    return data, key, reused


def train_run(s: DemoSettings, row: Row, seed: int, data: dict, data_key: str, out: Path) -> tuple[dict, str, bool]:
    """Fine-tune the base for ``s.steps`` steps as ``row`` says (resuming its run directory)."""
    from mvt4g.demo.runner import _claim, model_fingerprint

    run_dir = out / "runs" / row.run_id / f"seed{seed}"
    # "layer": the name finished runs' stage keys were stored under (a new name would redo them).
    values = {"base": model_fingerprint(s.base_dir), "steps": s.steps, "head": row.head, "corr": row.corr,
              "layer": row.tap_layer, "seed": seed}  # fmt: skip
    key = stage_key("study-train", values, [data_key])

    def work() -> dict:
        _claim(run_dir, key, resumable=True)  # same key: resume the checkpoints; another: start over
        cfg = training.finetune_config([Path(p) for p in data["train"]], run_dir, s.base_dir, method=True,
                                       frames=s.frames, height=s.height, width=s.width, seed=seed,
                                       threads=s.torch_threads)  # fmt: skip
        # The demo's recipe with this row's losses and tap: everything else is the same in every run.
        cfg.model.tracking_head, cfg.loss.corr, cfg.model.tap_layer = row.head, row.corr, row.tap_layer
        start = time.perf_counter()
        on_progress = progress(f"{row.run_id} seed {seed}")
        summary = training.calibrated_run(cfg.validate(), steps=s.steps, on_progress=on_progress)
        return {"steps": summary["step"], "samples": summary["samples"], "batch_size": cfg.train.batch_size,
                "seconds": round(time.perf_counter() - start, 1), "final": summary["final"],
                "model": str(run_dir / "model")}  # fmt: skip

    record, reused = cached(run_dir.with_name(run_dir.name + ".train.json"), key, work)
    return record, key, reused


def log(*args, **kwargs) -> None:
    """Progress goes to stderr: stdout carries the tables (or the JSON with ``--json``)."""
    print(*args, file=sys.stderr, flush=True, **kwargs)


def progress(label: str):
    def show(done: int, total: int) -> None:
        log(f"\r  {label}: step {done}/{total}", end="\n" if done >= total else "")

    return show


# ----------------------------------------------------------------------------- evaluation


def track_errors(s: DemoSettings, heldout_root: Path, model_dir: Path | None) -> list[dict]:
    """Per held-out item: the head's track error (px) against the exact tracks (see the module
    docstring); ``model_dir=None`` scores tracks that stay at their query point instead."""
    from mvt4g.eval.bench import open_bench
    from mvt4g.sample.pipeline import GeneratePipeline
    from mvt4g.sample.reference import PreparedReference
    from mvt4g.sample.sampler import SamplingSettings
    from mvt4g.tracks.format import read_tracks

    bench = open_bench("synthetic", heldout_root)
    pipe = None if model_dir is None else GeneratePipeline(model_dir, device="cpu")
    rows, rng = [], np.random.default_rng(0)  # the same queries for every model
    for sequence in bench.sequences():
        clip = bench.clips[sequence]
        exact = read_tracks(clip.tracks_path)
        names = list(exact.views or clip.views)  # preset views may be listed in another order than the clip's
        for item in bench.load(sequence, s.frames):
            T = item.reference.shape[0]
            ref_tracks = exact.tracks[names.index(bench.references[sequence]), :T]
            ref_visible = exact.visible[names.index(bench.references[sequence]), :T]
            candidates = np.flatnonzero(ref_visible[0])
            pick = np.sort(rng.choice(candidates, min(HEAD_POINTS, len(candidates)), replace=False))
            queries = np.concatenate([np.zeros((len(pick), 2)), ref_tracks[0, pick]], axis=1)
            if pipe is None:
                predicted = np.broadcast_to(ref_tracks[0, pick], (T, len(pick), 2))
            else:
                # As ModelSource builds it in results.evaluate: the same video as the image metrics score.
                reference = PreparedReference(path=Path(sequence), frames=np.ascontiguousarray(item.reference),
                                              fps=item.fps, cameras=item.reference_cameras_or_static(), report={})  # fmt: skip
                sampling = SamplingSettings(steps=s.sample_steps)
                result = pipe.generate(reference, item.target_cameras, settings=sampling, seed=s.seed, queries=queries)
                predicted = result.tracks.tracks[1]  # view 1: the generated one
            t = names.index(item.trajectory)
            truth, visible = exact.tracks[t, :T][:, pick], exact.visible[t, :T][:, pick].copy()
            visible[: item.first_scored_frame] = False  # a preset view's frame 0 is the reference's own
            dist = np.linalg.norm(np.asarray(predicted, np.float64) - truth, axis=-1)[visible]
            rows.append({"item": f"{sequence}/{item.trajectory}", "px": float(dist.mean()) if dist.size else None,
                         "points": int(dist.size)})  # fmt: skip
    return rows


def evaluate_model(s: DemoSettings, model_dir: Path, heldout: list[Path], out: Path, *, head: bool) -> dict:
    """Every metric of one model on the held-out scenes: per-item rows and the run's means."""
    start = time.perf_counter()
    heldout_root = heldout[0].parent
    ev = results.evaluate(s, {"model": model_dir}, heldout_root, out / "videos", groups=EVAL_GROUPS, copy=False)
    source = ev["sources"]["model"]
    analysis = results.analyze(s, model_dir, heldout, out / "analysis")
    tracks = track_errors(s, heldout_root, model_dir) if head else []
    means = dict(source["mean"])
    means["camera_converged"] = sum(1 for r in source["items"] if math.isfinite(r.get("rot_err", math.nan)))
    means["items"] = source["scored"]
    means["tap_pck"] = analysis["cross_view_pck_by_layer"][analysis["tap_layer"]]
    if tracks:
        means["head_track_px"] = finite_mean([r["px"] for r in tracks])
    return {"means": means, "items": source["items"], "head_tracks": tracks, "skipped": source["skipped"],
            "analysis": {k: analysis[k] for k in ("tap_layer", "chance_pck", "cross_view_pck_by_layer", "verdict")},
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def evaluate_anchors(s: DemoSettings, data: dict, data_key: str, out: Path) -> dict:
    """The base without fine-tuning, and copying the reference (its head-track analogue: a
    track that stays at its query point): what every fine-tune is read against."""
    heldout = [Path(p) for p in data["heldout"]]
    from mvt4g.demo.runner import model_fingerprint

    key = stage_key("study-anchors", {"base": model_fingerprint(s.base_dir), "sample_steps": s.sample_steps,
                                      "version": VERSION}, [data_key])  # fmt: skip

    def work() -> dict:
        base = evaluate_model(s, s.base_dir, heldout, out / "anchors" / "base", head=False)
        copy = results.evaluate(s, {}, heldout[0].parent, out / "anchors" / "copy", groups=EVAL_GROUPS)
        rows = copy["sources"][results.COPY]
        means = dict(rows["mean"], query_px=finite_mean([r["px"] for r in track_errors(s, heldout[0].parent, None)]))
        means["camera_converged"] = sum(1 for r in rows["items"] if math.isfinite(r.get("rot_err", math.nan)))
        return {"base": base, "copy": {"means": means, "items": rows["items"]}}

    anchors, reused = cached(out / "anchors.json", key, work)
    log(f"anchors: base and copying the reference{' (reused)' if reused else ''}")
    return anchors, reused


def finite_mean(values) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


# ----------------------------------------------------------------------------- summary


def summarise(rows: list[Row], seeds: list[int], runs: dict) -> list[dict]:
    """Per row: mean ± std over seeds of every metric, compute, and the paired differences with (i)."""
    table = []
    by_name = {r.name: r for r in rows}
    for row in rows:
        done = {seed: runs[(row.name, seed)] for seed in seeds if (row.name, seed) in runs}
        entry = {"config": row.name, "table": row.table, "head": row.head, "corr": row.corr, "layer": row.tap_layer,
                 "run_id": row.run_id, "seeds": sorted(done), "metrics": {}, "vs_i": {}}  # fmt: skip
        for key, _, _ in METRICS + [("camera_converged", "", 1)]:
            values = [done[seed]["eval"]["means"].get(key) for seed in done]
            entry["metrics"][key] = spread(values)
        entry["compute"] = compute_of([done[seed] for seed in done])
        if REFERENCE in by_name and row.name != REFERENCE:
            entry["vs_i"] = {key: versus(done, runs, REFERENCE, seeds, key, sign) for key, _, sign in METRICS}
        table.append(entry)
    return table


def spread(values: list) -> dict:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None, "n": 0, "per_seed": values}
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "sd": sd, "n": len(finite), "per_seed": values}


def versus(done: dict, runs: dict, reference: str, seeds: list[int], key: str, sign: int) -> dict:
    """Paired over seeds: this config minus the reference config (``results.paired_difference``,
    whose seeds play its items), the verdict turned to the metric's direction."""
    a = [{"item": f"seed{s}", key: done[s]["eval"]["means"].get(key)} for s in done]
    b = [{"item": f"seed{s}", key: runs[(reference, s)]["eval"]["means"].get(key)} for s in seeds
         if (reference, s) in runs]  # fmt: skip
    if all(r[key] is None for r in b):
        return {"metric": key, "n": 0, "mean": None, "se": None, "verdict": f"n/a (none for {reference})"}
    d = results.paired_difference(a, b, key)
    if d["mean"] is not None and abs(d["mean"]) <= NUMERICAL_NOISE:
        d["verdict"] = "no difference"  # equal runs: a 1e-15 mean over a 1e-16 error is no finding
    if sign < 0 and d["verdict"] in ("better", "worse"):
        d["verdict"] = "worse" if d["verdict"] == "better" else "better"  # a larger error is worse
    if d["verdict"] == "not enough items":
        d["verdict"] = "not enough seeds"
    return d


def compute_of(runs: list[dict]) -> dict:
    """Steps and samples per run (equal by design) and seconds (informational: they follow the load)."""
    if not runs:
        return {}
    train = [r["train"] for r in runs]
    return {"steps": train[0]["steps"], "samples": train[0]["samples"], "runs": len(runs),
            "train_s_per_run": round(float(np.mean([t["seconds"] for t in train])), 1),
            "eval_s_per_run": round(float(np.mean([r["eval"]["seconds"] for r in runs])), 1)}  # fmt: skip


# ----------------------------------------------------------------------------- output


def cell(stat: dict, digits: int) -> str:
    if stat["mean"] is None:
        return "-"
    sd = "" if stat["sd"] is None else f" ± {stat['sd']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}{sd}"


def digits_of(key: str) -> int:
    return 3 if key in ("ssim", "tap_pck", "rot_err", "cam_mc", "trans_err") else 2


def table_lines(table: list[dict], anchors: dict) -> list[str]:
    """The results as a Markdown table: one row per config, then the anchors."""
    head = ["config", "table", "layer", "seeds"] + [label for _, label, _ in METRICS] + ["cam. converged"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [e["config"], str(e["table"]), str(e["layer"]), str(len(e["seeds"]))]
        cells += [cell(e["metrics"][k], digits_of(k)) for k, _, _ in METRICS]
        conv = e["metrics"]["camera_converged"]
        cells.append("-" if conv["mean"] is None else f"{conv['mean']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    for name, a in (("base (no fine-tuning)", anchors["base"]["means"]), (results.COPY, anchors["copy"]["means"])):
        values = {**a, "head_track_px": a.get("query_px")}
        cells = [name, "", "", ""] + [fmt(values.get(k), digits_of(k)) for k, _, _ in METRICS]
        lines.append("| " + " | ".join(cells + [fmt(a.get("camera_converged"), 0)]) + " |")
    return lines


def fmt(value, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def versus_lines(table: list[dict]) -> list[str]:
    """Each config minus (i), paired over seeds: mean ± standard error and the verdict."""
    rows = [e for e in table if e["vs_i"]]
    if not rows:
        return [f"(no comparison: {REFERENCE} is not among the configs, or it is the only one)"]
    head = ["config"] + [label for _, label, _ in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in rows:
        cells = [e["config"]]
        for key, _, _ in METRICS:
            d = e["vs_i"][key]
            if d["mean"] is None:
                cells.append(d["verdict"])
            else:
                cells.append(f"{signed(d['mean'], key)} ± {signed(d['se'], key)[1:]} ({d['verdict']})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def signed(value: float, key: str) -> str:
    """A difference with the metric's digits, or in scientific notation when it rounds to 0
    (a consistent but tiny difference must not read as "+0.00 (worse)")."""
    digits = digits_of(key)
    return f"{value:+.{digits}f}" if value == 0 or abs(value) >= 10**-digits else f"{value:+.1e}"


def compute_lines(table: list[dict]) -> list[str]:
    lines = ["| config | runs | steps | samples | train s / run | eval s / run |", "|---|---|---|---|---|---|"]
    for e in table:
        c = e["compute"]
        if c:
            lines.append(f"| {e['config']} | {c['runs']} | {c['steps']} | {c['samples']} | {c['train_s_per_run']} | "
                         f"{c['eval_s_per_run']} |")  # fmt: skip
    return lines


FIGURE_METRICS = ["psnr", "psnr_covisible_static", "psnr_covisible_moving", "head_track_px", "tap_pck", "rot_err"]


def figure(table: list[dict], anchors: dict, chance: float | None, path: Path) -> Path:
    """Each config's mean with ± 1 standard deviation over seeds as error bars; the anchors
    (base, copying the reference) and the PCK's chance level as lines."""
    from matplotlib.figure import Figure

    from mvt4g.demo.figures import _save

    labels = dict((k, label) for k, label, _ in METRICS)
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3).ravel()
    names = [e["config"] for e in table]
    for ax, key in zip(axes, FIGURE_METRICS):
        means = [np.nan if e["metrics"][key]["mean"] is None else e["metrics"][key]["mean"] for e in table]
        sds = [0.0 if e["metrics"][key]["sd"] is None else e["metrics"][key]["sd"] for e in table]
        # Points, not bars from 0: differences of a tenth of a dB must stay visible.
        for i, e in enumerate(table):
            ax.errorbar(i, means[i], yerr=sds[i], fmt="o", capsize=4, color="C0" if e["table"] == 3 else "C1")
        anchor_key = "query_px" if key == "head_track_px" else key
        for name, style in (("base", "--"), ("copy", ":")):
            value = anchors[name]["means"].get(anchor_key)
            if value is not None and math.isfinite(value):
                ax.axhline(value, color="black", lw=0.8, ls=style, label="base" if name == "base" else "copy / query point")
        if key == "tap_pck" and chance is not None:
            ax.axhline(chance, color="grey", lw=0.8, ls="-.", label="chance")
        if all(np.isnan(means)):
            ax.text(0.5, 0.5, "no value (no head, or no pose converged)", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)  # fmt: skip
        ax.set_title(labels[key], fontsize=9)
        ax.set_xticks(np.arange(len(names)), names, rotation=30, fontsize=7, ha="right")
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.suptitle("Ablation: mean ± std over seeds (blue: Table 3 rows, orange: Table 4 tapped layers)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def write_report(out: Path, summary: dict) -> Path:
    """``report.md``: settings, the table, the differences with (i), compute, and what each number is."""
    s = summary["settings"]
    by_layer = summary["anchors"]["base"]["analysis"]["cross_view_pck_by_layer"]
    base_pck = ", ".join(f"{i}: {fmt(v, 3)}" for i, v in enumerate(by_layer))
    text = [
        "# Ablation: Tables 3 and 4 at our scale", "",
        f"Base `{s['base']}` fine-tuned {s['steps']} steps per run (batch {summary['batch_size']}), seeds "
        f"{', '.join(map(str, s['seeds']))}; {s['train_scenes']} training scenes (seed {s['train_seed']}), "
        f"{s['heldout_scenes']} held-out scenes (seed {s['heldout_seed']}), {s['views']} views + "
        f"{len(stages.TRAJECTORIES)} preset trajectories, {s['frames']} frames at {s['height']}x{s['width']}; "
        f"{s['sample_steps']} sampling steps.", "",
        "## Results (mean ± standard deviation over seeds)", "", *table_lines(summary["table"], summary["anchors"]), "",
        "Head track err px: the anchor rows give a track that stays at its query point. Camera errors "
        "(camctrl: sums over frames) are means over the items whose pose estimate converged; "
        "'cam. converged' is their mean count per run, out of "
        f"{summary['items_per_run']} items. Chance PCK of the token grid: {fmt(summary['chance_pck'], 4)}; "
        f"the base's cross-view PCK by layer: {base_pck}.", "",
        "![ablation](ablation.png)", "",
        f"## Each config minus ({REFERENCE}), paired over seeds", "", *versus_lines(summary["table"]), "",
        "Mean ± standard error of the per-seed differences. 'no difference': |mean| < 2 standard errors "
        "(the seeds' spread); 'better' / 'worse' in the metric's direction. With 3 seeds this is a "
        "screen, not a significance test.", "",
        "## Compute", "", *compute_lines(summary["table"]), "",
        "Steps and samples are equal by design; seconds follow the machine's load (a resumed run counts "
        "only the part trained after resuming) and are informational.", "",
    ]  # fmt: skip
    path = out / "report.md"
    write_text_atomic(path, "\n".join(text))
    return path


def print_summary(summary: dict) -> None:
    print()
    print("\n".join(table_lines(summary["table"], summary["anchors"])))
    print(f"\nEach config minus {REFERENCE} (paired over seeds; 'no difference' = within 2 standard errors):")
    print("\n".join(versus_lines(summary["table"])))
    print("\nCompute:")
    print("\n".join(compute_lines(summary["table"])))
    print(f"\nreport: {summary['report']}")


# ----------------------------------------------------------------------------- main


def evaluate_run(s: DemoSettings, row: Row, seed: int, train: dict, train_key: str, data: dict,
                 out: Path) -> tuple[dict, bool]:  # fmt: skip
    """The run's evaluation, cached beside its run directory (``.eval.json``)."""
    run_dir = out / "runs" / row.run_id / f"seed{seed}"
    values = {"sample_steps": s.sample_steps, "groups": EVAL_GROUPS, "points": HEAD_POINTS, "version": VERSION}
    key = stage_key("study-eval", values, [train_key])
    heldout = [Path(p) for p in data["heldout"]]
    folder = run_dir.with_name(f"seed{seed}.eval")  # videos and analysis files
    return cached(folder.with_suffix(".eval.json"), key,
                  lambda: evaluate_model(s, Path(train["model"]), heldout, folder, head=row.head))  # fmt: skip


def run_study(s: DemoSettings, args, rows: list[Row]) -> dict:
    """Data, every (row, seed) run's training and evaluation, the anchors, and the summary."""
    out = args.out
    data, data_key, data_reused = prepare_data(s, args, out)
    runs, reused = {}, {"data": data_reused, "train": [], "eval": []}  # what came from an earlier run (cached)
    for row in rows:
        for seed in args.seeds:
            log(f"{row.name} (run {row.run_id}) seed {seed}: {s.steps} steps of training, then evaluation")
            train, train_key, was_trained = train_run(s, row, seed, data, data_key, out)
            evaluation, was_evaluated = evaluate_run(s, row, seed, train, train_key, data, out)
            runs[(row.name, seed)] = {"train": train, "eval": evaluation}
            reused["train"] += [f"{row.name}/seed{seed}"] if was_trained else []
            reused["eval"] += [f"{row.name}/seed{seed}"] if was_evaluated else []
    anchors, reused["anchors"] = evaluate_anchors(s, data, data_key, out)
    table = summarise(rows, args.seeds, runs)
    first = {**next(iter(runs.values()))["eval"], "batch_size": next(iter(runs.values()))["train"]["batch_size"]}
    settings = {**s.to_dict(), "seeds": args.seeds, "train_seed": args.train_seed, "heldout_seed": args.heldout_seed,
                "base": str(s.base_dir), "configs": args.configs, "layers": args.layers}  # fmt: skip
    return {"settings": settings, "batch_size": first["batch_size"], "table": table, "anchors": anchors, "reused": reused,
            "items_per_run": first["means"]["items"], "chance_pck": first["analysis"]["chance_pck"],
            "runs": {f"{name}/seed{seed}": r for (name, seed), r in runs.items()}}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="study folder (data, runs, results); reused when it exists")
    p.add_argument("--base", default="base", help="model every run fine-tunes: a shipped name or a model folder")
    p.add_argument("--steps", type=int, default=100, help="fine-tuning steps of every run (equal for all configs)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds; one run per config and seed")
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS), help="Table 3 rows")
    p.add_argument("--layers", type=int, nargs="*", default=[1, 3, 5],
                   help="Table 4: tapped blocks for iv_both (none: skip Table 4)")
    p.add_argument("--train-scenes", type=int, default=24)
    p.add_argument("--heldout-scenes", type=int, default=3)
    p.add_argument("--train-seed", type=int, default=0, help="seed of the training scenes (and of sampling)")
    p.add_argument("--heldout-seed", type=int, default=stages.HELDOUT_SEED_OFFSET, help="seed of the held-out scenes")
    p.add_argument("--sample-steps", type=int, default=8)
    p.add_argument("--frames", type=int, default=None, help="clip frames (default: the base's)")
    p.add_argument("--size", default=None, help="HxW (default: the base's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: half the cores)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    args = p.parse_args(argv)
    if not args.configs and not args.layers:
        p.error("nothing to run: give --configs or --layers")
    if args.train_seed == args.heldout_seed:
        p.error("--train-seed and --heldout-seed must differ (held-out scenes would be training scenes)")
    return args


def settings_of(args) -> DemoSettings:
    height, width = (None, None) if args.size is None else map(int, args.size.lower().split("x"))
    return DemoSettings(out=args.out, base=args.base, steps=args.steps, frames=args.frames, height=height, width=width,
                        train_scenes=args.train_scenes, heldout_scenes=args.heldout_scenes, seed=args.train_seed,
                        sample_steps=args.sample_steps, real_video=None, threads=args.threads).validate()  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from mvt4g.errors import InputError

    try:
        return _main(argv)
    except InputError as exc:  # bad input: one line and exit 2, as the CLI does
        print(f"ablation.py: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    from mvt4g.fs.atomic import check_output_location
    from mvt4g.fs.lock import directory_lock
    from mvt4g.model.checkpoint import read_config
    from mvt4g.synth.pipeline import torch_threads

    args = parse_args(argv)
    s = settings_of(args)
    check_output_location(args.out)  # before any work: an unwritable --out is refused now
    config = read_config(s.base_dir)
    rows = plan_rows(args.configs, args.layers, config.tap_layer, config.backbone.num_layers)
    unique = sorted({r.run_id for r in rows})
    log(f"study: {len(rows)} table rows, {len(unique)} distinct fine-tunes x {len(args.seeds)} seeds = "
        f"{len(unique) * len(args.seeds)} runs of {s.steps} steps from {s.base_dir}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with directory_lock(args.out, "study folder"), torch_threads(s.torch_threads):
        summary = run_study(s, args, rows)
        summary["seconds"] = round(time.perf_counter() - start, 1)
        summary["figure"] = str(figure(summary["table"], summary["anchors"], summary["chance_pck"], args.out / "ablation.png"))
        summary["report"] = str(write_report(args.out, summary))
        write_json_atomic(args.out / "results.json", summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
