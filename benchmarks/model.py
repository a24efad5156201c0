"""Cost of the MVTrack4Gen additions: one training step, diffusion only vs the full method.

For each preset: one forward + backward of a training step in the paper's fine-tuning scope
(self-attention, camera modules and tracking head trainable; ``freeze_for_finetuning``),
on random latents, Plücker maps and tracks:

    diffusion   L_diff only (rectified flow on the target tokens; no tap, no head)
    corr        L_diff + 0.01 L_corr (tap, no tracking head): the correspondence loss's share
    full        L_diff + 0.01 L_track (tracking head on the tapped Q/K) + 0.01 L_corr

Reported: median step time over ``--steps`` timed steps after ``--warmup``, the ratio
full / diffusion, and peak memory of each variant.

Memory method. CPU: the peak of live tensor storages created during the step (activations,
temporaries, gradients), counted by a TorchDispatchMode that adds each op output's storage
once and subtracts it when Python frees it; parameters and inputs that exist before the
step are not included. This is tensor memory, independent of the allocator and the rest of
the process (tracemalloc cannot see PyTorch's allocations). It runs as a separate, untimed
step. GPU: ``torch.cuda.max_memory_allocated`` over the step, minus the memory allocated
before it (``--gpu`` runs wan2.1-1.3b with random weights, bf16 parameters, gradient
checkpointing, at 2 x 21 x 30 x 52 tokens, only when CUDA is available; the tracking head
stays float32).

Usage:

    python benchmarks/model.py                      # tiny and small on CPU, table on stdout
    python benchmarks/model.py --json out.json      # also write the results as JSON
    python benchmarks/model.py --presets tiny --steps 10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mvt4g.model.config import ModelConfig, preset
from mvt4g.model.freeze import freeze_for_finetuning
from mvt4g.model.mvt4g_model import MVT4GModel


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of tensor storages created by ops while active (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self._seen:
                    self._seen.add(key)
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, storage.nbytes())
        return out

    def _free(self, key: int, nbytes: int) -> None:
        if key in self._seen:
            self._seen.discard(key)
            self.live -= nbytes


def make_batch(cfg: ModelConfig, batch: int, num_queries: int, device: str, dtype: torch.dtype, seed: int = 0) -> dict:
    """Random latents, Plücker maps, queries and ground-truth tracks at the preset's video size."""
    g = torch.Generator().manual_seed(seed)
    frames = cfg.latent_frames(cfg.video.frames)
    height, width = cfg.video.height, cfg.video.width
    sf = cfg.autoencoder.spatial_factor
    latent = (batch, cfg.backbone.in_channels, frames, height // sf, width // sf)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    scale = torch.tensor([width, height], dtype=torch.float32)
    queries = torch.cat(
        [
            torch.randint(0, 2, (batch, num_queries, 1), generator=g).float(),
            torch.randint(0, frames, (batch, num_queries, 1), generator=g).float(),
            torch.rand(batch, num_queries, 2, generator=g) * scale,
        ],
        dim=-1,
    )
    return {
        "reference": rand(*latent),
        "x0": rand(*latent),
        "noise": rand(*latent),
        "plucker": rand(batch, 2, frames, 6, height, width),
        "queries": queries.to(device),
        "tracks": (torch.rand(batch, 2, frames, num_queries, 2, generator=g) * scale).to(device),
        "visible": (torch.rand(batch, 2, frames, num_queries, generator=g) > 0.2).to(device),
        "image_size": (height, width),
    }


def training_step(model: MVT4GModel, data: dict, variant: str) -> torch.Tensor:
    """Forward + backward of one step; returns the (detached) loss."""
    from mvt4g.model.correspondence import CorrespondenceLoss
    from mvt4g.model.flow_matching import RectifiedFlow, diffusion_loss
    from mvt4g.model.losses import total_loss, track_loss

    flow = RectifiedFlow()
    batch = data["x0"].shape[0]
    t = flow.sample(batch, generator=torch.Generator().manual_seed(1), device=data["x0"].device)
    noisy = flow.add_noise(data["x0"], data["noise"], t["sigma"])
    out = model(
        data["reference"],
        noisy,
        t["timestep"],
        plucker=data["plucker"],
        queries=data["queries"] if variant == "full" else None,
        image_size=data["image_size"],
        tap=variant != "diffusion",
    )
    l_diff = diffusion_loss(out.velocity, flow.velocity_target(data["x0"], data["noise"]), t["weight"])
    l_track = l_corr = None
    if variant != "diffusion":
        l_corr = CorrespondenceLoss()(out.tap.q, out.tap.k, data["queries"], data["tracks"], data["visible"], data["image_size"])
    if variant == "full":
        l_track = track_loss(out.tracks, data["tracks"], data["visible"])["loss"]
    loss = total_loss(l_diff, l_track, l_corr)["loss"]
    loss.backward()
    model.zero_grad(set_to_none=True)
    return loss.detach()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_variant(model: MVT4GModel, data: dict, variant: str, steps: int, warmup: int, device: str) -> dict:
    for _ in range(warmup):
        training_step(model, data, variant)
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        training_step(model, data, variant)
        _sync(device)
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        training_step(model, data, variant)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with LiveTensorBytes() as tracker:
            training_step(model, data, variant)
        peak = tracker.peak
    return {"step_s": statistics.median(times), "min_s": min(times), "peak_bytes": int(peak)}


def bench_preset(name: str, args, device: str = "cpu", dtype: torch.dtype = torch.float32, checkpointing: bool = False) -> dict:
    cfg = preset(name)
    cfg.gradient_checkpointing = checkpointing
    torch.manual_seed(0)
    if device.startswith("cuda"):
        with torch.device(device):
            model = MVT4GModel(cfg)
    else:
        model = MVT4GModel(cfg)
    # DiT parameters in the run's dtype (buffers such as RoPE tables keep their precision);
    # the small tracking head stays float32, as mixed-precision training would keep it.
    for module in (model.backbone, model.null_text):
        for p in module.parameters():
            p.data = p.data.to(dtype)
    scope = freeze_for_finetuning(model)
    queries = args.gpu_queries if device.startswith("cuda") else args.queries
    data = make_batch(cfg, args.batch, queries, device, dtype)
    frames = cfg.latent_frames(cfg.video.frames)
    h, w = cfg.token_grid(cfg.video.height, cfg.video.width)
    row = {
        "preset": name,
        "device": device if not device.startswith("cuda") else torch.cuda.get_device_name(),
        "dtype": str(dtype).replace("torch.", ""),
        "gradient_checkpointing": checkpointing,
        "tokens": 2 * frames * h * w,
        "batch": args.batch,
        "queries": queries,
        "trainable_params": scope.trainable,
        "total_params": scope.total,
    }
    for variant in ("diffusion", "corr", "full"):
        row[variant] = bench_variant(model, data, variant, args.steps, args.warmup, device)
    base = row["diffusion"]
    row["time_ratio"] = row["full"]["step_s"] / base["step_s"]
    row["memory_ratio"] = row["full"]["peak_bytes"] / max(base["peak_bytes"], 1)
    row["corr_time_ratio"] = row["corr"]["step_s"] / base["step_s"]
    row["corr_memory_ratio"] = row["corr"]["peak_bytes"] / max(base["peak_bytes"], 1)
    return row


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'preset':<12} {'device':<14} {'tokens':>6} {'diff s':>8} {'+corr s':>8} {'full s':>8} {'ratio':>6} "
        f"{'diff MiB':>9} {'+corr MiB':>9} {'full MiB':>9} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        d, c, f = r["diffusion"], r["corr"], r["full"]
        print(
            f"{r['preset']:<12} {r['device'][:14]:<14} {r['tokens']:>6} {d['step_s']:>8.3f} {c['step_s']:>8.3f} {f['step_s']:>8.3f} "
            f"{r['time_ratio']:>6.2f} {_mib(d['peak_bytes']):>9} {_mib(c['peak_bytes']):>9} {_mib(f['peak_bytes']):>9} "
            f"{r['memory_ratio']:>6.2f}"
        )
    print("ratio = full / diffusion; '+corr' = diffusion + L_corr (tap, no tracking head)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], help="CPU presets to time.")
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per variant (median reported).")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--queries", type=int, default=64, help="Query points per sample on CPU.")
    parser.add_argument("--gpu-queries", type=int, default=256, help="Query points per sample on the GPU.")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave the default).")
    parser.add_argument("--gpu", choices=["auto", "on", "off"], default="auto", help="Also run wan2.1-1.3b on CUDA.")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="Write results as JSON to PATH (or stdout with no PATH).")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = [bench_preset(name, args) for name in args.presets]
    gpu_note = "CUDA not available: wan2.1-1.3b GPU benchmark skipped"
    if args.gpu != "off" and torch.cuda.is_available():
        rows.append(bench_preset("wan2.1-1.3b", args, device="cuda", dtype=torch.bfloat16, checkpointing=True))
        gpu_note = "wan2.1-1.3b on CUDA, bf16 DiT parameters (float32 tracking head), gradient checkpointing"
    elif args.gpu == "on":
        print("error: --gpu on but CUDA is not available", file=sys.stderr)
        return 2
    # benchmarks/_common.py: the script's own folder is on sys.path.
    from _common import machine

    result = {
        "benchmark": "model_training_step",
        "machine": machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "step": "forward + backward, paper fine-tuning scope, no optimizer update",
        "memory_method": "CPU: peak live tensor storages during the step (TorchDispatchMode); CUDA: max_memory_allocated",
        "gpu": gpu_note,
        "rows": rows,
    }
    if args.json == "-":
        print(json.dumps(result, indent=2))
    else:
        print_table(rows)
        print(f"\n{gpu_note}; threads={result['threads']}; times are medians of {args.steps} steps")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
