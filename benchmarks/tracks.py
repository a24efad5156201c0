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

Speed: frames per second (views x frames / wall time, one call, flows included) of each method
at 480x832 on a bear planar scene (2 views x 9 frames, 30x52 grid per view at frame 0).

    python benchmarks/tracks.py [--json] [--scenes 3] [--seed 1234] [--skip-speed]
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


def speed(texture: np.ndarray) -> list[dict]:
    scene = planar_scene(texture, views=2, frames=9, height=480, width=832, seed=0)
    q = grid_queries(480, 832, [0, 1], [0])
    rows = []
    for method in ("geometry", "flow"):
        _, _, sec = _run(method, scene.videos, scene.cameras, q, scene.depths)
        frames = len(scene.videos) * scene.videos[0].shape[0]
        rows.append({"case": "speed 480x832", "method": method, "views_x_frames": frames, "queries": len(q),
                     "seconds": round(sec, 2), "frames_per_s": round(frames / sec, 2)})
    return rows


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=3, help="synth scenes (rendered here)")
    p.add_argument("--seed", type=int, default=1234, help="synth run seed (not one used while developing)")
    p.add_argument("--skip-speed", action="store_true", help="accuracy only")
    args = p.parse_args()
    if not BEAR.is_file():
        sys.exit(f"benchmarks/tracks.py needs {BEAR}")
    from mvt4g.io.video import read_video

    texture = read_video(BEAR, max_frames=1).frames[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += synth_accuracy(args.scenes, args.seed, Path(tmp))
    rows += bear_accuracy(texture, [11, 12, 13])
    speed_rows = [] if args.skip_speed else speed(texture)
    if args.json:
        report("tracks", rows + speed_rows, as_json=True)
        return
    report("tracks: accuracy (TAP-Vid, 'first' query mode, mean over scenes)", rows, as_json=False)
    if speed_rows:
        print()
        report("tracks: throughput", speed_rows, as_json=False)


if __name__ == "__main__":
    main()
