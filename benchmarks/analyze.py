"""Cost of `mvt4g analyze`: time per (layer, timestep) cell.

Two measurements per preset (random weights):

    forward   one forward pass with Q/K taps on every block (sink does nothing), divided by the
              number of blocks: the model's share of a cell
    metrics   correspondence metrics of one layer (PCK with cycle check, attention and
              confidence scores) for ``--queries`` tracks on every latent frame of both views
    cell      forward share + metrics: the marginal cost of one (layer, timestep) cell

and, for presets whose default video is small (tiny, small), an end-to-end run on a synthetic
clip written to a temporary folder (``mvt4g synth``): the analysis loop's wall time divided by
its cells (video decoding, encoding, Plücker maps and all).

Random latents and tracks stand in for a clip in the first two measurements, so any preset can
be timed (``--presets wan2.1-1.3b --device cuda`` on a GPU; tracks on a 30x52 token grid).

Usage:

    python benchmarks/analyze.py                           # tiny on CPU, table on stdout
    python benchmarks/analyze.py --json                    # one JSON object
    python benchmarks/analyze.py --presets tiny small --queries 256 --threads 1
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, report, time_call

from mvt4g.analysis.correspondence import correspondence_sums, default_delta_px
from mvt4g.analysis.runner import AnalysisSettings, plan_analysis, run_analysis
from mvt4g.analysis.taps import LayerTaps
from mvt4g.model import MVT4GModel, preset, save_pretrained


def synthetic_inputs(cfg, queries: int, device, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = cfg.latent_frames(cfg.video.frames)
    height, width = cfg.video.height, cfg.video.width
    sf = cfg.autoencoder.spatial_factor
    shape = (1, cfg.backbone.in_channels, frames, height // sf, width // sf)
    ref = torch.randn(shape, generator=g).to(device, dtype)
    tgt = torch.randn(shape, generator=g).to(device, dtype)
    rays = torch.randn(1, 2, frames, 6, height, width, generator=g).to(device, dtype)
    tracks = torch.rand(2, frames, queries, 2, generator=g, dtype=torch.float64) * torch.tensor([width, height])
    visible = torch.rand(2, frames, queries, generator=g) < 0.8
    return ref, tgt, rays, tracks.to(device), visible.to(device), (height, width), frames


def time_preset(name: str, queries: int, repeats: int, device: str, dtype: torch.dtype) -> dict:
    cfg = preset(name)
    cfg.use_tracking_head = False
    torch.manual_seed(0)
    model = MVT4GModel(cfg).to(device=device, dtype=dtype).eval()
    ref, tgt, rays, tracks, visible, size, frames = synthetic_inputs(cfg, queries, device, dtype)
    layers = list(range(cfg.backbone.num_layers))
    t = torch.tensor([500.0], device=device)
    taps_holder = {}

    def keep_middle(layer, tap):
        if layer == cfg.tap_layer:
            taps_holder["tap"] = tap

    def forward():
        with torch.no_grad():
            LayerTaps(model, layers, keep_middle)(ref, tgt, t, plucker=rays)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    forward_s = time_call(forward, repeats=repeats)
    tap = taps_holder["tap"]
    delta = default_delta_px(cfg.token_stride)

    def metrics():
        correspondence_sums(tap.q[0], tap.k[0], tracks, visible, size, delta_px=delta)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    metrics_s = time_call(metrics, repeats=repeats)
    h, w = cfg.token_grid(*size)
    return {
        "preset": name, "device": device, "layers": len(layers), "latent_frames": frames,
        "tokens": 2 * frames * h * w, "tracks": queries, "forward_s": forward_s,
        "forward_per_layer_s": forward_s / len(layers), "metrics_per_layer_s": metrics_s,
        "cell_s": forward_s / len(layers) + metrics_s,
    }  # fmt: skip


def end_to_end(name: str, queries: int, timesteps: int, device: str) -> float:
    """Seconds per cell of the real analysis loop on a synthetic clip (tiny/small video sizes)."""
    from mvt4g.synth import SynthSettings, synthesize_one

    cfg = preset(name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        save_pretrained(MVT4GModel(cfg), root / "model")
        (root / "synth").mkdir()
        clip = synthesize_one(
            SynthSettings(views=2, frames=cfg.video.frames, height=cfg.video.height, width=cfg.video.width,
                          points=max(queries, 64), seed=0), 0, root / "synth")  # fmt: skip
        settings = AnalysisSettings(timesteps=timesteps, queries=queries, device=device)
        plan = plan_analysis(root / "model", [clip], settings)
        start = time.perf_counter()
        run_analysis(plan, settings)
        return (time.perf_counter() - start) / plan.cells


def main() -> None:
    p = parser("Time per (layer, timestep) cell of mvt4g analyze.")
    p.add_argument("--presets", nargs="+", default=["tiny"])
    p.add_argument("--queries", type=int, default=256, help="tracks per pair (each visible latent frame is a query)")
    p.add_argument("--timesteps", type=int, default=4, help="timesteps of the end-to-end run")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave the default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    rows = []
    for name in args.presets:
        row = time_preset(name, args.queries, args.repeats, args.device, dtype)
        if preset(name).video.height * preset(name).video.width <= 128 * 128:
            row["end_to_end_cell_s"] = end_to_end(name, args.queries, args.timesteps, args.device)
        rows.append(row)
    report("mvt4g analyze: seconds per (layer, timestep) cell", rows, as_json=args.json,
           extra={"dtype": args.dtype, "repeats": args.repeats, "numpy": np.__version__})  # fmt: skip


if __name__ == "__main__":
    main()
