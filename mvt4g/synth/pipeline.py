"""Many scenes: seeds, validation, rendering and writing, optionally in worker processes.

Scene ``i`` of a run with seed ``S`` is drawn from ``numpy.random.SeedSequence([S, i])``, so
every scene is the same whatever the number of scenes or workers, and scene ``i`` can be
regenerated alone. So a run can be repeated on the same folder: with ``skip_existing``, a
scene whose ``meta.json`` provenance (seed, scene index, settings) matches this run's is kept.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory
from mvt4g.errors import InputError, OutputExistsError
from mvt4g.fs.atomic import check_output_path
from mvt4g.memory import check_synth
from mvt4g.synth.render import ViewRender, render_scene
from mvt4g.synth.sampling import sample_scene
from mvt4g.synth.scene import Scene
from mvt4g.synth.tracks_gt import ExactTracks, exact_tracks
from mvt4g.synth.writer import write_clip
from mvt4g.threads import torch_threads
from mvt4g.workers import end_worker, install_worker_signals

MAX_VIEWS = 99  # view names are cam01..cam99


@dataclass(frozen=True)
class SynthSettings:
    """What every scene of a run shares.

    Attributes:
        views, frames, height, width: clip shape (H and W even: H.264 needs it).
        seed: run seed; scene i uses ``SeedSequence([seed, i])``.
        points: exact tracks per scene.
        object_fraction: share of track queries drawn on moving objects.
        supersample: anti-aliasing factor for colour (depth, masks and tracks stay exact).
        fps: frame rate written to the videos and meta.json.
        crf: H.264 quality (lower is better).
        num_objects: objects per scene (None: 3-5 at random).
        threads: torch CPU threads while rendering (per worker process).
        preset_views: extra views named after camera-trajectory presets (``arc-left``, ...):
            cam01's first pose moved along the preset with its default settings, exactly as
            ``mvt4g generate --traj NAME`` moves a reference camera, so a generated video has an
            exact render to be compared with (held-out evaluation of presets).
    """

    views: int = 4
    frames: int = 21
    height: int = 96
    width: int = 160
    seed: int = 0
    points: int = 2048
    object_fraction: float = 0.5
    supersample: int = 1
    fps: float = 15.0
    crf: int = 18
    num_objects: int | None = None
    threads: int = 1
    preset_views: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise :class:`InputError` with one line for the first bad value."""
        if not 1 <= self.views <= MAX_VIEWS:
            raise InputError(f"views must be in 1..{MAX_VIEWS}, got {self.views}")
        if self.frames < 1:
            raise InputError(f"frames must be >= 1, got {self.frames}")
        if self.height < 2 or self.width < 2 or self.height % 2 or self.width % 2:
            raise InputError(f"size must be even and at least 2x2 (H.264 needs even sizes), got {self.height}x{self.width}")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        if self.points < 1:
            raise InputError(f"points must be >= 1, got {self.points}")
        if not 0.0 <= self.object_fraction <= 1.0:
            raise InputError(f"object fraction must be in [0, 1], got {self.object_fraction}")
        if not 1 <= self.supersample <= 8:
            raise InputError(f"supersample must be in 1..8, got {self.supersample}")
        if not 0 < self.fps < float("inf"):
            raise InputError(f"fps must be a positive finite number, got {self.fps}")
        if not 0 <= self.crf <= 51:
            raise InputError(f"crf must be in 0..51, got {self.crf}")
        if self.num_objects is not None and not 0 <= self.num_objects <= 254:
            raise InputError(f"objects must be in 0..254, got {self.num_objects}")
        if self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        known = PRESET_NAMES
        for name in self.preset_views:
            if name not in known:
                raise InputError(f"unknown preset view {name!r} (choose from: {', '.join(known)})")
        if len(set(self.preset_views)) != len(self.preset_views):
            raise InputError("--preset-views names a preset twice")
        if self.preset_views and self.frames < 2:
            raise InputError("preset views need at least 2 frames")


def scene_name(index: int) -> str:
    return f"scene_{index:04d}"


def build_scene(settings: SynthSettings, index: int) -> tuple[Scene, dict[str, ViewRender], ExactTracks]:
    """Sample, render and track scene ``index`` of a run (no files written)."""
    scene_seq, tracks_seq = np.random.SeedSequence([settings.seed, index]).spawn(2)
    scene = sample_scene(scene_seq, views=settings.views, frames=settings.frames, height=settings.height,
                         width=settings.width, num_objects=settings.num_objects)  # fmt: skip
    scene.seed = settings.seed
    add_preset_views(scene, settings.preset_views)
    with torch_threads(settings.threads):
        renders = render_scene(scene, supersample=settings.supersample)
        masks = np.stack([renders[v].masks for v in scene.views])
        tracks = exact_tracks(scene, masks, settings.points, np.random.default_rng(tracks_seq), settings.object_fraction)
    return scene, renders, tracks


def add_preset_views(scene: Scene, presets: tuple[str, ...]) -> None:
    """Add one view per preset: the reference view's first pose moved along the preset (see
    :class:`SynthSettings`). Drawn after the scene, so the other views do not change."""
    if not presets:
        return
    ref = scene.cameras[scene.views[0]]
    for name in presets:
        c2w = ref.c2w[0][None] @ preset_trajectory(name, scene.frames)
        scene.cameras[name] = ViewCameras(ref.width, ref.height, ref.K[0], c2w)


def scene_provenance(settings: SynthSettings, index: int) -> dict:
    """What ``meta.json``'s ``provenance`` records about the run that drew scene ``index``."""
    values = asdict(settings)
    if not settings.preset_views:  # runs without preset views keep the provenance they always had
        values.pop("preset_views")
    else:
        values["preset_views"] = list(settings.preset_views)
    return {"seed": settings.seed, "scene_index": index, "settings": values}


