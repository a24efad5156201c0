"""The demo report: ``OUT/report/report.md`` with its pictures, from the stage records.

Everything in it is read from what the stages wrote (records, videos, run metrics); nothing
is typed in. The folder is written as a whole and swapped in atomically.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

from mvt4g.demo import figures
from mvt4g.demo.settings import DemoSettings
from mvt4g.fs.atomic import atomic_dir

METRIC_COLUMNS = (
    ("psnr", "PSNR (dB) ↑"),
    ("ssim", "SSIM ↑"),
    ("psnr_covisible_static", "co-visible static PSNR ↑"),
    ("psnr_covisible_moving", "co-visible moving PSNR ↑"),
    ("temporal_flickering", "flicker ↑"),
)


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def write_report(result, settings: DemoSettings) -> Path:
    """Write ``OUT/report/`` (report.md + PNGs); returns the markdown's path."""
    target = settings.out / "report"
    if target.exists():
        shutil.rmtree(target)
    with atomic_dir(target) as tmp:
        text = _build(result, settings, Path(tmp))
        (Path(tmp) / "report.md").write_text(text)
    return target / "report.md"


def _build(result, s: DemoSettings, out: Path) -> str:
    rec = {name: r["summary"] for name, r in result.records.items()}
    secs = {name: r["seconds"] for name, r in result.records.items()}
    method = rec.get("finetune_method") or {}
    length = (f"{method.get('planned_steps', s.steps)} steps each, from a {s.budget_minutes:g}-minute budget (the step count "
              "depends on this machine's speed and load)" if s.budget_minutes is not None else f"{s.steps} steps each")
    lines = [
        "# mvt4g demo report",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} by `mvt4g demo` in `{s.out}`: {os.cpu_count()} CPU core(s), "
        f"{result.seconds:.0f} s this run"
        + (f" (reused from an earlier run: {', '.join(result.reused)})" if result.reused else "") + ".",
        "",
        f"The base model `{s.base}` (a camera-conditioned video DiT, diffusion only: the stand-in for the pretrained "
        f"ReCamMaster the paper starts from) fine-tuned twice on synthetic multi-view scenes, {length}, seed {s.seed}: "
        "with the tracking head and L_corr (MVTrack4Gen) and without them (baseline).",
        "",
    ]
    lines += results_table(rec.get("evaluate"))
    lines += _data_section(rec, secs, s, out)
    lines += _tracks_section(rec.get("tracks"), secs, out)
    lines += _features_section(rec.get("features"), secs)
    lines += _training_section(rec, secs, s, out)
    lines += _generate_section(rec.get("generate"), secs, s, out)
    lines += _evaluate_section(rec.get("evaluate"), secs, s, out)
    lines += _analysis_section(rec.get("analyze"), secs, out)
    lines += _caveats(s)
    return "\n".join(lines) + "\n"


def results_table(ev: dict | None) -> list[str]:
    """The headline: mean metrics per model and what beat what (the README shows this block)."""
    if not ev:
        return []
    rows = []
    for name, row in ev["sources"].items():
        mean = row["mean"]
        rows.append([name] + [_fmt(mean.get(k)) for k, _ in METRIC_COLUMNS])
    lines = [
        "## Results at a glance",
        "",
        f"Held-out synthetic scenes, reference view cam01; targets: every other view and cam01 moved along "
        f"arc-left and zoom-in, with their exact renders ({ev['items']} items; `mvt4g eval --bench synthetic`):",
        "",
        *_table(["", *(t for _, t in METRIC_COLUMNS)], rows),
        "",
        "What beat what (PSNR, paired over the items; a difference counts when it exceeds twice its standard error):",
        "",
    ]
    for c in ev.get("comparisons", []):
        if c["mean"] is None:
            lines.append(f"- {c['a']} vs {c['b']}: {c['verdict']}")
            continue
        flag = " **(loses to copying the reference)**" if c["b"] == "copy the reference" and c["verdict"] == "worse" else ""
        lines.append(f"- {c['a']} vs {c['b']}: {c['verdict']} ({c['mean']:+.2f} ± {c['se']:.2f} dB){flag}")
    return lines + [""]


