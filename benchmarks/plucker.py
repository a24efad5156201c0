"""Plücker ray maps: 21 latent frames at 480x832, timed against a plain copy of an array of the same size.

Target (foundation issue): float32 maps in at most 1.5x the time of copying the output-sized
array into a fresh array, measured in the same run.

    python benchmarks/plucker.py [--json] [--frames 21] [--size 480x832]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, report, time_call  # noqa: E402

from mvt4g.camera import Intrinsics, look_at, plucker_rays  # noqa: E402


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=21)
    p.add_argument("--size", default="480x832")
    args = p.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    K = Intrinsics.from_fov(60.0, width, height).K
    angles = np.linspace(0, 0.5, args.frames)
    c2w = np.stack([look_at([3 * np.sin(a), -0.5, -3 * np.cos(a)], [0, 0, 0]) for a in angles])
    rays = args.frames * height * width
    rows = []
    for dtype in (np.float32, np.float16):
        template = plucker_rays(K, c2w, height, width, dtype=dtype)
        copy_s = time_call(lambda t=template: np.array(t, copy=True), repeats=args.repeats)
        plucker_s = time_call(lambda d=dtype: plucker_rays(K, c2w, height, width, dtype=d), repeats=args.repeats)
        rows.append({
            "case": f"numpy {np.dtype(dtype).name}",
            "plucker_s": plucker_s,
            "copy_s": copy_s,
            "ratio": plucker_s / copy_s,
            "Mrays_per_s": rays / plucker_s / 1e6,
            "MB": template.nbytes / 2**20,
        })
    import torch

    Kt, c2wt = torch.tensor(K), torch.tensor(c2w)
    template = plucker_rays(Kt, c2wt, height, width)
    copy_s = time_call(lambda: template.clone(), repeats=args.repeats)
    torch_s = time_call(lambda: plucker_rays(Kt, c2wt, height, width), repeats=args.repeats)
    rows.append({"case": "torch float32", "plucker_s": torch_s, "copy_s": copy_s, "ratio": torch_s / copy_s,
                 "Mrays_per_s": rays / torch_s / 1e6, "MB": template.numel() * 4 / 2**20})
    report(f"plucker_rays, {args.frames} frames at {height}x{width} (target: numpy float32 ratio <= 1.5)", rows,
           as_json=args.json, extra={"target_ratio": 1.5, "met": rows[0]["ratio"] <= 1.5})


if __name__ == "__main__":
    main()
