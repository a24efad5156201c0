"""Accuracy and speed of `mvt4g tracks` methods (geometry, flow).

Accuracy (TAP-Vid metrics per pair type, mvt4g.tracks.metrics, mean over scenes):

- synth: scenes from `mvt4g synth` rendered here with a seed not used while developing
  (default 1234), 4 views x 21 frames at 96x160, in two query settings:
  "synth-q": the clip's own exact tracks (2048 random queries over all views and frames, half
  of them on moving objects; "first" query mode), and "grid": the paper's 30x52 grid in every
  view at frame 0, with exact ground truth from the synth tracker (mvt4g.synth.tracks_gt);
- bear: a frame of ../shared/data/real/bear.mp4 on a plane seen by 3 moving cameras
  (mvt4g.tracks.planar: known homographies, exact tracks), 21 frames at 96x160, 30x52 grid
  in every view at frame 0.

Speed: frames per second (views x frames / wall seconds) of each stage of the flow method
(mvt4g.tracks.flow.pipeline.STEPS: dense flow, chaining, association (plane sweeps), static fits,
fills, ...) and of the whole call, on a bear planar scene of 4 views x 21 frames with the 30x52
grid in every view at frame 0, at 96x160 and at 480x832, each beside a reference measured in the
same run on the same frames: the bare OpenCV call of the flow stage (DIS, "medium" preset, forward
and backward between consecutive frames, one instance per view), so ratios compare across
machines and loads ("vs_reference": a stage's frames/s over the reference's). The whole call's
accuracy on that scene (exact tracks) is printed with it, and the geometry method's speed.

    python benchmarks/tracks.py [--json] [--scenes 3] [--seed 1234] [--skip-speed | --speed-only]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, report

from mvt4g.io.clip import read_clip
from mvt4g.tracks.exact.pipeline import geometry_tracks
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.pipeline import flow_tracks
from mvt4g.tracks.format import TrackSet, read_tracks
from mvt4g.tracks.metrics import mean_scores, score_tracks
from mvt4g.tracks.planar import planar_scene
from mvt4g.tracks.queries import grid_queries

BEAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "bear.mp4"


def _run(method: str, videos, cameras, queries, depths=None, masks=None):
    start = time.perf_counter()
    if method == "geometry":
        tracks, visible, _ = geometry_tracks(cameras, depths, queries, masks=masks, videos=videos)
    else:
        tracks, visible, _ = flow_tracks(videos, cameras, queries, FlowConfig())
    return tracks, visible, time.perf_counter() - start


def _rows(case: str, method: str, scores: dict, seconds: float) -> list[dict]:
    return [
        {"case": case, "method": method, "pairs": pair, "delta_avg": s["delta_avg"], "AJ": s["average_jaccard"],
         "OA": s["occlusion_accuracy"], "points": s["points"], "seconds": round(seconds, 1)}
        for pair, s in scores.items()
    ]


def synth_accuracy(scenes: int, seed: int, workdir: Path) -> list[dict]:
    from mvt4g.synth.pipeline import SynthSettings, synthesize_one
    from mvt4g.synth.sampling import sample_scene
    from mvt4g.synth.tracks_gt import track_queries

    settings = SynthSettings(seed=seed)
    per: dict[tuple[str, str], list] = {}
    seconds: dict[tuple[str, str], float] = {}
    for index in range(scenes):
        clip = read_clip(synthesize_one(settings, index, workdir))
        views = clip.views
        videos = [clip.read_video(v) for v in views]
        cameras = [clip.cameras[v] for v in views]
        depths = [clip.read_depth(v) for v in views]
        masks = [clip.read_masks(v) for v in views]
        own = read_tracks(clip.tracks_path)
        scene_seq = np.random.SeedSequence([seed, index]).spawn(2)[0]
        scene = sample_scene(scene_seq, views=settings.views, frames=settings.frames, height=settings.height,
                             width=settings.width, num_objects=settings.num_objects)  # fmt: skip
        grid = grid_queries(clip.height, clip.width, list(range(len(views))), [0])
        exact = track_queries(scene, grid)
        settings_gt = {
            "synth-q": own,
            "grid": TrackSet(exact.tracks, exact.visible, grid, (clip.height, clip.width), "synth", views),
        }
        for qname, gt in settings_gt.items():
            for method in ("geometry", "flow"):
                tracks, visible, sec = _run(method, videos, cameras, gt.queries, depths, masks)
                pred = TrackSet(tracks, visible, gt.queries, gt.image_size, method)
                per.setdefault((qname, method), []).append(score_tracks(pred, gt, "first"))
                seconds[(qname, method)] = seconds.get((qname, method), 0.0) + sec
    rows = []
    for (qname, method), scores in per.items():
        rows += _rows(f"synth {qname}", method, mean_scores(scores), seconds[(qname, method)] / scenes)
    return rows


def bear_accuracy(texture: np.ndarray, seeds: list[int]) -> list[dict]:
    per: dict[str, list] = {}
    seconds: dict[str, float] = {}
    for seed in seeds:
        scene = planar_scene(texture, views=3, frames=21, height=96, width=160, seed=seed)
        q = grid_queries(96, 160, [0, 1, 2], [0])
        gt_tracks, gt_vis = scene.exact_tracks(q)
        gt = TrackSet(gt_tracks, gt_vis, q, (96, 160), "planar")
        for method in ("geometry", "flow"):
            tracks, visible, sec = _run(method, scene.videos, scene.cameras, q, scene.depths)
            per.setdefault(method, []).append(score_tracks(TrackSet(tracks, visible, q, (96, 160), method), gt, "first"))
            seconds[method] = seconds.get(method, 0.0) + sec
    rows = []
    for method, scores in per.items():
        rows += _rows("bear planar", method, mean_scores(scores), seconds[method] / len(seeds))
    return rows


def _reference_flow(videos: list[np.ndarray]) -> float:
    """Seconds of the bare OpenCV flow call on these frames: DIS "medium", forward and backward
    between consecutive frames of every view (grey), one instance per view."""
    import cv2

    grays = [[cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video] for video in videos]
    start = time.perf_counter()
    for gray in grays:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        for t in range(len(gray) - 1):
            dis.calc(gray[t], gray[t + 1], None)
            dis.calc(gray[t + 1], gray[t], None)
    return time.perf_counter() - start


def _row(case: str, stage: str, count: int, queries: int, sec: float, ref: float, score: dict | None = None) -> dict:
    score = score or {}
    return {"case": case, "method": "flow", "stage": stage, "views_x_frames": count, "queries": queries,
            "seconds": round(sec, 3), "frames_per_s": round(count / max(sec, 1e-9), 2),
            "vs_reference": round(ref / max(sec, 1e-9), 3), "delta_avg": score.get("delta_avg"),
            "AJ": score.get("average_jaccard"), "OA": score.get("occlusion_accuracy")}


def speed_case(texture: np.ndarray, height: int, width: int, views: int = 4, frames: int = 21) -> list[dict]:
    """Rows of one size: the reference, every stage of the flow method, its total (with accuracy), the geometry method's total."""
    from mvt4g.tracks.flow.pipeline import STEPS

    case = f"speed {height}x{width}"
    scene = planar_scene(texture, views=views, frames=frames, height=height, width=width, seed=0)
    q = grid_queries(height, width, list(range(views)), [0])
    count, n = views * frames, len(q)
    ref_before = _reference_flow(scene.videos)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    tracks, visible, _ = flow_tracks(scene.videos, scene.cameras, q, FlowConfig(), timings=timings)
    total = time.perf_counter() - start
    ref = min(ref_before, _reference_flow(scene.videos))  # before and after: the load may change
    gt_tracks, gt_vis = scene.exact_tracks(q)
    gt = TrackSet(gt_tracks, gt_vis, q, (height, width), "planar")
    score = score_tracks(TrackSet(tracks, visible, q, (height, width), "flow"), gt, "first")["all"]
    rows = [_row(case, "reference: cv2 DIS medium fwd+bwd", count, n, ref, ref),
            _row(case, "flow", count, n, timings["flow"], ref),
            _row(case, "direct flow (in chaining)", count, n, timings["direct flow"], ref)]
    rows += [_row(case, name, count, n, timings[name], ref) for name, _ in STEPS]
    rows.append(_row(case, "total", count, n, total, ref, score))
    _, _, sec = _run("geometry", scene.videos, scene.cameras, q, scene.depths)
    rows.append({**_row(case, "total", count, n, sec, ref), "method": "geometry"})
    return rows


