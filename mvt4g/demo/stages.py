"""Data-side stages of the demo: scenes, pseudo-ground-truth tracks, cached features.

Each stage takes the settings and its output folder, calls the same core functions as the
matching command (``mvt4g synth``, ``mvt4g tracks``, ``mvt4g train prepare``) and returns a
JSON-ready summary for the stage record and the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mvt4g.demo.settings import DemoSettings

Progress = Callable[[int, int], None]

#: The tracks stage renders its own scene at the size of benchmarks/tracks.py's (the flow
#: tracker needs texture detail that 32x32 training clips do not have).
#: Trajectories generated from held-out references (and rendered exactly as extra views).
TRAJECTORIES = ("arc-left", "zoom-in")
TRACKS_SCENE = {"views": 3, "frames": 9, "height": 96, "width": 160, "points": 512}
HELDOUT_SEED_OFFSET = 1000
#: Scene distribution of the shipped base's training data (packaged config ``base``), so the
#: fine-tunes and the evaluation stay on what the base has learnt.
SCENE_DISTRIBUTION = {"points": 256, "num_objects": 2}


def no_progress(done: int, total: int) -> None:
    pass


def make_data(settings: DemoSettings, out: Path, progress: Progress = no_progress, *,
              heldout_seed: int | None = None) -> dict:  # fmt: skip
    """Training and held-out synthetic scenes (another seed, with preset views), like ``mvt4g synth``.
    ``heldout_seed``: the held-out scenes' seed (default ``settings.seed + HELDOUT_SEED_OFFSET``)."""
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    start = time.perf_counter()
    heldout_seed = settings.seed + HELDOUT_SEED_OFFSET if heldout_seed is None else heldout_seed
    total = settings.train_scenes + settings.heldout_scenes
    done = [0]

    def tick(_path) -> None:
        done[0] += 1
        progress(done[0], total)

    out.mkdir(parents=True, exist_ok=True)
    common = dict(views=settings.views, frames=settings.frames, height=settings.height, width=settings.width,
                  threads=1, **SCENE_DISTRIBUTION)  # fmt: skip
    workers = 2
    train = synthesize(SynthSettings(seed=settings.seed, **common), out / "train", settings.train_scenes,
                       workers=workers, on_done=tick)  # fmt: skip
    # Held-out scenes also get cam01 moved along the generated trajectories: exact targets for them.
    heldout = synthesize(SynthSettings(seed=heldout_seed, preset_views=TRAJECTORIES, **common),
                         out / "heldout", settings.heldout_scenes, workers=workers, on_done=tick)  # fmt: skip
    return {
        "train": [str(p) for p in train],
        "heldout": [str(p) for p in heldout],
        "shape": {"views": settings.views, "frames": settings.frames, "size": [settings.height, settings.width]},
        "seeds": {"train": settings.seed, "heldout": heldout_seed},
        "seconds": round(time.perf_counter() - start, 2),
    }


def make_tracks(settings: DemoSettings, out: Path, progress: Progress = no_progress) -> dict:
    """Weight-free multi-view tracks (``mvt4g tracks --method flow``) on a 96x160 scene, scored
    against its exact tracks on the same queries (``mvt4g tracks score``), plus an overlay video.

    Training uses the synth clips' exact tracks; this stage measures how good the pseudo-ground
    truth would be on data that has only videos and cameras.
    """
    from mvt4g.io.clip import read_clip
    from mvt4g.io.video import write_video
    from mvt4g.synth.pipeline import SynthSettings, synthesize
    from mvt4g.tracks.compute import Plan, TrackOptions, compute_tracks
    from mvt4g.tracks.format import read_tracks, write_tracks
    from mvt4g.tracks.metrics import score_tracks
    from mvt4g.tracks.overlay import draw_overlay

    out.mkdir(parents=True, exist_ok=True)
    shape = dict(TRACKS_SCENE)
    progress(0, 3)
    scene = synthesize(SynthSettings(seed=settings.seed + 2 * HELDOUT_SEED_OFFSET, threads=2, **shape), out / "scene", 1)[0]
    progress(1, 3)
    clip = read_clip(scene)
    exact = read_tracks(clip.tracks_path)
    start = time.perf_counter()
    options = TrackOptions(method="flow", queries_from=clip.tracks_path)
    predicted = compute_tracks(clip, options, Plan("flow", "demo: videos and cameras only")).trackset
    flow_s = time.perf_counter() - start
    write_tracks(out / "flow_tracks.npz", predicted)
    progress(2, 3)
    scores = score_tracks(predicted, exact, mode="first")
    frames = [clip.read_video(v) for v in clip.views]
    overlay = draw_overlay(frames, predicted, trail=6, max_tracks=150)
    write_video(out / "flow_overlay.mp4", overlay, clip.fps, pad_to_even=True, overwrite=True)
    progress(3, 3)
    keep = ("delta_avg", "average_jaccard", "occlusion_accuracy", "points")
    return {
        "scene": str(scene),
        "shape": shape,
        "method": predicted.method,
        "queries": int(exact.num_tracks),
        "scores": {pair: {k: s[k] for k in keep if k in s} for pair, s in scores.items()},
        "flow_seconds": round(flow_s, 2),
        "frames_per_s": round(shape["views"] * shape["frames"] / flow_s, 2),
        "overlay": str(out / "flow_overlay.mp4"),
    }


def make_features(cache_config, progress: Progress = no_progress) -> dict:
    """Fill the training feature cache (``mvt4g train prepare``): every view's latents in both
    temporal directions and the Plücker ray maps of every view pair, so training never encodes."""
    from mvt4g.train import builders
    from mvt4g.train.cache import prepare

    start = time.perf_counter()
    cfg = builders.absolutize_paths(cache_config).validate()
    dataset = builders.build_dataset(cfg, builders.resolve_model_config(cfg))
    counts = prepare(dataset, reverse=cfg.data.reverse_prob > 0, on_item=progress)
    counts["seconds"] = round(time.perf_counter() - start, 2)
    return counts
