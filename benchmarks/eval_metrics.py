"""Evaluation metrics: wall time and frames/s of each metric on one 81-frame 480x832 video pair (CPU).

The reference is ../shared/data/real/bear.mp4 cover-resized to the size and its first frames
(smooth moving noise when that file is absent); the "generated" video is the reference
blurred, shifted by a pixel and with noise added. The timings do not depend on the content
much, except pose estimation, which does real work only when the video's camera moves
(bear's handheld camera pans; intrinsics assumed: 60 degree horizontal field of view).
LPIPS runs the real AlexNet architecture with random weights (timing only).

    python benchmarks/eval_metrics.py [--json] [--frames 81] [--size 480x832] [--repeats 3]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, report, time_call

from mvt4g.camera import Intrinsics, preset_trajectory
from mvt4g.eval import (
    camera_errors,
    epipolar_error,
    estimate_poses,
    image_metrics,
    learned,
)
from mvt4g.eval.inputs import MetricUnavailable
from mvt4g.io.frames import resize_cover
from mvt4g.io.video import read_video

BEAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "bear.mp4"


def reference_video(frames: int, height: int, width: int) -> tuple[np.ndarray, str]:
    if BEAR.is_file():
        video = read_video(BEAR).frames
        video, _ = resize_cover(video, height, width)
        keep = np.minimum(np.arange(frames), len(video) - 1)  # pad by repeating the last frame if short
        return np.ascontiguousarray(video[keep]), "bear.mp4"
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.random((height // 8, (width + 8 * frames) // 8, 3)).astype(np.float32),
                      (width + 8 * frames, height), interpolation=cv2.INTER_CUBIC)  # fmt: skip
    video = np.stack([base[:, 8 * t : 8 * t + width] for t in range(frames)])
    return (np.clip(video, 0, 1) * 255).astype(np.uint8), "moving noise"


def degrade(video: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    out = np.empty_like(video)
    for t, frame in enumerate(video):
        blurred = cv2.GaussianBlur(frame, (5, 5), 1.0)
        shifted = np.roll(blurred, 1, axis=1)
        out[t] = np.clip(shifted.astype(np.int16) + rng.integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--size", default="480x832")
    p.set_defaults(repeats=3)
    args = p.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    ref, source = reference_video(args.frames, height, width)
    gen = degrade(ref)
    T = len(ref)
    intr = Intrinsics.from_fov(60.0, width, height)
    mask = np.zeros(ref.shape[:3], bool)
    mask[:, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = True
    rows: list[dict] = []

    def add(name: str, fn, repeats: int, note: str = "") -> object:
        result = {}

        def run():
            result["value"] = fn()

        seconds = time_call(run, repeats=repeats, warmup=0)
        value = result["value"]
        rows.append({"metric": name, "seconds": seconds, "frames_per_s": T / seconds,
                     "value": value if isinstance(value, float) else None, "note": note})  # fmt: skip
        return value

    r = max(1, args.repeats)
    add("psnr", lambda: image_metrics.psnr(gen, ref), r)
    add("ssim", lambda: image_metrics.ssim(gen, ref), r)
    add("masked_psnr", lambda: image_metrics.psnr(gen, ref, mask=mask), r, "central half mask")
    add("masked_ssim", lambda: image_metrics.ssim(gen, ref, mask=mask), r, "central half mask")
    add("temporal_flickering", lambda: image_metrics.temporal_flickering(gen), r)

    with tempfile.TemporaryDirectory() as tmp:
        import torch

        model = learned.LPIPS()  # real AlexNet widths, random weights: timing only
        torch.save(model.net.state_dict(), Path(tmp) / learned.ALEXNET_FILE)
        torch.save({f"lin{k}.model.1.weight": torch.rand(1, w, 1, 1) for k, w in enumerate((64, 192, 384, 256, 256))},
                   Path(tmp) / learned.LPIPS_LINEAR_FILE)  # fmt: skip
        lp = learned.load_lpips(tmp)
        learned.lpips(lp, gen[:1], ref[:1])  # warm-up (first-call allocation), not timed
        add("lpips (random AlexNet)", lambda: learned.lpips(lp, gen, ref), 1, f"torch threads {torch.get_num_threads()}")

    est = add("pose_estimation", lambda: estimate_poses(gen, intr), 1)
    note = f"mode {est.mode}, {int(est.registered.sum())}/{T} frames registered"
    rows[-1]["note"] = note
    target = preset_trajectory("arc-left", T)
    if est.complete:
        add("camera_errors (both conventions)",
            lambda: (camera_errors(est.c2w, target, "camctrl"), camera_errors(est.c2w, target, "mean")), 20)  # fmt: skip
    still = np.tile(np.eye(4), (T, 1, 1))
    try:
        add("epipolar_error", lambda: epipolar_error(ref, gen, intr, still, intr, still).value, 1,
            "identity cameras: homography model")  # fmt: skip
    except MetricUnavailable as exc:
        rows.append({"metric": "epipolar_error", "seconds": None, "frames_per_s": None, "value": None, "note": str(exc)})
    report(f"evaluation metrics, {T} frames at {height}x{width} ({source}), CPU", rows, as_json=args.json)


if __name__ == "__main__":
    main()
