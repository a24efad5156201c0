"""Cost of `mvt4g eval` and `mvt4g analyze` on CPU: frames/s of every metric, seconds per analyze cell.

Metrics: one video pair at ``--size`` (default 480x832) and ``--frames`` (default 81), built
as in ``benchmarks/eval_metrics.py``: the reference is ../shared/data/real/bear.mp4
cover-resized (smooth moving noise when that file is absent), the "generated" video is it
blurred, shifted by a pixel and noised. Every weight-free metric ``mvt4g eval`` computes is
timed through the same functions the runner calls (``mvt4g.eval.runner.score_video``, one
metric group at a time, so the numbers include what the runner adds): PSNR, SSIM, their
masked variants, temporal flickering, camera errors (pose estimation included), the epipolar
proxy and track consistency; LPIPS with the real AlexNet widths and random weights.

Analyze: seconds per (layer, timestep) cell of the tiny preset (``benchmarks/analyze.py``'s
``time_preset``: one forward pass with taps on every block divided by the blocks, plus the
correspondence metrics of one layer).

    python benchmarks/eval.py [--json] [--frames 81] [--size 480x832] [--repeats 3] [--skip-analyze]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _common import parser, report, time_call
from eval_metrics import degrade, reference_video

from mvt4g.camera import Intrinsics, ViewCameras, preset_trajectory
from mvt4g.eval import learned
from mvt4g.eval.bench import BenchItem
from mvt4g.eval.runner import EvalSettings, score_video


def _item(ref: np.ndarray, gen_like: np.ndarray) -> BenchItem:
    T, H, W = ref.shape[:3]
    K = Intrinsics.from_fov(60.0, W, H).K
    still = ViewCameras(W, H, K, np.tile(np.eye(4), (T, 1, 1)))
    target = ViewCameras(W, H, K, preset_trajectory("arc-left", T))
    mask = np.zeros((T, H, W), bool)
    mask[:, H // 4 : 3 * H // 4, W // 4 : 3 * W // 4] = True
    return BenchItem("bench", "arc-left", ref, still, target, ground_truth=gen_like, masks=mask, fps=30.0)


def metric_rows(frames: int, height: int, width: int, repeats: int) -> tuple[list[dict], str]:
    ref, source = reference_video(frames, height, width)
    gen = degrade(ref)
    # Ground truth = the reference: pixel metrics see a realistic degradation; the geometric
    # metrics compare reference and generated under static cameras (homography model).
    item = _item(ref, ref)
    item.target_cameras = item.reference_cameras
    settings = EvalSettings()
    T = len(ref)
    rows = []

    def add(group: str, reps: int, lpips_model=None, note: str = "") -> None:
        holder = {}

        def run():
            holder["out"] = score_video(item, gen, [group], settings, lpips_model)

        seconds = time_call(run, repeats=reps, warmup=0)
        metrics, details, skipped = holder["out"]
        value = next(iter(metrics.values()), None)
        extra = skipped.get(group, "")
        if group == "camera" and "pose" in details:
            extra = f"pose mode {details['pose']['mode']}, {details['pose']['registered']}/{T} registered" + (
                f"; {extra}" if extra else "")  # fmt: skip
        rows.append({"item": group, "seconds": seconds, "frames_per_s": T / seconds, "value": value,
                     "note": "; ".join(x for x in (note, extra) if x)})  # fmt: skip

    for group in ("psnr", "ssim", "masked_psnr", "masked_ssim", "temporal_flickering"):
        add(group, repeats)
    with tempfile.TemporaryDirectory() as tmp:
        import torch

        model = learned.LPIPS()  # real AlexNet widths, random weights: timing only
        torch.save(model.net.state_dict(), Path(tmp) / learned.ALEXNET_FILE)
        torch.save({f"lin{k}.model.1.weight": torch.rand(1, w, 1, 1) for k, w in enumerate((64, 192, 384, 256, 256))},
                   Path(tmp) / learned.LPIPS_LINEAR_FILE)  # fmt: skip
        lp = learned.load_lpips(tmp)
        learned.lpips(lp, gen[:1], ref[:1])  # first-call allocation, not timed
        add("lpips", 1, lp, f"random AlexNet, torch threads {torch.get_num_threads()}")
    add("camera", 1, note="pose estimation + camera errors")
    add("epipolar", 1)
    add("tracks", 1, note="DIS flow both ways in both videos + SIFT link")
    return rows, source


def analyze_rows(repeats: int) -> list[dict]:
    import torch
    from analyze import time_preset

    row = time_preset("tiny", 256, repeats, "cpu", torch.float32)
    return [{"item": "analyze cell (tiny)", "seconds": row["cell_s"], "frames_per_s": None, "value": None,
             "note": f"per (layer, timestep): forward share {row['forward_per_layer_s']:.4f} s + metrics "
                     f"{row['metrics_per_layer_s']:.4f} s, {row['tokens']} tokens, 256 tracks"}]  # fmt: skip


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--size", default="480x832")
    p.add_argument("--skip-analyze", action="store_true", help="time the metrics only")
    p.set_defaults(repeats=3)
    args = p.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    start = time.perf_counter()
    rows, source = metric_rows(args.frames, height, width, max(1, args.repeats))
    if not args.skip_analyze:
        rows += analyze_rows(max(1, args.repeats))
    report(f"mvt4g eval metrics ({args.frames} frames at {height}x{width}, {source}) and analyze, CPU", rows,
           as_json=args.json, extra={"total_s": round(time.perf_counter() - start, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
