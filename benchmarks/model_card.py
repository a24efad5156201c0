"""Ship a trained model: fp16 weights, SHA-256, held-out metrics against copying, pictures, a model card.

    python benchmarks/model_card.py --run runs/base --name base --heldout data/heldout \
        --out mvt4g/model/shipped/base --recipe base

Steps:
  1. the run's latest weights (RUN/model) are stored in float16 in OUT (config.json +
     model.safetensors) and hashed; the hash goes into OUT/card.json, which loading checks;
  2. the stored weights (loaded back to float32, exactly what users get) generate every
     held-out item of ``mvt4g eval --bench synthetic`` (the clip's other views and the
     `--preset-views` renders) for each noise seed, with ``--steps`` Euler steps; "copy the
     reference" is scored by the same code;
  3. PSNR, SSIM and the region PSNRs (moving objects; covisible static / moving) per trajectory
     family (arc, translate, zoom, other views), mean and spread over scenes and seeds;
  4. OUT/MODEL_CARD.md with the recipe, data seeds, steps, wall time, hardware, loss curve
     (loss.png) and generated frames beside the exact targets (samples.png).

Prints the table on stdout (``--json`` for the whole card).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

FAMILIES = ("arc", "translate", "zoom", "other views")
METRICS = ("psnr", "ssim", "psnr_moving", "psnr_covisible_static", "psnr_covisible_moving")


def family(trajectory: str) -> str:
    head = trajectory.split("-")[0]
    return head if head in FAMILIES else "other views"


def store_fp16(run: Path, out: Path) -> str:
    """Write RUN's model to OUT in float16; returns the weights' SHA-256."""
    import torch

    from mvt4g.model.checkpoint import from_pretrained, save_pretrained
    from mvt4g.model.lookup import resolve_model_dir, sha256_file

    model = from_pretrained(resolve_model_dir(run), dtype=torch.float16)
    tmp = out.with_name(out.name + ".weights-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_pretrained(model, tmp, metadata={"storage": "float16"})
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp)
    return sha256_file(out / "model.safetensors")


def evaluate(model: Path | None, heldout: Path, seeds: list[int], steps: int, keep: set[tuple[str, str]]):
    """Per-video metrics [(seed, sequence, trajectory, metrics)] and kept generated videos."""
    from mvt4g.eval.bench import open_bench
    from mvt4g.eval.runner import CopySource, EvalSettings, ModelSource, run_eval

    bench = open_bench("synthetic", heldout)
    settings = EvalSettings(groups=["psnr", "ssim", "region_psnr"])
    rows, kept = [], {}
    for seed in seeds if model is not None else [None]:
        if model is None:
            source = CopySource()
        else:
            source = ModelSource(model, frames=None, size=None, steps=steps, seed=seed)
            source.load()
            generate = source.video

            def video(item, generate=generate, seed=seed):
                frames, path, notes = generate(item)
                if item.key in keep and seed == seeds[0]:
                    kept[item.key] = (frames, item.reference, item.ground_truth)
                return frames, path, notes

            source.video = video
        result = run_eval(bench, source, settings)
        if result.skipped_videos:
            raise SystemExit(f"skipped videos: {[s.reason for s in result.skipped_videos][:3]}")
        rows += [(seed, r.sequence, r.trajectory, r.metrics) for r in result.results]
    return rows, kept


def table(rows) -> dict:
    """{family|"all": {metric: {"mean", "std_scenes", "n"}}}: means over videos; spread = std of scene means."""
    out = {}
    for fam in FAMILIES + ("all",):
        sel = [r for r in rows if fam == "all" or family(r[2]) == fam]
        if not sel:
            continue
        out[fam] = {}
        for m in METRICS:
            vals = [r[3][m] for r in sel if m in r[3] and math.isfinite(r[3][m])]
            if not vals:
                continue
            scenes = {}
            for r in sel:
                if m in r[3] and math.isfinite(r[3][m]):
                    scenes.setdefault(r[1], []).append(r[3][m])
            means = [statistics.fmean(v) for v in scenes.values()]
            out[fam][m] = {"mean": statistics.fmean(vals), "std_scenes": statistics.stdev(means) if len(means) > 1 else 0.0,
                           "n": len(vals)}  # fmt: skip
    return out


def seed_spread(rows, seeds) -> dict:
    """PSNR over all videos per noise seed."""
    return {str(s): statistics.fmean(r[3]["psnr"] for r in rows if r[0] == s) for s in seeds}


def loss_plot(run: Path, out: Path) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key in ("loss", "diff", "track", "corr"):
        xs = [h["step"] for h in hist if h.get(key)]
        if xs:
            ax.plot(xs, [h[key] for h in hist if h.get(key)], label=key, lw=1)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"training loss ({run.name})")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    plt.close(fig)
    return hist


def samples_plot(kept: dict, out: Path) -> None:
    """Rows: reference | generated | exact target, frames 0, mid, last, upscaled 4x."""
    import imageio.v3 as iio

    rows = []
    for (seq, traj), (gen, ref, gt) in sorted(kept.items()):
        T = gen.shape[0]
        idx = [0, T // 2, T - 1]
        strip = [np.concatenate([v[i] for i in idx], axis=1) for v in (ref, gen, gt)]
        sep = np.full((ref.shape[1], 2, 3), 255, np.uint8)
        rows.append(np.concatenate([strip[0], sep, strip[1], sep, strip[2]], axis=1))
    img = np.concatenate([np.concatenate([r, np.full((2, r.shape[1], 3), 255, np.uint8)]) for r in rows])
    iio.imwrite(out / "samples.png", np.kron(img, np.ones((4, 4, 1), np.uint8)))


def fmt(cell: dict | None) -> str:
    return "n/a" if cell is None else f"{cell['mean']:.2f} ± {cell['std_scenes']:.2f}"


def markdown(card: dict, recipe_text: str) -> str:
    t, c = card["heldout"]["model"], card["heldout"]["copy"]
    lines = [
        f"# Shipped model `{card['name']}`", "",
        card["summary"], "",
        "## Recipe", "",
        f"Config `{card['recipe']}` (below), trained with `mvt4g train --config {card['recipe']}`"
        + (f" from the shipped `{card['init']}`" if card.get("init") else "") + ".",
        f"Training data: `mvt4g synth` seed {card['data']['train_seed']} ({card['data']['train']}).",
        f"Steps: {card['steps']} (batch {card['batch_size']}), wall time {card['wall_time_min']:.0f} min on "
        f"{card['hardware']} (a shared machine: the time is indicative, the steps are the recipe).",
        f"Weights: float16 storage, sha256 `{card['sha256']}` (checked at every load).", "",
        "```toml", recipe_text.strip(), "```", "",
        "## Held-out metrics", "",
        f"Held-out scenes: `mvt4g synth` seed {card['data']['heldout_seed']} ({card['data']['heldout']}), never used in "
        f"training. Each scene's cam01 is the reference; targets are its other views and cam01 moved along the presets "
        f"(exact renders). Generated with {card['sampling_steps']} Euler steps (shift 5), noise seeds "
        f"{', '.join(map(str, card['seeds']))}; preset views are scored from frame 1 (frame 0 is the reference's own). "
        "Mean over videos ± std over scene means (dB for PSNR).", "",
        "| family | metric | model | copy the reference | model - copy |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for fam in FAMILIES + ("all",):
        for m in METRICS:
            a, b = t.get(fam, {}).get(m), c.get(fam, {}).get(m)
            diff = "n/a" if a is None or b is None else f"{a['mean'] - b['mean']:+.2f}"
            lines.append(f"| {fam} | {m} | {fmt(a)} | {fmt(b)} | {diff} |")
    lines += ["", f"PSNR per noise seed (all videos): {card['heldout']['per_seed_psnr']}", "",
              "![loss](loss.png)", "", "Rows: reference | generated | exact target (frames 0, middle, last):", "",
              "![samples](samples.png)", "", "## What it is not", "", card["limits"], ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="training run directory")
    ap.add_argument("--name", required=True)
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--recipe", required=True, help="the run's train config: a packaged name (base) or a path")
    ap.add_argument("--init", default="", help="shipped model the run fine-tuned")
    ap.add_argument("--train-data", default="512 scenes, 4 views x 9 frames, 32x32, 2 objects")
    ap.add_argument("--heldout-data", default="8 scenes, 4 views + 8 preset views x 9 frames, 32x32, 2 objects")
    ap.add_argument("--train-seed", type=int, default=100)
    ap.add_argument("--heldout-seed", type=int, default=9001)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=50, help="sampling steps (generate's default)")
    ap.add_argument("--summary", default="")
    ap.add_argument("--limits", default="")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    sha = store_fp16(args.run, args.out)
    keep = {(f"scene_000{i}", t) for i, t in ((0, "arc-left"), (1, "zoom-in"), (2, "translate-right"), (3, "cam02"))}
    model_rows, kept = evaluate(args.out, args.heldout, seeds, args.steps, keep)
    copy_rows, _ = evaluate(None, args.heldout, seeds, args.steps, set())
    hist = loss_plot(args.run, args.out)
    samples_plot(kept, args.out)
    cfg_text = (args.run / "config.toml").read_text()
    from mvt4g.train.config import find_config, tomllib  # tomli on Python 3.10

    cfg = tomllib.loads(cfg_text)
    wall = sum(h.get("step_s", 0.0) for h in hist) * cfg["train"]["log_every"] / 60  # logged steps sample the run
    card = {
        "name": args.name, "sha256": sha, "file": "model.safetensors", "recipe": args.recipe,
        "init": args.init, "steps": hist[-1]["step"], "batch_size": cfg["train"]["batch_size"],
        "wall_time_min": wall, "hardware": f"{os.cpu_count()} CPU cores ({platform.machine()}), torch CPU",
        "data": {"train_seed": args.train_seed, "train": args.train_data, "heldout_seed": args.heldout_seed,
                 "heldout": args.heldout_data},
        "sampling_steps": args.steps, "seeds": seeds,
        "heldout": {"model": table(model_rows), "copy": table(copy_rows), "per_seed_psnr": seed_spread(model_rows, seeds)},
        "summary": args.summary, "limits": args.limits,
        "card_seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    (args.out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (args.out / "MODEL_CARD.md").write_text(markdown(card, find_config(args.recipe).read_text()))
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        print(f"{'family':<12} {'metric':<24} {'model':>8} {'copy':>8} {'diff':>7}")
        for fam in FAMILIES + ("all",):
            for m in METRICS:
                a = card["heldout"]["model"].get(fam, {}).get(m)
                b = card["heldout"]["copy"].get(fam, {}).get(m)
                if a and b:
                    print(f"{fam:<12} {m:<24} {a['mean']:8.2f} {b['mean']:8.2f} {a['mean'] - b['mean']:+7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
