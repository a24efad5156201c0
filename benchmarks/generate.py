"""Cost of `mvt4g generate`: sampler overhead per step, and end-to-end seconds.

Sections:

    overhead   per denoising step, our sampler (``GeneratePipeline.generate``'s loop: the model
               call, the Euler update, casts, the progress callback) against calling the bare
               model with the same inputs the same number of times. Target ratio <= 1.05.
               CPU: tiny and small presets with random weights.
    end2end    the tiny preset on CPU from a saved model directory, as the CLI runs it:
               load, read + fit the reference (bear.mp4 from ../shared/data when present, a
               synthetic video otherwise), encode, denoise (--steps), decode, write the mp4,
               trajectory and metadata. At 17 frames (the preset's) and 81 (the CLI default).
    gpu        only when CUDA is available: wan2.1-1.3b with random weights (bf16) and a
               random full-size Wan VAE (float32), 81 frames at 480x832 (2 x 21 x 30 x 52 =
               65,520 tokens): seconds per step (sampler vs bare model), encode and decode
               seconds (tiled decoding when a whole-frame decode runs out of memory), total
               for --gpu-steps steps and extrapolated to 50.

Overhead timing: both sides run interleaved, ``--repeats`` times, median of the per-step
times. Usage:

    python benchmarks/generate.py                   # table
    python benchmarks/generate.py --json            # one JSON object
    python benchmarks/generate.py --sections gpu --gpu-steps 10
    python benchmarks/generate.py --sections gpu --gpu-preset tiny-wanvae --gpu-device cpu   # dry run
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, report

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import preset_trajectory
from mvt4g.model.autoencoder import build_autoencoder
from mvt4g.model.config import preset
from mvt4g.model.mvt4g_model import MVT4GModel
from mvt4g.sample.pipeline import GeneratePipeline
from mvt4g.sample.reference import PreparedReference
from mvt4g.sample.sampler import SamplingSettings
from mvt4g.sample.targets import target_cameras

BEAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "bear.mp4"


def _reference(frames: int, height: int, width: int, device: str = "cpu") -> PreparedReference:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (frames, height, width, 3), dtype=np.uint8)
    K = Intrinsics.from_focal_mm(24.0, width, height).K
    return PreparedReference(None, video, 30.0, ViewCameras(width, height, K, np.tile(np.eye(4), (frames, 1, 1))), {})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def overhead(pipe: GeneratePipeline, frames: int, height: int, width: int, steps: int, repeats: int) -> dict:
    """Per-step seconds of the pipeline's sampler loop and of the bare model on the same inputs."""
    ref = _reference(frames, height, width)
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-left", frames))
    settings = SamplingSettings(steps=steps)
    dev, dt = pipe.device, pipe.dtype
    with torch.inference_mode():
        video = torch.from_numpy(ref.frames).to(dev).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        lat = pipe.autoencoder.encode(video).to(dt)
        cam = pipe._camera_inputs(ref.cameras, tgt, frames, (height, width))
        x = torch.randn(lat.shape, device=dev).to(dt)
        t = torch.full((1,), 500.0, device=dev)

        def bare() -> float:
            _sync(dev)
            start = time.perf_counter()
            for _ in range(steps):
                pipe.model(lat, x, t, tap=False, **cam)
            _sync(dev)
            return (time.perf_counter() - start) / steps

        def ours() -> float:
            return pipe.generate(ref, tgt, settings=settings, callback=lambda d, n: None).info["timings"]["per_step_s"]

        ours(), bare()  # warm-up (allocator, kernels)
        a, b = [], []
        for _ in range(repeats):
            a.append(ours())
            b.append(bare())
    s_ours, s_bare = statistics.median(a), statistics.median(b)
    return {"per_step_sampler_s": s_ours, "per_step_bare_s": s_bare, "ratio": s_ours / s_bare}


def section_overhead(repeats: int) -> list[dict]:
    rows = []
    for name, steps in (("tiny", 10), ("small", 5)):
        torch.manual_seed(0)
        cfg = preset(name)
        pipe = GeneratePipeline.from_modules(MVT4GModel(cfg), build_autoencoder(cfg.autoencoder))
        v = cfg.video
        rows.append({"section": "overhead", "case": f"{name} cpu {v.frames}x{v.height}x{v.width}",
                     **overhead(pipe, v.frames, v.height, v.width, steps, repeats)})  # fmt: skip
    return rows