def _data_section(rec, secs, s: DemoSettings, out: Path) -> list[str]:
    data = rec.get("data")
    if not data:
        return []
    heldout = Path(data["heldout"][0])
    views = sorted((heldout / "videos").glob("cam*.mp4"))
    figures.frame_grid({v.stem: figures.read_frames(v) for v in views}, out / "scenes.png",
                       title=f"held-out {heldout.name}: every view (cam01 is the reference)")  # fmt: skip
    return [
        "## 1. Data: `mvt4g synth`",
        "",
        f"{len(data['train'])} training and {len(data['heldout'])} held-out scenes (seeds {data['seeds']['train']} and "
        f"{data['seeds']['heldout']}) of {s.views} views x {s.frames} frames at {s.height}x{s.width}, with exact depth, "
        f"masks and multi-view tracks; {secs['data']:.1f} s.",
        "",
        "![scenes](scenes.png)",
        "",
    ]


def _tracks_section(tr: dict | None, secs, out: Path) -> list[str]:
    if not tr:
        return []
    overlay = figures.read_frames(tr["overlay"])
    if overlay is not None:  # views side by side -> one row per view
        views = tr["shape"]["views"]
        width = overlay.shape[2] // views
        rows = {f"cam{v + 1:02d}": overlay[:, :, v * width:(v + 1) * width] for v in range(views)}
        figures.frame_grid(rows, out / "tracks.png", title="flow tracks (trails of the last frames)", cell_px=200)
    rows = [[pair, _fmt(sc.get("delta_avg")), _fmt(sc.get("average_jaccard")), _fmt(sc.get("occlusion_accuracy")),
             sc.get("points", "–")] for pair, sc in tr["scores"].items()]  # fmt: skip
    shape = tr["shape"]
    return [
        "## 2. Multi-view point tracks: `mvt4g tracks --method flow`",
        "",
        f"Training uses the synth clips' exact tracks. For data with only videos and cameras, the weight-free flow "
        f"tracker makes pseudo-ground truth; here it runs on a {shape['views']}-view, {shape['frames']}-frame "
        f"{shape['height']}x{shape['width']} scene and is scored against the exact tracks on the same "
        f"{tr['queries']} queries (TAP-Vid metrics, 'first' mode; `mvt4g tracks score`). "
        f"{tr['frames_per_s']:.1f} frames/s.",
        "",
        *_table(["pairs", "δ_avg ↑", "AJ ↑", "OA ↑", "points"], rows),
        "",
        "![tracks](tracks.png)" if overlay is not None else "",
        "",
    ]


def _features_section(ft: dict | None, secs) -> list[str]:
    if not ft:
        return []
    return [
        "## 3. Plücker ray maps and latents: `mvt4g train prepare`",
        "",
        f"{ft['items']} cache entries for {ft['clips']} clips ({ft['computed']} computed, {ft['hits']} reused; "
        f"{ft['bytes'] / 2**20:.1f} MiB) in {secs['features']:.1f} s: every view's latents in both temporal "
        "directions and the Plücker maps of every view pair, so training never encodes.",
        "",
    ]