def speed(texture: np.ndarray) -> list[dict]:
    return speed_case(texture, 96, 160) + speed_case(texture, 480, 832)


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=3, help="synth scenes (rendered here)")
    p.add_argument("--seed", type=int, default=1234, help="synth run seed (not one used while developing)")
    p.add_argument("--skip-speed", action="store_true", help="accuracy only")
    p.add_argument("--speed-only", action="store_true", help="speed only (no accuracy cases)")
    args = p.parse_args()
    if not BEAR.is_file():
        sys.exit(f"benchmarks/tracks.py needs {BEAR}")
    from mvt4g.io.video import read_video

    texture = read_video(BEAR, max_frames=1).frames[0]
    rows = []
    if not args.speed_only:
        with tempfile.TemporaryDirectory() as tmp:
            rows += synth_accuracy(args.scenes, args.seed, Path(tmp))
        rows += bear_accuracy(texture, [11, 12, 13])
    speed_rows = [] if args.skip_speed else speed(texture)
    if args.json:
        report("tracks", rows + speed_rows, as_json=True)
        return
    if rows:
        report("tracks: accuracy (TAP-Vid, 'first' query mode, mean over scenes)", rows, as_json=False)
        print()
    if speed_rows:
        report("tracks: throughput per stage (frames/s = views x frames / seconds; vs_reference: over the bare flow call)",
               speed_rows, as_json=False)


if __name__ == "__main__":
    main()
