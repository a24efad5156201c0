"""GPU benchmark at wan2.1-1.3b shapes with random weights: one script, < 8 minutes on one H100/H200.

Training (bf16 DiT, float32 tracking head, gradient checkpointing, AdamW on the paper's
fine-tuning scope: self-attention, camera modules, tracking head), one sample per step:

    shapes     81x480x832 -> 2 x 21 x 30 x 52 tokens (the paper's), 81x240x416 -> 2 x 21 x 15 x 26
    variants   diffusion (L_diff only) and full (+ tracking head, L_track and L_corr)
    reported   median step time (forward, backward, optimizer step), peak memory
               (torch.cuda.max_memory_allocated over a step: weights, Adam states and all), and MFU =
               FLOPs of the step (torch's FlopCounterMode on the meta device, mvt4g.model.plan) /
               step time / the GPU's dense bf16 peak

Generation at 81x480x832: seconds per sampling step (two DiT forwards: guidance on the text,
as ReCamMaster samples) and its peak memory, with the DiT resident (``--offload none``), staged
(``--offload model``: the step runs with the DiT copied in; the copy itself, once per video, is
``offload_model_copy_in_s``) and streamed block by block (``--offload sequential``: every
forward copies every block in; one timed step after one warmup step, to keep the script short);
and one VAE decode of the 81-frame video (a random full-size Wan VAE; a single call without
warmup, so cuDNN's first-call setup is included).

Where CUDA is absent it prints one line and exits 0. ``--smoke`` runs the same code on the
tiny preset at tiny shapes on the CPU in a few seconds (a test runs it so the script cannot rot).

Usage:

    python benchmarks/gpu.py                # table on stdout
    python benchmarks/gpu.py --json         # one JSON object
    python benchmarks/gpu.py --smoke        # CPU, tiny preset
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, report  # noqa: E402

from mvt4g.model import plan  # noqa: E402
from mvt4g.model.config import preset  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's data sheets; matched on the device name.
PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "GH200": 989.0,
               "A100": 312.0, "L40S": 362.0, "A10G": 70.0}  # fmt: skip
FULL = {"preset": "wan2.1-1.3b", "train": [(81, 480, 832), (81, 240, 416)], "generate": (81, 480, 832)}
SMOKE = {"preset": "tiny", "train": [(5, 8, 8)], "generate": (5, 8, 8)}  # one shape: the same code path


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in PEAK_TFLOPS.items():
        if key in device_name:
            return value
    return None


class Bench:
    """The device, dtype and timing/memory helpers of one run."""

    def __init__(self, device: str, dtype: torch.dtype):
        self.device = torch.device(device)
        self.dtype = dtype
        self.cuda = self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def timed(self, fn, *, repeats: int, warmup: int) -> tuple[float, float]:
        """(median seconds of ``fn()``, peak bytes allocated over one call)."""
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times), self.peak(fn)

    def peak(self, fn) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            fn()
            torch.cuda.synchronize()
            return float(torch.cuda.max_memory_allocated())
        # CPU (--smoke): the plan's live-tensor counter on real tensors
        return plan.peak_bytes(fn)


def train_case(bench: Bench, config, shape: plan.PlanShape, variant: str, args) -> dict:
    model = plan.build_model(config, device=bench.device, dtype=bench.dtype, checkpointing=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    data = plan.random_batch(config, shape, device=bench.device, dtype=bench.dtype)

    def step():
        plan.training_step(model, data, variant)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds, peak = bench.timed(step, repeats=args.repeats, warmup=args.warmup)
    flops = plan.train_stage(config, shape, variant=variant, checkpointing=True, memory=False).flops
    del model, optimizer, data
    return {"case": f"train {variant}", "size": _size(shape), "tokens": plan.tokens(config, shape),
            "seconds": seconds, "peak_GiB": peak / plan.GIB, "TFLOP": flops / 1e12,
            "TFLOP/s": flops / seconds / 1e12}  # fmt: skip


def generate_case(bench: Bench, config, shape: plan.PlanShape, args, offload: str = "none", extra: dict | None = None) -> dict:
    from mvt4g.sample.offload import Offloader

    # Built on the device (random init of 1.4B parameters on a CPU takes long), then placed: on
    # the CPU for model and sequential, as GeneratePipeline(offload=...) keeps it.
    model = plan.build_model(config, device=bench.device, dtype=bench.dtype, checkpointing=False).eval()
    offloader = Offloader(offload, bench.device)
    offloader.add("dit", model, blocks=model.transformer.blocks)
    data = plan.random_batch(config, shape, device=bench.device, dtype=bench.dtype)
    timestep = torch.full((shape.batch,), 500.0, device=bench.device, dtype=bench.dtype)

    def sampling_step():  # conditional and unconditional forwards, as guidance runs them
        with torch.no_grad():
            for _ in range(2):
                model(data["reference"], data["x0"], timestep, plucker=data["plucker"],
                      camera_pose=data.get("camera_pose"), tap=False)  # fmt: skip

    if offload == "model" and extra is not None:  # the per-video cost: the DiT copied in, then dropped

        def copy_in():
            with offloader.stage("dit"):
                bench.sync()

        extra["offload_model_copy_in_s"] = bench.timed(copy_in, repeats=1, warmup=1)[0]
    repeats, warmup = (args.repeats, args.warmup) if offload != "sequential" else (1, min(args.warmup, 1))
    with offloader.stage("dit"):  # the peak counts the staged DiT: it is allocated throughout sampling
        seconds, peak = bench.timed(sampling_step, repeats=repeats, warmup=warmup)
    offloader.remove()
    flops = 2 * plan.generate_dit_stage(config, shape, steps=1, guidance=False, memory=False).flops
    del model, data
    case = "generate step" if offload == "none" else f"generate step (offload {offload})"
    return {"case": case, "size": _size(shape), "tokens": plan.tokens(config, shape),
            "seconds": seconds, "peak_GiB": peak / plan.GIB, "TFLOP": flops / 1e12,
            "TFLOP/s": flops / seconds / 1e12}  # fmt: skip


def decode_case(bench: Bench, config, shape: plan.PlanShape) -> dict | None:
    if config.autoencoder.kind != "wan_vae":
        return None
    from diffusers import AutoencoderKLWan

    from mvt4g.model.autoencoder import _wan_vae_kwargs

    with torch.device(bench.device):
        vae = AutoencoderKLWan(**_wan_vae_kwargs(config.autoencoder)).eval()
    torch.nn.Module.to(vae, bench.dtype)  # diffusers' .to() warns about float32 modules it does not have
    frames, h, w = plan.latent_grid(config, shape)
    z = torch.randn(1, config.autoencoder.latent_channels, frames, h, w, device=bench.device, dtype=bench.dtype)

    def decode():
        with torch.no_grad():
            vae.decode(z)

    seconds, peak = bench.timed(decode, repeats=1, warmup=0)
    flops = plan.vae_decode_stage(config, shape).flops
    return {"case": "VAE decode", "size": _size(shape), "tokens": None, "seconds": seconds,
            "peak_GiB": peak / plan.GIB, "TFLOP": flops / 1e12, "TFLOP/s": flops / seconds / 1e12}  # fmt: skip


def _size(shape: plan.PlanShape) -> str:
    return f"{shape.frames}x{shape.height}x{shape.width}"


def _guard(fn, case: str, size: str) -> dict:
    """Run one case; an out-of-memory error becomes a row saying so instead of ending the run."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"case": case, "size": size, "error": "out of memory"}