def _training_section(rec, secs, s: DemoSettings, out: Path) -> list[str]:
    from mvt4g.camera.plot import plot_trajectories
    from mvt4g.camera.trajectories import preset_trajectory
    from mvt4g.demo.stages import TRAJECTORIES
    from mvt4g.demo.training import loss_history

    runs = {"finetune_method": "mvtrack4gen", "finetune_baseline": "baseline"}
    rows, histories = [], {}
    for stage, name in runs.items():
        summary = rec.get(stage)
        if not summary:
            continue
        histories[name] = loss_history(Path(summary["run_dir"]))
        final = summary.get("final", {})
        step_s = summary.get("step_s")
        rows.append([name, summary["step"], _fmt(step_s, 2) if step_s else "–", _fmt(secs[stage], 0),
                     _fmt(final.get("diff")), _fmt(final.get("track")), _fmt(final.get("corr"))])  # fmt: skip
    if not rows:
        return []
    figures.loss_curves(histories, out / "training.png")
    plot_trajectories({name: preset_trajectory(name, frames=s.frames) for name in TRAJECTORIES}, out / "trajectories.png",
                      title="target trajectories (relative to the reference camera)")  # fmt: skip
    how = ("The step count came from the time budget (`--budget-minutes`): a 3-step calibration measured the step "
           "time, so another machine trains a different number of steps." if s.budget_minutes is not None else
           "Both runs train a fixed number of steps (`--steps`), so the numbers do not depend on the machine's speed "
           "or load.")  # fmt: skip
    return [
        "## 4. Fine-tuning: `mvt4g train`",
        "",
        f"From `{s.base}`, with the paper's scope (self-attention, camera modules, tracking head). {how} "
        "s/step is the calibration's (the first steps).",
        "",
        *_table(["run", "steps", "s/step", "seconds", "final L_diff", "final L_track", "final L_corr"], rows),
        "",
        "![training](training.png)",
        "",
    ]


def _generate_section(gen: dict | None, secs, s: DemoSettings, out: Path) -> list[str]:
    if not gen:
        return []
    lines = ["## 5. Novel views: `mvt4g generate`", "",
             f"{s.sample_steps} Euler steps. The trajectories start at the reference camera's first pose:", "",
             "![trajectories](trajectories.png)", ""]  # fmt: skip
    first = next(iter(gen.values()))
    groups: dict[tuple[str, str], dict] = {}
    for model, summary in gen.items():
        for item in summary["items"]:
            groups.setdefault((item["source"], item["trajectory"]), {})[model] = item
    for n, ((source, traj), by_model) in enumerate(groups.items()):
        some = next(iter(by_model.values()))
        rows = {"reference": figures.read_frames(some["reference"])}
        for model, item in by_model.items():
            rows[model] = figures.read_frames(item.get("video"))
        name = f"novel_{n}.png"
        figures.frame_grid(rows, out / name, title=f"{source}: {traj}")
        lines += [f"**{source}, {traj}**", "", f"![{source} {traj}]({name})", ""]
    tracked = [i for i in gen.get("mvtrack4gen", {}).get("items", []) if i.get("outputs", {}).get("overlay")]
    if tracked:
        overlay = figures.read_frames(tracked[0]["outputs"]["overlay"])
        if overlay is not None:
            figures.frame_grid({"tracking head": overlay}, out / "head_tracks.png", cell_px=256,
                               title=f"tracking-head tracks, {tracked[0]['source']} {tracked[0]['trajectory']}: reference | generated")  # fmt: skip
            lines += ["The fine-tuned model's tracking head also predicts where a 4x4 grid of reference points goes "
                      "in the generated view (`--query-points grid:4x4`):", "", "![head tracks](head_tracks.png)", ""]  # fmt: skip
    if any(source == "real" for source, _ in groups):
        lines += ["The real video lies far outside what a model trained for minutes on small synthetic scenes has "
                  "seen; it is here to show the path a real video takes (fitting, camera, generation), not quality.", ""]  # fmt: skip
    failed = [i for g in gen.values() for i in g["items"] if not i["ok"]]
    for item in failed:
        lines += [f"- failed: {item['source']} {item['trajectory']}: {item['error']}"]
    for note in first.get("notes", []):
        lines += [f"- {note}"]
    return lines + [""]


