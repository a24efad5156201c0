"""Training throughput: steps/s with and without the method's losses, and the data-loading share.

CPU part (always): for each preset (tiny, small) the real trainer (``mvt4g.train.Trainer``)
runs on synth clips rendered at the preset's size, for

    diffusion   --no-track-head --no-corr-loss   (L_diff only: Plücker-conditioned baseline)
    full        tracking head + L_corr            (L = L_diff + 0.01 L_track + 0.01 L_corr)

Reported per variant: median step time over the timed steps (the first step is dropped),
steps/s, and the data-loading share = time waiting for the batch / step time, with a warm
feature cache (``mvt4g train prepare`` first) and with a cold one (every sample encoded on
the fly, the first epoch of a run without ``prepare``). The ratio full/diffusion is the
method's training-time cost.

GPU part (only when CUDA is available, ``--gpu auto|on|off``): wan2.1-1.3b with random
weights at full size (81 frames, 480x832, batch 1; 2 x 21 x 30 x 52 = 65,520 tokens), bf16
autocast, gradient checkpointing, the paper's fine-tuning scope, tracking head + L_corr with
``--gpu-queries`` queries, AdamW. Reported: step time, peak memory, tokens/s, and FLOP
utilisation = FLOPs executed per step (``torch.utils.flop_counter``, forward + backward,
gradient-checkpointing recomputation included, so a hardware- not model-FLOP rate) / step
time / the GPU's measured bf16 matmul rate (8192^3 matmuls). ``--heavy-preset tiny
--heavy-device cpu`` runs that same code path on the CPU (to check it without a GPU).

Usage:

    python benchmarks/train.py                        # tiny and small on CPU, table on stdout
    python benchmarks/train.py --json out.json        # also write the results as JSON
    python benchmarks/train.py --presets tiny --steps 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mvt4g.train.config import TrainConfig, apply_overrides


def make_clips(root: Path, preset: str, scenes: int) -> Path:
    from mvt4g.model.config import preset as model_preset
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    v = model_preset(preset).video
    out = root / f"synth_{preset}"
    synthesize(SynthSettings(views=3, frames=v.frames, height=v.height, width=v.width, seed=1, points=512), out, scenes)
    return out


def run_trainer(data: Path, out: Path, preset: str, variant: str, steps: int, threads: int, cache: Path,
                queries: int, batch: int) -> list[dict]:  # fmt: skip
    from mvt4g.train.trainer import Trainer

    overrides = [
        f"model.preset={preset}", f"data.paths=['{data}']", f"train.out={out}", f"train.steps={steps}",
        f"train.threads={threads}", f"data.cache_dir={cache}", f"data.queries={queries}", f"train.batch_size={batch}",
        "train.checkpoint_every=100000", "train.tensorboard=false",
    ]  # fmt: skip
    if variant == "diffusion":
        overrides += ["model.tracking_head=false", "loss.corr=false"]
    records: list[dict] = []
    Trainer(apply_overrides(TrainConfig(), overrides), callback=lambda e: records.append(e) if e["event"] == "step" else None).run()
    return records


def summarise(records: list[dict]) -> dict:
    timed = records[1:] if len(records) > 1 else records
    step_s = statistics.median(r["step_s"] for r in timed)
    share = sum(r["data_s"] for r in timed) / sum(r["step_s"] for r in timed)
    return {"step_s": step_s, "steps_per_s": 1.0 / step_s, "data_fraction": share, "steps_timed": len(timed)}


def bench_cpu(preset: str, args, root: Path) -> dict:
    from mvt4g.cli.main import main as cli

    data = make_clips(root, preset, args.scenes)
    warm = root / f"cache_{preset}"
    # `mvt4g train prepare` fills the cache for every clip, view, direction and pair.
    code = cli(["-q", "train", "prepare", "--config", str(root / "prep.toml"), "--data", str(data),
                "--set", f"model.preset={preset}", "--set", f"data.cache_dir={warm}"])  # fmt: skip
    if code:
        raise SystemExit(f"train prepare failed ({code})")
    row: dict = {"preset": preset, "threads": args.threads, "batch": args.batch, "queries": args.queries}
    for variant in ("diffusion", "full"):
        records = run_trainer(data, root / f"run_{preset}_{variant}", preset, variant, args.steps, args.threads, warm,
                              args.queries, args.batch)  # fmt: skip
        row[variant] = summarise(records)
    cold = run_trainer(data, root / f"run_{preset}_cold", preset, "full", min(args.steps, 4), args.threads,
                       root / f"cold_{preset}", args.queries, args.batch)  # fmt: skip
    row["full_cold_cache"] = summarise(cold)
    row["time_ratio_full_over_diffusion"] = row["full"]["step_s"] / row["diffusion"]["step_s"]
    return row


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 20) -> float:
    """Measured dense matmul FLOP/s (2 n^3 per product)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def random_batch(mc, queries: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    v = mc.video
    F = mc.latent_frames(v.frames)
    sf = mc.autoencoder.spatial_factor
    lat = (1, mc.backbone.in_channels, F, v.height // sf, v.width // sf)
    scale = torch.tensor([v.width, v.height], dtype=torch.float32)
    q = torch.cat([torch.randint(0, 2, (1, queries, 1), generator=g).float(),
                   torch.randint(0, F, (1, queries, 1), generator=g).float(),
                   torch.rand(1, queries, 2, generator=g) * scale], dim=-1)  # fmt: skip
    batch = {
        "reference": torch.randn(lat, generator=g), "target": torch.randn(lat, generator=g),
        "noise": torch.randn(lat, generator=g), "plucker": torch.randn(1, 2, F, 6, v.height, v.width, generator=g),
        "sigma": torch.tensor([0.7]), "timestep": torch.tensor([700.0]), "weight": torch.tensor([1.0]),
        "queries": q, "tracks": torch.rand(1, 2, F, queries, 2, generator=g) * scale,
        "visible": torch.rand(1, 2, F, queries, generator=g) > 0.2,
    }  # fmt: skip
    return {k: t.to(device) for k, t in batch.items()}


def bench_heavy(preset: str, device: torch.device, args) -> dict:
    """One full training step (forward, backward, AdamW) of ``preset`` at its full size, random weights."""
    from torch.utils.flop_counter import FlopCounterMode

    from mvt4g.model.freeze import freeze_for_finetuning
    from mvt4g.train import builders

    cfg = apply_overrides(TrainConfig(), [f"model.preset={preset}", "model.gradient_checkpointing=true",
                                          "data.paths=['unused']"])  # fmt: skip
    mc = builders.resolve_model_config(cfg)
    bf16 = device.type == "cuda"
    with torch.device(device):
        model = builders.build_model(cfg, mc)
    scope = freeze_for_finetuning(model)
    module = builders.build_train_module(cfg, model, mc, bf16=bf16).to(device)
    optimizer = builders.build_optimizer(cfg, module)
    batch = random_batch(mc, args.gpu_queries if device.type == "cuda" else args.queries, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> None:
        module(batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    with FlopCounterMode(display=False) as counter:
        module(batch)["loss"].backward()
    optimizer.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.heavy_steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    h, w = mc.token_grid(mc.video.height, mc.video.width)
    tokens = 2 * mc.latent_frames(mc.video.frames) * h * w
    rate = matmul_rate(device, torch.bfloat16 if bf16 else torch.float32, n=8192 if device.type == "cuda" else 1024)
    return {
        "preset": preset, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "video": [mc.video.frames, mc.video.height, mc.video.width], "tokens": tokens, "step_s": step_s,
        "tokens_per_s": tokens / step_s, "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "flops_per_step": flops, "matmul_flops_per_s": rate, "flop_utilisation": flops / step_s / rate,
        "trainable_params": scope.trainable, "total_params": scope.total, "precision": "bf16 autocast" if bf16 else "fp32",
    }  # fmt: skip


def print_table(rows: list[dict], heavy: dict | None, note: str) -> None:
    print(f"{'preset':<8} {'variant':<16} {'step s':>8} {'steps/s':>8} {'data %':>7}")
    print("-" * 52)
    for r in rows:
        for variant in ("diffusion", "full", "full_cold_cache"):
            v = r[variant]
            print(f"{r['preset']:<8} {variant:<16} {v['step_s']:>8.3f} {v['steps_per_s']:>8.2f} {100 * v['data_fraction']:>6.1f}%")
        print(f"{r['preset']:<8} {'full/diffusion':<16} {r['time_ratio_full_over_diffusion']:>8.2f}")
    if heavy:
        print(f"\n{heavy['preset']} on {heavy['device']}: step {heavy['step_s']:.3f} s, {heavy['tokens_per_s']:.0f} tokens/s, "
              f"peak {heavy['peak_memory_gib']} GiB, FLOP utilisation {100 * heavy['flop_utilisation']:.1f}% of "
              f"{heavy['matmul_flops_per_s'] / 1e12:.1f} TFLOP/s measured")  # fmt: skip
    print(note)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--steps", type=int, default=8, help="Trainer steps per variant (the first is not timed).")
    p.add_argument("--scenes", type=int, default=4)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--queries", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gpu", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--gpu-queries", type=int, default=256)
    p.add_argument("--heavy-preset", default="wan2.1-1.3b", help="Preset of the GPU part.")
    p.add_argument("--heavy-device", default="cuda", help="Device of the GPU part (cpu checks the code path).")
    p.add_argument("--heavy-steps", type=int, default=3)
    p.add_argument("--json", default=None, metavar="PATH", help="Also write the results as JSON ('-' = stdout only).")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mvt4g-bench-train-") as tmp:
        root = Path(tmp)
        (root / "prep.toml").write_text("[data]\nreverse_prob = 0.5\n")
        rows = [bench_cpu(preset, args, root) for preset in args.presets]
    heavy, note = None, "CUDA not available: the wan2.1-1.3b GPU step was not measured"
    device = torch.device(args.heavy_device)
    if args.gpu != "off" and (device.type != "cuda" or torch.cuda.is_available()):
        heavy = bench_heavy(args.heavy_preset, device, args)
        note = f"GPU part: {args.heavy_preset} on {heavy['device']}"
    elif args.gpu == "on":
        print("error: --gpu on but CUDA is not available", file=sys.stderr)
        return 2
    from _common import machine

    result = {"benchmark": "train", "machine": machine(), "rows": rows, "heavy": heavy, "note": note}
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print_table(rows, heavy, note)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