def section_end_to_end(steps: int) -> list[dict]:
    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.sample.batch import plan_jobs, run_jobs
    from mvt4g.sample.reference import ReferenceOptions, plan_reference
    from mvt4g.sample.targets import trajectory_targets

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        save_pretrained(MVT4GModel(preset("tiny")), tmp / "tiny")
        source = BEAR
        if not source.is_file():
            from mvt4g.io.video import write_video

            source = write_video(tmp / "synthetic.mp4", _reference(82, 480, 854).frames, fps=30)
        for frames in (17, 81):
            start = time.perf_counter()
            pipe = GeneratePipeline(tmp / "tiny", device="cpu")
            opts = ReferenceOptions(frames=frames, height=32, width=32)
            jobs = plan_jobs([plan_reference(source, opts)], trajectory_targets(["arc-left"]),
                             out_dir=tmp / f"out{frames}", size=(32, 32), token_stride=4)  # fmt: skip
            (outcome,) = run_jobs(pipe, jobs, opts, settings=SamplingSettings(steps=steps))
            total = time.perf_counter() - start
            assert outcome.ok, outcome.error
            tm = outcome.info["timings"]
            rows.append({"section": "end2end", "case": f"tiny cpu {frames}x32x32, {steps} steps ({source.name})",
                         "load_s": pipe.load_seconds, "encode_s": tm["encode_s"], "denoise_s": tm["denoise_s"],
                         "decode_s": tm["decode_s"], "item_s": outcome.seconds, "total_s": total})  # fmt: skip
    return rows


def section_gpu(steps: int, repeats: int, preset_name: str = "wan2.1-1.3b", device: str = "cuda") -> list[dict]:
    dev = torch.device(device)
    torch.manual_seed(0)
    cfg = preset(preset_name)
    with torch.device(dev):
        model = MVT4GModel(cfg).to(torch.bfloat16 if dev.type == "cuda" else torch.float32)
    autoencoder = build_autoencoder(cfg.autoencoder).to(dev)  # random full-size Wan VAE, float32
    pipe = GeneratePipeline.from_modules(model, autoencoder)
    v = cfg.video
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    row = {"section": "gpu", "case": f"{preset_name} {str(pipe.dtype)[6:]} {where} {v.frames}x{v.height}x{v.width}"}
    row.update(overhead(pipe, v.frames, v.height, v.width, 2, repeats))
    ref = _reference(v.frames, v.height, v.width)
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-left", v.frames))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = pipe.generate(ref, tgt, settings=SamplingSettings(steps=steps))
    total = time.perf_counter() - start
    tm = result.info["timings"]
    row.update({"steps": steps, "encode_s": tm["encode_s"], "denoise_s": tm["denoise_s"], "decode_s": tm["decode_s"],
                "tiled_decode": result.info["tiled_decode"], "total_s": total,
                "total_50_steps_s": total - tm["denoise_s"] + 50 * tm["per_step_s"],
                "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None})  # fmt: skip
    return [row]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(repeats=5)
    p.add_argument("--sections", default="overhead,end2end,gpu", help="comma-separated: overhead, end2end, gpu")
    p.add_argument("--steps", type=int, default=50, help="denoising steps of the end-to-end runs")
    p.add_argument("--gpu-steps", type=int, default=10, help="denoising steps of the timed GPU generation")
    p.add_argument("--gpu-preset", default="wan2.1-1.3b", help="model preset of the gpu section")
    p.add_argument("--gpu-device", default="cuda", help="device of the gpu section (cpu: a dry run of its code)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = set(args.sections.split(","))
    rows: list[dict] = []
    if "overhead" in wanted:
        rows += section_overhead(args.repeats)
    if "end2end" in wanted:
        rows += section_end_to_end(args.steps)
    if "gpu" in wanted:
        if torch.cuda.is_available() or args.gpu_device == "cpu":
            rows += section_gpu(args.gpu_steps, max(1, args.repeats // 2), args.gpu_preset, args.gpu_device)
        else:
            rows.append({"section": "gpu", "case": "skipped: no CUDA device"})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    report("mvt4g generate", [{k: r.get(k) for k in keys} for r in rows], as_json=args.json)


if __name__ == "__main__":
    main()