def _evaluate_section(ev: dict | None, secs, s: DemoSettings, out: Path) -> list[str]:
    if not ev:
        return []
    sources = ev["sources"]
    lines = ["## 6. Evaluation: `mvt4g eval --bench synthetic`", ""]
    per_item = {}
    for name, row in sources.items():
        for item in row["items"]:
            per_item.setdefault(item["item"], {})[name] = item.get("psnr")
    rows = [[item] + [_fmt(v.get(name), 2) for name in sources] for item, v in per_item.items()]
    lines += [f"PSNR (dB) per item, {secs['evaluate']:.0f} s:", "", *_table(["item", *sources], rows), ""]
    first = next(iter(per_item), None)
    if first is not None:
        scene, view = first.split("/")
        clip = s.out / "data" / "heldout" / scene
        videos = {"reference (cam01)": figures.read_frames(clip / "videos" / "cam01.mp4")}
        for name in sources:
            if name != "copy the reference":
                videos[name] = figures.read_frames(Path(ev["videos"]) / name / scene / f"{view}.mp4")
        videos[f"exact {view}"] = figures.read_frames(clip / "videos" / f"{view}.mp4")
        figures.frame_grid(videos, out / "samples.png", title=f"{first}: generated vs the exact target view")
        lines += ["![samples](samples.png)", ""]
    skipped = [f"{name}: {reason}" for name, row in sources.items() for reason in row["skipped"]]
    lines += [f"- not scored: {x}" for x in skipped]
    return lines + [""]


def _analysis_section(an: dict | None, secs, out: Path) -> list[str]:
    if not an:
        return []
    first = next(iter(an.values()))
    tap = first["tap_layer"]
    figures.layer_bars({name: a["cross_view_pck_by_layer"] for name, a in an.items()}, tap, out / "layers.png",
                       se_by_model={name: a["cross_view_se_by_layer"] for name, a in an.items()},
                       chance=first.get("chance_pck"))  # fmt: skip
    rows = []
    for name, a in an.items():
        i = a["layers"].index(tap) if tap in a["layers"] else None
        pck = None if i is None else a["cross_view_pck_by_layer"][i]
        se = None if i is None else a["cross_view_se_by_layer"][i]
        rows.append([name, f"{_fmt(pck, 4)} ± {_fmt(se, 4)}", a["verdict"]])
    lines = [
        "## 7. Attention correspondence: `mvt4g analyze`",
        "",
        f"Cross-view PCK of the attention rows of exact track points (cycle-consistent argmax matches within one "
        f"token), every layer at {len(first['timesteps'])} timesteps, on held-out scenes, ± its standard error over "
        f"query points; chance for this token grid: {_fmt(first.get('chance_pck'), 4)}. L_corr trains layer {tap}'s "
        "attention rows to point at the corresponding token, and the tracking head reads that layer's queries and keys. "
        "A layer is named only when it stands out (`mvt4g analyze --help`).",
        "",
        *_table(["model", f"cross-view PCK at layer {tap}", "verdict"], rows),
        "",
        "![layers](layers.png)",
        "",
    ]
    heatmap = an.get("mvtrack4gen", first).get("files", {}).get("heatmaps")
    if heatmap and Path(heatmap).is_file():
        shutil.copyfile(heatmap, out / "heatmaps.png")
        lines += ["Layer x timestep heatmaps of the MVTrack4Gen model:", "", "![heatmaps](heatmaps.png)", ""]
    return lines


def _caveats(s: DemoSettings) -> list[str]:
    return [
        "## Reading these numbers",
        "",
        f"- A CPU fine-tune of a small model at {s.height}x{s.width}: it shows every stage working on real data with "
        "real metrics, not the paper's results. One training seed and one sampling seed; the study over seeds is "
        "`benchmarks/ablation.py`. `--steps` trains longer, `--seed` repeats the run with other scenes.",
        "- 'copy the reference' scores the reference video itself against each target: a model has to beat it to "
        "show it moved the camera. Preset views start at the reference's pose, so they are scored from frame 1.",
        "- Co-visible PSNR scores only the pixels the reference also sees (exact depth and cameras), static "
        "background and moving objects apart. Flicker is VBench's temporal-flickering score (higher is steadier).",
        "- Full scale (Wan2.1-1.3B, several GPUs, real data): README, 'Real use'.",
        "",
    ]
