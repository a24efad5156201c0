"""The paper's Table 3 ablation on synth data, small preset, a fixed CPU budget per run.

Stages (each skipped when its output exists in ``--out``, so an interrupted study resumes):

1. data: synth scenes (4 views, 17 frames, 64x64) split by scene into train (seed 100) and
   held-out (seed 200), and the feature cache (``mvt4g train prepare``).
2. base model: the small preset trained from scratch on the train split with EVERY group
   trainable and L_diff only (Plücker conditioning): the stand-in for the camera-conditioned
   pretrained backbone (ReCamMaster) that the paper fine-tunes. ``--base-budget-s`` CPU seconds.
3. fine-tuning from the base, paper scope (self-attention + camera modules + tracking head),
   the four rows of Table 3, for each seed:
       (i)   Plücker only        --no-track-head --no-corr-loss
       (ii)  + L_corr            --no-track-head
       (iii) + tracking head     --no-corr-loss
       (iv)  both                (the method)
   Every run gets the same CPU budget (``--budget-s``, process CPU seconds, 1 thread): the
   per-step CPU cost of each config is measured on a 3-step calibration run and the step
   count is ``budget / cost``. So a config with the extra losses takes fewer steps: the
   comparison is at equal compute, as the issue asks.
4. evaluation on the held-out scenes: reference = cam01, targets = the other views, exact
   cameras, ``--sample-steps`` Euler steps, seed 0. Metrics against the exact target renders:
   PSNR and SSIM (mvt4g.eval.image_metrics); and a geometric error of the generated video:
   the exact target tracks (visible points, latent frames, textured patches) are located in
   the generated video by patch matching (the exact render's 7x7 patch around the point,
   zero-mean NCC, +-8 px search); the error is the distance of the best match from the exact
   position (px): 0 for the exact render, about 6 px for content unrelated to the truth. The
   base model and a "copy the reference" video anchor the comparison.

Usage:

    python benchmarks/ablation.py --out /tmp/ablation --budget-s 180 --seeds 0 1
    python benchmarks/ablation.py --out /tmp/ablation --json results.json   # reuse finished runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mvt4g.train.config import TrainConfig, apply_overrides

CONFIGS = {
    "i_plucker_only": ["model.tracking_head=false", "loss.corr=false"],
    "ii_corr": ["model.tracking_head=false", "loss.corr=true"],
    "iii_track": ["model.tracking_head=true", "loss.corr=false"],
    "iv_both": ["model.tracking_head=true", "loss.corr=true"],
}
ALL_GROUPS = "['self_attention', 'cross_attention', 'feed_forward', 'modulation', 'embeddings', 'output', 'camera', 'tracking_head']"


def make_data(out: Path, args) -> tuple[Path, Path]:
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    train, held = out / "train", out / "heldout"
    for folder, seed, count in ((train, 100, args.train_scenes), (held, 200, args.heldout_scenes)):
        if not (folder / f"scene_{count - 1:04d}" / "tracks.npz").is_file():
            synthesize(SynthSettings(views=4, frames=17, height=64, width=64, seed=seed, points=1024), folder, count,
                       overwrite=True)  # fmt: skip
    return train, held


def base_overrides(args, train: Path, out: Path) -> list[str]:
    return [
        "model.preset=small", f"data.paths=['{train}']", f"train.out={out}", f"train.threads={args.threads}",
        f"data.queries={args.queries}", f"model.head_iterations={args.head_iterations}", "train.batch_size=2",
        "train.tensorboard=false", "train.log_every=1", "optim.schedule=constant", "optim.warmup_steps=10",
    ]  # fmt: skip


class CpuClock:
    """Trainer callback: CPU seconds of this process per finished step."""

    def __init__(self):
        self.per_step: list[float] = []
        self._last = None

    def __call__(self, event: dict) -> None:
        now = time.process_time()
        if event["event"] == "start":
            self._last = now
        elif event["event"] == "step":
            self.per_step.append(now - self._last)
            self._last = now


def train_run(overrides: list[str]) -> tuple[dict, CpuClock]:
    from mvt4g.train.trainer import Trainer

    clock = CpuClock()
    cfg = apply_overrides(TrainConfig(), overrides)
    result = Trainer(cfg, callback=clock).run()
    return result.to_dict(), clock


def steps_for_budget(name: str, extra: list[str], common: list[str], budget: float, root: Path) -> tuple[int, float]:
    """Calibrate a config's CPU cost per step (3 steps, the first dropped) -> steps within ``budget``."""
    import shutil

    out = root / f"calibrate_{name}"
    shutil.rmtree(out, ignore_errors=True)
    _, clock = train_run([*common, *extra, f"train.out={out}", "train.steps=3", "train.checkpoint_every=1000"])
    shutil.rmtree(out, ignore_errors=True)
    cost = statistics.mean(clock.per_step[1:])
    return max(1, int(budget / cost)), cost