def provenance_mismatch(path: str | Path, settings: SynthSettings, index: int) -> str | None:
    """None when the scene folder ``path`` was written by this run's settings as scene ``index``,
    else a short reason (other settings, another seed or index, no readable ``meta.json``)."""
    meta_path = Path(path) / "meta.json"
    try:
        written = json.loads(meta_path.read_text()).get("provenance", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return "no readable meta.json from mvt4g synth"
    if not isinstance(written, dict):
        return "no provenance in meta.json"
    wanted = scene_provenance(settings, index)
    for key in ("seed", "scene_index"):
        if written.get(key) != wanted[key]:
            return f"written with {key} {written.get(key)!r}, this run's is {wanted[key]!r}"
    old = written.get("settings") if isinstance(written.get("settings"), dict) else {}
    differ = sorted(k for k in set(old) | set(wanted["settings"]) if old.get(k) != wanted["settings"].get(k))
    if differ:
        changes = ", ".join(f"{k} {old.get(k)!r}, now {wanted['settings'].get(k)!r}" for k in differ)
        return f"written with other settings ({changes})"
    return None


def synthesize_one(settings: SynthSettings, index: int, out: str | Path, overwrite: bool = False) -> Path:
    """Render scene ``index`` and write it to ``out / scene_NNNN``; returns that path."""
    scene, renders, tracks = build_scene(settings, index)
    provenance = scene_provenance(settings, index)
    return write_clip(Path(out) / scene_name(index), scene, renders, tracks, fps=settings.fps, crf=settings.crf,
                      overwrite=overwrite, provenance=provenance)  # fmt: skip


def check_outputs(
    out: str | Path,
    scenes: int,
    overwrite: bool,
    *,
    settings: SynthSettings | None = None,
    skip_existing: bool = False,
) -> tuple[list[Path], list[int]]:
    """Validate the output folder before any work: ``(every scene path, indices to render)``.

    ``out``'s parent must exist; ``out`` may exist (a folder). A scene folder that exists is
    refused unless ``overwrite``; with ``skip_existing`` (needs ``settings``) one written by
    the same settings (:func:`provenance_mismatch`) is kept and not rendered again.
    """
    if scenes < 1:
        raise InputError(f"scenes must be >= 1, got {scenes}")
    if skip_existing and settings is None:
        raise InputError("skip_existing needs the run's settings to compare with")
    out = check_output_path(out, overwrite=True, is_dir=True)
    paths = [out / scene_name(i) for i in range(scenes)]
    todo, refused = [], []
    for i, path in enumerate(paths):
        if not path.exists():
            todo.append(i)
            continue
        why = provenance_mismatch(path, settings, i) if skip_existing else "output exists"
        if why is None:
            continue  # the same scene, already written
        if not overwrite:
            refused.append((path, why))
        todo.append(i)
    if refused:
        path, why = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise OutputExistsError(f"{why}{more} (pass --overwrite to replace it)", path=path)
    return paths, todo


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)  # this worker process only
    # A SIGTERM to the whole process group (timeout, a job scheduler) reaches the workers too;
    # Python's default would end one mid-write and leave its temporary scene folder behind.
    install_worker_signals()


def _synthesize_in_worker(settings: SynthSettings, index: int, out: str | Path, overwrite: bool) -> Path:
    try:
        return synthesize_one(settings, index, out, overwrite)
    except SystemExit as stop:  # SIGTERM: the scene's temporary is removed by now
        end_worker(stop)


def synthesize(
    settings: SynthSettings,
    out: str | Path,
    scenes: int,
    *,
    workers: int = 1,
    overwrite: bool = False,
    skip_existing: bool = False,
    on_done: Callable[[Path], None] | None = None,
    on_skip: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Render and write ``scenes`` scenes under ``out`` (created if missing); returns their paths.

    ``workers > 1`` renders scenes in that many processes; the output is identical either way.
    ``skip_existing`` keeps scene folders written by the same settings (``meta.json``
    provenance) and refuses any other existing one unless ``overwrite``. ``on_skip(path)`` is
    called for each kept scene before any rendering, ``on_done(path)`` as each scene is
    written (for progress bars).
    """
    settings.validate()
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    check_synth(views=settings.views, frames=settings.frames, height=settings.height,
                width=settings.width, supersample=settings.supersample, points=settings.points, workers=workers)  # fmt: skip
    paths, todo = check_outputs(out, scenes, overwrite, settings=settings, skip_existing=skip_existing)
    Path(out).mkdir(parents=True, exist_ok=True)
    if on_skip:
        for i in sorted(set(range(scenes)) - set(todo)):
            on_skip(paths[i])
    if workers == 1 or len(todo) <= 1:
        for i in todo:
            synthesize_one(settings, i, out, overwrite)
            if on_done:
                on_done(paths[i])
        return paths
    # "spawn": a fresh interpreter per worker, safe with torch's thread pools (fork is not).
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                             initargs=(settings.threads,)) as pool:  # fmt: skip
        pending = {pool.submit(_synthesize_in_worker, settings, i, out, overwrite): i for i in todo}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    i = pending.pop(fut)
                    if fut.exception() is not None:
                        raise fut.exception()
                    if on_done:
                        on_done(paths[i])
        except BaseException:
            # A failed scene, Ctrl-C or SIGTERM: scenes not started are dropped (the pool would
            # otherwise render them all before the exception gets out); the ones rendering
            # finish their atomic write or leave nothing.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return paths
