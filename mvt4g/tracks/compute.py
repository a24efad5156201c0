"""Tracks for a clip directory: choose the method and the queries, run it, key the result.

Methods:

- ``geometry``: exact from depth and cameras (mvt4g.tracks.exact); needs ``depth/`` for every
  view; uses ``masks/`` (moving objects) and the videos (their temporal motion) when present;
- ``flow``: weight-free, from the videos and cameras (mvt4g.tracks.flow);
- ``plugin``: a user's tracker, ``--tracker module:callable`` (mvt4g.tracks.plugin);
- ``auto``: nothing to do when the clip's ``tracks.npz`` already holds exact tracks (written by
  ``mvt4g synth`` or a Kubric import) and no queries were asked for; else ``geometry`` when every
  view has depth; else ``flow``.

Resumability: the written file stores ``input_key``, a hash of the method, its settings, the
queries' specification and the size and modification time of every input file. A clip whose
output holds the same key is current and skipped.

Many clips (what ``mvt4g tracks compute`` does)::

    jobs = plan_track_jobs(["data/synth/scene_0000"], TrackOptions(method="geometry"))
    with lock_track_jobs(jobs) as jobs:             # the clip folders are this run's
        rows = [run_track_job(job) for job in jobs]  # one JSON-ready dict per clip

Dataset folders, bad clips set aside and worker processes: :mod:`mvt4g.tracks.dataset`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mvt4g.errors import InputError, OutputExistsError
from mvt4g.fs.atomic import check_output_path
from mvt4g.fs.lock import lock_folders
from mvt4g.io.clip import Clip, read_clip
from mvt4g.tracks.exact.depth import DEFAULT_DEPTH_TOL
from mvt4g.tracks.exact.pipeline import geometry_tracks
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.pipeline import flow_tracks
from mvt4g.tracks.format import (
    TrackSet,
    check_fits_clip,
    read_input_key,
    read_tracks,
    write_tracks,
)
from mvt4g.tracks.plugin import load_tracker, run_tracker, tracker_fingerprint
from mvt4g.tracks.quality import flow_counts, quality_of, read_quality
from mvt4g.tracks.queries import (
    DEFAULT_GRID,
    check_queries,
    grid_queries,
    random_queries,
)

METHODS = ("auto", "geometry", "flow", "plugin")
#: ``--query-frames``: queries at the first frame only, or at every frame.
QUERY_FRAMES = ("first", "all")
#: ``method`` strings of track files that hold ground truth (auto leaves them alone).
EXACT_METHODS = ("synth", "exact", "kubric", "planar")


@dataclass
class TrackOptions:
    """How to make tracks for a clip (the CLI's options)."""

    method: str = "auto"
    tracker: str | None = None
    grid: tuple[int, int] | None = None
    num_queries: int | None = None
    query_frames: str = "first"
    query_views: str = "all"
    queries_from: Path | None = None
    seed: int = 0
    depth_tol: float = DEFAULT_DEPTH_TOL
    flow: FlowConfig = field(default_factory=FlowConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "plugin" and not self.tracker:
            raise InputError("--method plugin needs --tracker MODULE:CALLABLE")
        if self.tracker and self.method not in ("plugin", "auto"):
            raise InputError(f"--tracker is only used with --method plugin (got --method {self.method})")
        if self.tracker:
            self.method = "plugin"
        chosen = [x is not None for x in (self.grid, self.num_queries, self.queries_from)]
        if sum(chosen) > 1:
            raise InputError("give at most one of --grid, --queries and --queries-from")
        if self.query_frames not in QUERY_FRAMES:
            raise InputError(f"--query-frames must be {' or '.join(QUERY_FRAMES)}, got {self.query_frames!r}")

    @property
    def queries_explicit(self) -> bool:
        return self.grid is not None or self.num_queries is not None or self.queries_from is not None


@dataclass
class Plan:
    """The method chosen for one clip and why."""

    method: str
    reason: str


def has_exact_tracks(clip: Clip) -> bool:
    """True when the clip's ``tracks.npz`` is a valid track file whose method marks ground truth."""
    if not clip.tracks_path.is_file():
        return False
    try:
        ts = read_tracks(clip.tracks_path)
    except InputError:
        return False
    return ts.method in EXACT_METHODS and ts.tracks.shape[:2] == (len(clip.views), clip.frames)


def plan_method(clip: Clip, options: TrackOptions, out_path: Path) -> Plan:
    """Resolve ``auto`` (module docstring); check the chosen method's inputs exist."""
    method = options.method
    if method == "auto":
        if not options.queries_explicit and out_path == clip.tracks_path and has_exact_tracks(clip):
            return Plan("none", "exact tracks present (tracks.npz), nothing to do")
        if clip.has_depth():
            return Plan("geometry", "depth maps present: exact geometry")
        return Plan("flow", "no depth maps: optical flow + stereo")
    if method == "geometry" and not clip.has_depth():
        missing = [v for v in clip.views if not (clip.root / "depth" / f"{v}.npz").is_file()]
        raise InputError(f"--method geometry needs depth/<view>.npz for every view; missing {', '.join(missing)}", path=clip.root)
    return Plan(method, f"--method {method}")


def make_queries(clip: Clip, options: TrackOptions) -> np.ndarray:
    """The queries ``[N, 4]`` for a clip from the options (module :mod:`mvt4g.tracks.queries`)."""
    V, T, H, W = len(clip.views), clip.frames, clip.height, clip.width
    if options.queries_from is not None:
        src = read_tracks(options.queries_from)
        check_fits_clip(src, clip, options.queries_from, what="queries")
        return check_queries(src.queries, V, T, H, W)
    views = _query_views(clip, options.query_views)
    frames = [0] if options.query_frames == "first" else list(range(T))
    if options.num_queries is not None:
        return random_queries(H, W, views, frames, options.num_queries, seed=options.seed)
    return grid_queries(H, W, views, frames, options.grid or DEFAULT_GRID)


def _query_views(clip: Clip, spec: str) -> list[int]:
    if spec == "all":
        return list(range(len(clip.views)))
    if spec == "first":
        return [0]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in clip.views]
    if unknown:
        raise InputError(f"--query-views: no view(s) {', '.join(unknown)} in the clip (views: {', '.join(clip.views)})", path=clip.root)
    return [clip.views.index(n) for n in names]


def _stat(path: Path) -> list:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def input_key(clip: Clip, options: TrackOptions, plan: Plan) -> str:
    """Hash of everything the tracks depend on (module docstring)."""
    files = [clip.videos[v] for v in clip.views]
    for name in ("cameras.json", "camera_extrinsics.json"):
        if (clip.root / "cameras" / name).is_file():
            files.append(clip.root / "cameras" / name)
    if plan.method == "geometry":
        for folder in ("depth", "masks"):
            files += [p for v in clip.views if (p := clip.root / folder / f"{v}.npz").is_file()]
    settings = {
        "method": plan.method,
        "grid": options.grid or (None if options.num_queries or options.queries_from else DEFAULT_GRID),
        "num_queries": options.num_queries,
        "seed": options.seed if options.num_queries else None,
        "query_frames": options.query_frames,
        "query_views": options.query_views,
        "queries_from": _stat(options.queries_from) if options.queries_from else None,
        "depth_tol": options.depth_tol if plan.method == "geometry" else None,
        "flow": asdict(options.flow) if plan.method in ("flow", "geometry") else None,
        "files": [[str(p.relative_to(clip.root)), *_stat(p)[1:]] for p in files],
        "format": 1,
    }
    if plan.method == "plugin":
        settings["tracker"] = tracker_fingerprint(options.tracker or "")
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass
class ClipResult:
    """Tracks for one clip and what was done."""

    trackset: TrackSet
    notes: list[str]
    flow: dict | None = None  # the flow method's own counts (mvt4g.tracks.quality.flow_counts)


def compute_tracks(clip: Clip, options: TrackOptions, plan: Plan | None = None, tracker=None) -> ClipResult:
    """Run the planned method on a clip (``plan.method`` must not be ``none``).

    ``plan`` defaults to :func:`plan_method` for the clip's own ``tracks.npz``. The result's
    ``trackset`` holds ``tracks`` [V, T, N, 2] and ``visible`` [V, T, N] for the clip's V views.
    """
    if plan is None:
        plan = plan_method(clip, options, clip.tracks_path)
    queries = make_queries(clip, options)
    views = clip.views
    cameras = [clip.cameras[v] for v in views]
    notes: list[str] = []
    counts = None
    if plan.method == "geometry":
        depths = [clip.read_depth(v) for v in views]
        has_masks = all((clip.root / "masks" / f"{v}.npz").is_file() for v in views)
        masks = [clip.read_masks(v) for v in views] if has_masks else None
        videos = [clip.read_video(v) for v in views] if has_masks else None
        tracks, visible, report = geometry_tracks(
            cameras, depths, queries, masks=masks, videos=videos, depth_tol=options.depth_tol, flow_config=options.flow
        )
        if not has_masks:
            notes.append("no masks/: every point taken as static (exact for static scenes only)")
        notes += report.notes
    elif plan.method == "flow":
        videos = [clip.read_video(v) for v in views]
        tracks, visible, report = flow_tracks(videos, cameras, queries, options.flow)
        notes.append(f"{report.algorithm} flow; {report.associated} of {report.association_tried} cross-view associations accepted")
        counts = flow_counts(report, len(queries))
    elif plan.method == "plugin":
        fn = tracker or load_tracker(options.tracker or "")
        videos = {v: clip.read_video(v) for v in views}
        tracks, visible = run_tracker(fn, videos, dict(clip.cameras), queries, options.tracker or "plugin")
    else:
        raise InputError(f"nothing to compute for method {plan.method!r}")
    # Every track is visible at its own query, exactly where it was asked.
    n = np.arange(len(queries))
    tracks[queries[:, 0].astype(int), queries[:, 1].astype(int), n] = queries[:, 2:4]
    visible[queries[:, 0].astype(int), queries[:, 1].astype(int), n] = True
    method = plan.method if plan.method != "plugin" else f"plugin:{options.tracker}"
    return ClipResult(TrackSet(tracks, visible, queries, (clip.height, clip.width), method, list(views)), notes, counts)


@dataclass
class TrackJob:
    """One clip's planned work (:func:`plan_track_jobs`).

    ``status``: ``"todo"`` (tracks will be computed and written to ``out``), ``"current"``
    (``out`` was made from the same inputs and options: kept) or ``"exact"`` (``auto`` found
    the clip's exact tracks: nothing to do). ``key`` is the input key written with the tracks
    (None for ``exact``); ``tracker`` the loaded plug-in callable (``--method plugin``).
    """

    clip: Clip
    out: Path
    plan: Plan
    options: TrackOptions
    status: str
    key: str | None = None
    tracker: Callable | None = None


def plan_track_jobs(
    clips: Sequence[str | Path | Clip],
    options: TrackOptions,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> list[TrackJob]:
    """Plan tracks for clip directories; every clip and output is checked before any work.

    Each clip's output is ``out`` (one clip only) or its own ``CLIP/tracks.npz``. An output
    whose stored input key matches is ``current`` (kept unless ``overwrite``); any other
    existing output is refused (:class:`~mvt4g.errors.OutputExistsError`) unless ``overwrite``,
    so bad input raises here and nothing is written. A plug-in tracker is loaded once, here.
    """
    if out is not None and len(clips) > 1:
        raise InputError("--out takes one clip; without it each clip gets CLIP/tracks.npz")
    tracker = load_plugin(options)
    return [plan_track_job(item, options, out=out, overwrite=overwrite, tracker=tracker) for item in clips]


def load_plugin(options: TrackOptions) -> Callable | None:
    """The plug-in tracker of ``--method plugin`` (loaded once per run), else ``None``."""
    return load_tracker(options.tracker or "") if options.method == "plugin" else None


def plan_track_job(
    item: str | Path | Clip,
    options: TrackOptions,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    tracker: Callable | None = None,
) -> TrackJob:
    """Plan one clip (:func:`plan_track_jobs`); raises :class:`InputError` for a bad clip and
    :class:`~mvt4g.errors.OutputExistsError` for an output it must not replace."""
    clip = item if isinstance(item, Clip) else read_clip(item)
    target = Path(out) if out is not None else clip.tracks_path
    plan = plan_method(clip, options, target)
    if plan.method == "none":
        return TrackJob(clip, target, plan, options, "exact")
    key = input_key(clip, options, plan)
    if target.exists() and read_input_key(target) == key and not overwrite:
        return TrackJob(clip, target, plan, options, "current", key, tracker)
    check_output_path(target, overwrite=overwrite)
    return TrackJob(clip, target, plan, options, "todo", key, tracker)


@contextlib.contextmanager
def lock_track_jobs(jobs: list[TrackJob], *, overwrite: bool = False) -> Iterator[list[TrackJob]]:
    """Own the clip folders this run writes ``tracks.npz`` into, for the whole run.

    A run over a dataset writes into many clip folders over a long time; a second run on any
    of them is refused with ``clip folder is in use by pid N`` (``mvt4g.fs.lock``) instead
    of both computing the same tracks. Only clips with work to do are locked (a rerun that
    finds everything current touches nothing), and ``--out FILE`` (one clip, written
    atomically) locks nothing. Yields the jobs re-checked under the lock: one another run
    finished meanwhile is ``current``, or refused as it would have been at planning time.
    """
    folders = [job.clip.root for job in jobs if job.status == "todo" and job.out == job.clip.tracks_path]
    with lock_folders(folders, "clip folder"):
        checked = []
        for job in jobs:
            if job.status == "todo" and not overwrite and job.out.exists():
                if read_input_key(job.out) != job.key:
                    raise OutputExistsError("output exists (pass --overwrite to replace it)", path=job.out)
                job = replace(job, status="current")
            checked.append(job)
        yield checked


def run_track_job(job: TrackJob, tracker: Callable | None = None) -> dict:
    """Do one planned job: compute and write the tracks when ``job.status == "todo"``.

    Returns the JSON-ready row ``mvt4g tracks compute --json`` prints: ``clip``, ``out``,
    ``method``, ``reason``, ``status`` (``written``, ``current`` or ``exact``), ``notes``
    and, when written, ``tracks`` (N), ``views`` (V), ``frames`` (T), ``visible_fraction``
    and ``seconds``. ``tracker`` overrides the job's plug-in callable.

    Every row whose output holds tracks (written, current or exact) also has ``quality``
    (:func:`mvt4g.tracks.quality.quality_of`); current and exact ones read it, with
    ``tracks``, ``views`` and ``frames``, from the file. Flow rows just written have ``flow``
    (:func:`mvt4g.tracks.quality.flow_counts`).
    """
    row = {"clip": str(job.clip.root), "out": str(job.out), "method": job.plan.method, "reason": job.plan.reason}
    if job.status != "todo":
        row.update(status=job.status, notes=[])
        found = read_quality(job.out)
        if found is not None:
            quality, (views, frames, tracks) = found
            row.update(tracks=tracks, views=views, frames=frames, quality=quality)
        return row
    start = time.perf_counter()
    result = compute_tracks(job.clip, job.options, job.plan, tracker=tracker or job.tracker)
    write_tracks(job.out, result.trackset, input_key=job.key)
    ts = result.trackset
    row.update(
        status="written", tracks=ts.num_tracks, views=ts.num_views, frames=ts.num_frames,
        visible_fraction=round(float(ts.visible.mean()), 4), seconds=round(time.perf_counter() - start, 3),
        notes=result.notes, quality=quality_of(ts.visible, ts.queries),
    )  # fmt: skip
    if result.flow is not None:
        row["flow"] = result.flow
    return row