def patch_match_error(truth: np.ndarray, video: np.ndarray, tracks: np.ndarray, visible: np.ndarray, frames,
                      radius: int = 8, half: int = 3, max_points: int = 128, min_std: float = 4.0) -> float:  # fmt: skip
    """Mean distance (px) from the exact target track positions to where ``video`` shows them.

    truth, video: uint8 [T, H, W, 3] (exact render, video to score); tracks [T, N, 2] and
    visible [T, N] of the target view. For each visible point at the given frames, the 7x7
    patch of the exact render around it is matched (zero-mean NCC) in ``video`` within
    +-``radius`` px; the error is the offset of the best match. Textureless patches (grey
    standard deviation < ``min_std``) cannot be localised and are skipped.
    """
    pad = radius + half + 1
    src = np.pad(truth.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    vid = np.pad(video.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    size = 2 * half + 1
    errors = []
    rng = np.random.default_rng(0)
    for t in frames:
        points = np.flatnonzero(visible[t])
        if points.size > max_points:
            points = rng.choice(points, max_points, replace=False)
        # Every size x size patch of the padded frame: [H', W', 3, size, size].
        windows = np.lib.stride_tricks.sliding_window_view(vid[t], (size, size), axis=(0, 1))
        for n in points:
            x, y = (np.floor(tracks[t, n]) + pad).astype(int)
            tpl = src[t, y - half:y + half + 1, x - half:x + half + 1]
            if tpl.mean(axis=-1).std() < min_std:
                continue
            tpl = tpl.transpose(2, 0, 1).ravel()
            tpl = tpl - tpl.mean()
            cand = windows[y + dy - half, x + dx - half].reshape(len(offsets), len(offsets), -1)
            cand = cand - cand.mean(axis=-1, keepdims=True)
            score = (cand @ tpl) / (np.linalg.norm(cand, axis=-1) * np.linalg.norm(tpl) + 1e-6)
            iy, ix = np.unravel_index(np.argmax(score), score.shape)
            errors.append(np.hypot(offsets[iy], offsets[ix]))
    return float(np.mean(errors)) if errors else float("nan")


def evaluate(model_dir: Path | None, held: Path, args) -> dict:
    """Mean PSNR, SSIM and patch-match error over the held-out (reference, target) pairs.

    ``model_dir=None`` scores the exact target render itself (``render``) and the reference
    video copied as the target (``copy``).
    """
    from mvt4g.eval.image_metrics import psnr, ssim
    from mvt4g.io.clip import read_clip
    from mvt4g.sample import GeneratePipeline, SamplingSettings
    from mvt4g.sample.reference import PreparedReference
    from mvt4g.tracks.format import read_tracks

    pipe = GeneratePipeline(model_dir, device="cpu", dtype="float32") if model_dir else None
    rows: dict[str, list[float]] = {}
    for scene in sorted(p for p in held.iterdir() if (p / "videos").is_dir()):
        clip = read_clip(scene)
        ts = read_tracks(clip.tracks_path)
        names = ts.views or clip.views
        ref_view = clip.views[0]
        ref_frames = clip.read_video(ref_view)
        reference = PreparedReference(clip.videos[ref_view], ref_frames, clip.fps, clip.cameras[ref_view])
        for target in clip.views[1:1 + args.targets_per_scene]:
            truth = clip.read_video(target)
            kinds = {}
            if pipe is not None:
                settings = SamplingSettings(steps=args.sample_steps, guidance=1.0)
                kinds["model"] = pipe.generate(reference, clip.cameras[target], settings=settings, seed=0).frames
            else:
                kinds = {"render": truth, "copy": ref_frames}
            for kind, video in kinds.items():
                rows.setdefault(f"{kind}_psnr", []).append(psnr(video, truth))
                rows.setdefault(f"{kind}_ssim", []).append(ssim(video, truth))
                t = names.index(target)
                err = patch_match_error(truth, video, ts.tracks[t], ts.visible[t], range(0, clip.frames, 4))
                rows.setdefault(f"{kind}_track_px", []).append(err)
    return {k: float(np.mean(v)) for k, v in rows.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="Study folder (data, runs, results); reused when it exists.")
    p.add_argument("--train-scenes", type=int, default=24)
    p.add_argument("--heldout-scenes", type=int, default=6)
    p.add_argument("--targets-per-scene", type=int, default=2)
    p.add_argument("--base-budget-s", type=float, default=300.0, help="CPU seconds of the base model's training.")
    p.add_argument("--budget-s", type=float, default=180.0, help="CPU seconds of each fine-tuning run.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--queries", type=int, default=32)
    p.add_argument("--head-iterations", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--sample-steps", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"runs": {}, "eval": {}}

    def save() -> None:
        results["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    train, held = make_data(args.out, args)
    from mvt4g.cli.main import main as cli

    (args.out / "prep.toml").write_text("[model]\npreset = \"small\"\n")
    if cli(["-q", "train", "prepare", "--config", str(args.out / "prep.toml"), "--data", str(train)]):
        raise SystemExit("train prepare failed")

    base_dir = args.out / "base"
    if not (base_dir / "model" / "model.safetensors").is_file():
        common = [*base_overrides(args, train, base_dir), f"optim.lr={3 * args.lr}", f"optim.train_groups={ALL_GROUPS}",
                  "model.tracking_head=false", "loss.corr=false"]  # fmt: skip
        steps, cost = steps_for_budget("base", [], common, args.base_budget_s, args.out)
        summary, clock = train_run([*common, f"train.steps={steps}", f"train.checkpoint_every={steps}"])
        results["runs"]["base"] = {"steps": steps, "cpu_per_step_s": cost, "cpu_s": sum(clock.per_step), "final": summary["final"]}
        save()

    for name in args.configs:
        for seed in args.seeds:
            key = f"{name}/seed{seed}"
            run_dir = args.out / "runs" / name / f"seed{seed}"
            if (run_dir / "model" / "model.safetensors").is_file() and key in results["runs"]:
                continue
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            common = [*base_overrides(args, train, run_dir), f"model.init={base_dir / 'model'}", f"optim.lr={args.lr}",
                      f"train.seed={seed}", *CONFIGS[name]]  # fmt: skip
            if f"{name}/cost" not in results["runs"]:
                steps, cost = steps_for_budget(name, CONFIGS[name], common, args.budget_s, args.out)
                results["runs"][f"{name}/cost"] = {"steps": steps, "cpu_per_step_s": cost}
            steps = results["runs"][f"{name}/cost"]["steps"]
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
            summary, clock = train_run([*common, f"train.steps={steps}", f"train.checkpoint_every={steps}"])
            results["runs"][key] = {"steps": steps, "cpu_s": sum(clock.per_step), "final": summary["final"]}
            save()

    if "reference" not in results["eval"]:
        results["eval"]["reference"] = evaluate(None, held, args)
        save()
    if "base" not in results["eval"]:
        results["eval"]["base"] = evaluate(base_dir, held, args)
        save()
    for name in args.configs:
        for seed in args.seeds:
            key = f"{name}/seed{seed}"
            if key not in results["eval"]:
                results["eval"][key] = evaluate(args.out / "runs" / name / f"seed{seed}", held, args)
                save()

    table = summarise(results, args)
    results["table"] = table
    save()
    print_table(table, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def summarise(results: dict, args) -> list[dict]:
    rows = []
    for name in args.configs:
        evals = [results["eval"][f"{name}/seed{s}"] for s in args.seeds if f"{name}/seed{s}" in results["eval"]]
        if not evals:
            continue
        row = {"config": name, "seeds": len(evals), "steps": results["runs"][f"{name}/cost"]["steps"]}
        for metric in ("psnr", "ssim", "track_px"):
            values = [e[f"model_{metric}"] for e in evals]
            row[metric] = float(np.mean(values))
            row[f"{metric}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            row[f"{metric}_per_seed"] = values
        rows.append(row)
    return rows


def print_table(table: list[dict], results: dict) -> None:
    ref, base = results["eval"].get("reference", {}), results["eval"].get("base", {})
    print(f"{'config':<16} {'steps':>6} {'PSNR':>14} {'SSIM':>14} {'track err px':>14}")
    print("-" * 68)
    for r in table:
        print(f"{r['config']:<16} {r['steps']:>6} {r['psnr']:>8.2f} ±{r['psnr_sd']:<5.2f} {r['ssim']:>8.3f} ±{r['ssim_sd']:<5.3f}"
              f" {r['track_px']:>8.2f} ±{r['track_px_sd']:<5.2f}")  # fmt: skip
    if base:
        print(f"{'base (no FT)':<16} {results['runs']['base']['steps']:>6} {base['model_psnr']:>8.2f}        "
              f"{base['model_ssim']:>8.3f}        {base['model_track_px']:>8.2f}")  # fmt: skip
    if ref:
        print(f"{'copy reference':<16} {'':>6} {ref['copy_psnr']:>8.2f}        {ref['copy_ssim']:>8.3f}        {ref['copy_track_px']:>8.2f}")
        print(f"{'exact render':<16} {'':>6} {'inf':>8}        {1.0:>8.3f}        {ref['render_track_px']:>8.2f}")
    print("± = standard deviation over seeds; track err = patch-match distance to the exact target tracks (exact render: 0)")


if __name__ == "__main__":
    sys.exit(main())