def run(args) -> tuple[list[dict], dict]:
    sizes = SMOKE if args.smoke else FULL
    config = preset(sizes["preset"])
    bench = Bench("cpu" if args.smoke else "cuda", torch.float32 if args.smoke else torch.bfloat16)
    rows = []
    for frames, height, width in sizes["train"]:
        shape = plan.PlanShape(frames, height, width, queries=args.queries)
        for variant in ("diffusion", "full"):
            rows.append(_guard(lambda: train_case(bench, config, shape, variant, args), f"train {variant}", _size(shape)))
    shape = plan.PlanShape(*sizes["generate"])
    offload_extra: dict = {}
    for mode in ("none", "model", "sequential"):
        case = "generate step" if mode == "none" else f"generate step (offload {mode})"
        rows.append(_guard(lambda: generate_case(bench, config, shape, args, mode, offload_extra), case, _size(shape)))
    decoded = _guard(lambda: decode_case(bench, config, shape), "VAE decode", _size(shape))
    if decoded:
        rows.append(decoded)
    name = torch.cuda.get_device_name() if bench.cuda else "cpu"
    peak = peak_tflops(name, args.peak_tflops)
    for row in rows:
        row["MFU"] = row["TFLOP/s"] / peak if peak and "TFLOP/s" in row else None
    extra = {"device": name, "preset": config.name, "dtype": str(bench.dtype).replace("torch.", ""),
             "peak_TFLOPs": peak, "gradient_checkpointing": True, "queries": args.queries, **offload_extra}  # fmt: skip
    return rows, extra


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.set_defaults(repeats=3)
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    p.add_argument("--queries", type=int, default=256, help="tracked query points per sample (full method)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak for MFU (default: by name)")
    p.add_argument("--smoke", action="store_true", help="tiny preset, tiny shapes, CPU: checks the script runs")
    args = p.parse_args(argv)
    if args.smoke:  # seconds, not minutes: the tracking head on 256 points is slow on a CPU
        args.repeats, args.warmup, args.queries = 1, 0, min(args.queries, 4)
        # one thread: tiny ops on cores that other jobs keep busy ran 50x slower with two
        torch.set_num_threads(1)
    if not args.smoke and not torch.cuda.is_available():
        print("benchmarks/gpu.py: CUDA is not available; nothing to measure (use --smoke to check the script on CPU)")
        return 0
    rows, extra = run(args)
    report("GPU benchmark" + (" (smoke: tiny preset on CPU)" if args.smoke else ""), rows, as_json=args.json, extra=extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
