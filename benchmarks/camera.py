"""Pose estimators side by side: mvt4g's builtin SfM vs COLMAP (pycolmap), on videos with exact cameras.

Clips with exact cameras:
  * ``scene``: the analytic textured scene of ``tests/test_eval_scene.py`` (a moving box in it)
    rendered along the presets arc-left, translate-right, zoom-in, pan-left, for each
    ``--seeds`` texture seed, at 96x160 (``--frames``) and one arc-left clip at 480x832
    (``--large-frames``);
  * ``synth``: every view of ``mvt4g synth`` clips (``--synth DIR``, optional), whose cameras are exact.
Each estimate is scored with ``camctrl`` (RotErr radians summed over frames, TransErr of
max-normalised centres summed) against the exact cameras; a failure (exception or unregistered
frames) is counted, not scored.

Real videos (``--real DIR``, default ../shared/data/real): no ground truth. The first
``--real-frames`` frames at 240x416 (cover-resized), 60 degree horizontal field of view assumed.
Reported: registered fraction, failures, time, and the two estimators' disagreement
(camctrl RotErr of one estimate against the other, when both are complete).

    python benchmarks/camera.py [--json] [--frames 13] [--seeds 0,1] [--synth DIR] [--real DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import parser, report

from mvt4g.camera import Intrinsics
from mvt4g.eval.camera_metrics import camera_errors
from mvt4g.eval.colmap_poses import estimate_poses_colmap
from mvt4g.eval.pose_estimation import estimate_poses

ESTIMATORS = {"builtin": estimate_poses, "colmap": estimate_poses_colmap}
PRESETS = ("arc-left", "translate-right", "zoom-in", "pan-left")


def _run(fn, video, intr):
    start = time.perf_counter()
    try:
        est = fn(video, intr)
        err = None
    except Exception as exc:  # noqa: BLE001 (a failure is a result here)
        est, err = None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:80]}"
    return est, err, time.perf_counter() - start


def _score(kind, name, video, intr, c2w):
    out = []
    for est_name, fn in ESTIMATORS.items():
        est, err, sec = _run(fn, video, intr)
        reg = float(est.registered.mean()) if est is not None else 0.0
        row = {"clip": kind, "item": name, "size": f"{video.shape[1]}x{video.shape[2]}", "frames": len(video),
               "estimator": est_name, "registered": reg, "failed": est is None or not est.complete,
               "rot_err_rad": None, "trans_err": None, "seconds": sec, "note": err or ""}  # fmt: skip
        if est is not None and est.complete and c2w is not None:
            e = camera_errors(est.c2w, c2w, "camctrl")
            row["rot_err_rad"], row["trans_err"] = e.rot_err, e.trans_err
        row["_est"] = est
        out.append(row)
    return out


def scene_rows(frames: int, seeds: list[int], large_frames: int) -> list[dict]:
    from test_eval_scene import render_preset

    rows = []
    for seed in seeds:
        for preset in PRESETS:
            video, intr, c2w = render_preset(preset, frames, moving=True, height=96, width=160, seed=seed)
            rows += _score("scene", f"{preset} s{seed}", video, intr, c2w)
    if large_frames:
        video, intr, c2w = render_preset("arc-left", large_frames, moving=True, height=480, width=832)
        rows += _score("scene", "arc-left s0", video, intr, c2w)
    return rows


def synth_rows(root: Path) -> list[dict]:
    from mvt4g.io.clip import read_clip

    rows = []
    for clip_dir in sorted(p for p in root.rglob("meta.json")):
        clip = read_clip(clip_dir.parent)
        for view, cams in clip.cameras.items():
            video = clip.read_video(view)
            rows += _score("synth", f"{clip_dir.parent.name}/{view}", video, Intrinsics.from_K(cams.K[0], clip.width, clip.height),
                           cams.c2w)  # fmt: skip
    return rows


def real_rows(root: Path, frames: int) -> list[dict]:
    from mvt4g.io.frames import resize_cover
    from mvt4g.io.video import read_video

    rows = []
    for path in sorted(root.glob("*.mp4")):
        video = resize_cover(read_video(path, max_frames=frames).frames, 240, 416)[0]
        intr = Intrinsics.from_fov(60.0, 416, 240)
        pair = _score("real", path.stem, video, intr, None)
        a, b = (r["_est"] for r in pair)
        if a is not None and b is not None and a.complete and b.complete:
            d = camera_errors(a.c2w, b.c2w, "camctrl")
            for r in pair:
                r["note"] = (r["note"] + " " if r["note"] else "") + f"builtin vs colmap RotErr {d.rot_err:.4f} rad"
        rows += pair
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for kind in ("scene", "synth", "real"):
        for est_name in ESTIMATORS:
            sel = [r for r in rows if r["clip"] == kind and r["estimator"] == est_name]
            if not sel:
                continue
            scored = [r for r in sel if r["rot_err_rad"] is not None]
            out.append({"clip": f"ALL {kind}", "item": f"{len(sel)} videos", "estimator": est_name,
                        "registered": float(np.mean([r["registered"] for r in sel])),
                        "failed": sum(r["failed"] for r in sel),
                        "rot_err_rad": float(np.median([r["rot_err_rad"] for r in scored])) if scored else None,
                        "trans_err": float(np.median([r["trans_err"] for r in scored])) if scored else None,
                        "seconds": float(np.sum([r["seconds"] for r in sel])),
                        "note": "median over scored videos; seconds summed"})  # fmt: skip
    return out


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--large-frames", type=int, default=9, help="arc-left at 480x832 (0: skip)")
    ap.add_argument("--synth", type=Path, default=None, help="folder of mvt4g synth clips")
    ap.add_argument("--real", type=Path, default=HERE.parent.parent / "shared" / "data" / "real")
    ap.add_argument("--real-frames", type=int, default=17)
    args = ap.parse_args()
    import pycolmap
    rows = scene_rows(args.frames, [int(s) for s in args.seeds.split(",")], args.large_frames)
    if args.synth is not None:
        rows += synth_rows(args.synth)
    if args.real is not None and args.real.is_dir():
        rows += real_rows(args.real, args.real_frames)
    for r in rows:
        r.pop("_est", None)
    report("pose estimators: builtin vs colmap (camctrl errors vs exact cameras)", rows + summary(rows),
           as_json=args.json, extra={"pycolmap": pycolmap.__version__})  # fmt: skip


if __name__ == "__main__":
    main()
