"""`mvt4g synth`: one scene of 4 views x 21 frames at 96x160, stage by stage, against references.

Target: the whole scene (sampling, rendering, exact tracks, writing the clip) in
under 10 s on 2 cores. References measured in the same run: encoding the same frames with
``write_video`` (what any clip writer pays), and the naive per-pixel Python ray caster
(``mvt4g.synth.naive``) on a tiny image, per ray, against the vectorised caster.
``--large`` also renders one scene of 81 frames at 480x832 once (slow: minutes on 2 cores).

    python benchmarks/synth.py [--json] [--repeats 3] [--threads 1] [--large]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, report, time_call

from mvt4g.io.video import write_video
from mvt4g.synth.naive import naive_depth_masks
from mvt4g.synth.pipeline import SynthSettings, torch_threads
from mvt4g.synth.raycast import Geometry, cast
from mvt4g.synth.render import pixel_rays, render_scene
from mvt4g.synth.sampling import sample_scene
from mvt4g.synth.tracks_gt import exact_tracks
from mvt4g.synth.writer import write_clip


def stages(settings: SynthSettings, out: Path) -> dict[str, float]:
    """Seconds per stage of one scene (as `mvt4g synth` runs it)."""
    t = {}
    start = time.perf_counter()
    scene = sample_scene(np.random.SeedSequence([settings.seed, 0]), views=settings.views, frames=settings.frames,
                         height=settings.height, width=settings.width)  # fmt: skip
    t["sample_s"] = time.perf_counter() - start
    start = time.perf_counter()
    renders = render_scene(scene, supersample=settings.supersample)
    t["render_s"] = time.perf_counter() - start
    start = time.perf_counter()
    masks = np.stack([renders[v].masks for v in scene.views])
    tracks = exact_tracks(scene, masks, settings.points, np.random.default_rng(0))
    t["tracks_s"] = time.perf_counter() - start
    start = time.perf_counter()
    write_clip(out / "scene", scene, renders, tracks, fps=settings.fps, overwrite=True)
    t["write_s"] = time.perf_counter() - start
    t["total_s"] = sum(t.values())
    t["_renders"] = renders  # type: ignore[assignment]
    t["_scene"] = scene  # type: ignore[assignment]
    return t


def run_case(label: str, settings: SynthSettings, repeats: int, out: Path) -> tuple[dict, dict]:
    runs = []
    with torch_threads(settings.threads):
        for _ in range(repeats):
            runs.append(stages(settings, out))
    keys = ["sample_s", "render_s", "tracks_s", "write_s", "total_s"]
    med = {k: float(np.median([r[k] for r in runs])) for k in keys}
    rays = settings.views * settings.frames * settings.height * settings.width
    row = {"case": label, **med, "us_per_pixel": med["render_s"] / rays * 1e6}
    return row, runs[-1]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(repeats=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as `mvt4g synth`)")
    p.add_argument("--large", action="store_true", help="also render 4 views x 81 frames at 480x832 once")
    args = p.parse_args()
    rows = []
    extra: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        small = SynthSettings(views=4, frames=21, height=96, width=160, threads=args.threads)
        row, last = run_case(f"4 views x 21 frames 96x160, threads={args.threads}", small, args.repeats, out)
        rows.append(row)
        if args.threads != 2:
            row2, _ = run_case("same, threads=2", SynthSettings(**{**small.__dict__, "threads": 2}), args.repeats, out)
            rows.append(row2)
        # Reference 1: encoding the same frames as H.264.
        renders = last["_renders"]
        encode_s = time_call(
            lambda: [write_video(out / f"ref_{v}.mp4", r.rgb, 15.0, overwrite=True) for v, r in renders.items()],
            repeats=args.repeats,
        )
        rows.append({"case": "reference: write_video of the same 4 videos", "write_s": encode_s, "total_s": encode_s})
        # Reference 2: naive per-pixel Python loop vs the vectorised caster, geometry only, per ray.
        scene = last["_scene"]
        tiny = sample_scene(np.random.SeedSequence([0, 0]), views=1, frames=1, height=24, width=40)
        naive_s = time_call(lambda: naive_depth_masks(tiny, "cam01"), repeats=1, warmup=0)
        naive_us = naive_s / (24 * 40) * 1e6
        geom = Geometry.of(scene)
        cam = scene.cameras["cam01"]
        import torch

        rot, pos = (torch.as_tensor(a, dtype=torch.float32) for a in scene.object_poses())
        o, d = pixel_rays(cam.K, cam.c2w, scene.height, scene.width)
        with torch_threads(args.threads):
            cast_s = time_call(lambda: cast(geom, o, d, rot, pos), repeats=args.repeats)
        cast_us = cast_s / (scene.frames * scene.height * scene.width) * 1e6
        rows.append({"case": "reference: naive per-pixel loop, 24x40 (geometry)", "us_per_pixel": naive_us})
        rows.append({"case": "vectorised cast, 21 frames 96x160 (geometry)", "render_s": cast_s, "us_per_pixel": cast_us})
        extra["render_vs_encode"] = row["render_s"] / encode_s
        extra["vectorised_speedup_vs_naive"] = naive_us / cast_us
        extra["target_total_s"] = 10.0
        extra["met"] = row["total_s"] < 10.0
        if args.large:
            big = SynthSettings(views=4, frames=81, height=480, width=832, threads=args.threads)
            row_big, _ = run_case("4 views x 81 frames 480x832", big, 1, out)
            rows.append(row_big)
            extra["max_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report("mvt4g synth: one scene, stage by stage (median seconds)", rows, as_json=args.json, extra=extra)


if __name__ == "__main__":
    main()
