"""Many (reference, target) generations with one loaded model: output names, checks, writing.

Output names (predictable, for pipelines):

    --out-dir DIR   DIR/REF_STEM/TRAJ.mp4 for every reference and trajectory
    --out FILE.mp4  exactly one reference and one trajectory

and next to each video ``V.mp4``::

    V.trajectory.json    the target trajectory used (mvt4g trajectory JSON, frames = output)
    V.meta.json          model, seed, sampler, steps, guidance, frame/size policy, versions
    V.side-by-side.mp4   reference | generated (with --side-by-side)
    V.tracks.npz         predicted multi-view tracks, view 0 reference, 1 generated (with queries)
    V.tracks.mp4         reference | generated with coloured track trails (with queries)

Everything that can be checked is checked by :func:`plan_jobs` before the first file is
written (names, existing outputs, query points); :func:`lock_item_folders` then makes the
item folders this process's for the run. A job that fails later (a video that turns
out not to decode, out of memory, a NaN) is reported in its :class:`JobOutcome` and the others
still run; the video is written last, so a present ``V.mp4`` means a complete item, and
companions without it (what kill -9 leaves of an item) are replaced without ``--overwrite``.

Several processes (``torchrun --nproc-per-node N -m mvt4g generate ...``): every rank plans
the same jobs; rank 0 alone locks the item folders (for all ranks, until every rank is done),
then each rank runs its share (:func:`shard_jobs`: contiguous blocks of the jobs to make, in
order; kept items are rank 0's) and writes its items' files itself, atomically as always.
The seed is per run, not per process, so an item is the same video whichever rank makes it.
Rank 0 gathers every rank's :class:`ItemRecord` (:func:`gather_records`) and reports them all
in the jobs' order, as one process would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvt4g.errors import InputError, MVT4GError, OutputExistsError
from mvt4g.fs.atomic import check_output_location, check_output_path, write_json_atomic
from mvt4g.fs.lock import lock_folders
from mvt4g.io.captions import WAN_NEGATIVE_PROMPT
from mvt4g.sample.queries import load_query_points
from mvt4g.sample.reference import ReferenceOptions, ReferencePlan, read_reference
from mvt4g.sample.targets import Target

META_FORMAT = "mvt4g-generate"
META_FORMAT_VERSION = 1


@dataclass
class ItemPaths:
    """Files of one generated item (None: not requested)."""

    video: Path
    trajectory: Path
    metadata: Path
    side_by_side: Path | None = None
    tracks: Path | None = None
    overlay: Path | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.video, self.trajectory, self.metadata, self.side_by_side, self.tracks, self.overlay) if p]

    def may_replace(self, path: Path, overwrite: bool) -> bool:
        """Whether ``path`` may be written over: with ``overwrite``, or when it is a companion of
        a video that is missing. The video is written last, so companions without it are what an
        interrupted run (kill -9) left of an unfinished item, not outputs to keep."""
        return overwrite or (path != self.video and not self.video.exists())

    def to_dict(self) -> dict[str, str | None]:
        return {k: (str(v) if v is not None else None) for k, v in self.__dict__.items()}


def item_paths(video: Path, *, side_by_side: bool = False, tracks: bool = False) -> ItemPaths:
    stem = video.with_suffix("")
    return ItemPaths(
        video=video,
        trajectory=Path(f"{stem}.trajectory.json"),
        metadata=Path(f"{stem}.meta.json"),
        side_by_side=Path(f"{stem}.side-by-side.mp4") if side_by_side else None,
        tracks=Path(f"{stem}.tracks.npz") if tracks else None,
        overlay=Path(f"{stem}.tracks.mp4") if tracks else None,
    )


@dataclass
class GenerateJob:
    """One item: a probed reference, a target, its output files and (optional) queries."""

    reference: ReferencePlan
    target: Target
    paths: ItemPaths
    queries: np.ndarray | None = None
    request_key: str | None = None  # what the item is made from (recorded in .meta.json)
    skip: bool = False  # --skip-existing found it written from the same request

    @property
    def label(self) -> str:
        return f"{self.reference.stem}/{self.target.name}"


@dataclass
class JobOutcome:
    job: GenerateJob
    ok: bool
    seconds: float
    error: str | None = None
    exit_code: int = 0
    info: dict = field(default_factory=dict)
    traceback: str | None = None  # for unexpected exceptions (shown with --debug)

    def to_dict(self) -> dict:
        out = {"reference": str(self.job.reference.path), "trajectory": self.job.target.name,
               "status": "failed" if not self.ok else "skipped" if self.job.skip else "ok",
               "seconds": round(self.seconds, 3)}  # fmt: skip
        if self.ok:
            out["outputs"] = self.job.paths.to_dict()
            out["frames"] = self.info.get("frames")
            out["timings"] = self.info.get("timings")
            out["guidance"] = self.info.get("guidance")  # the prompt used, where it came from, applied or why not
        else:
            out["error"] = self.error
        return out


@dataclass
class ItemRecord:
    """What the report needs of one finished job, small enough to send between processes."""

    index: int  # position in the planned jobs
    label: str
    ok: bool
    skipped: bool
    error: str | None
    exit_code: int
    item: dict  # JobOutcome.to_dict()

    @classmethod
    def of(cls, index: int, outcome: JobOutcome) -> ItemRecord:
        return cls(index, outcome.job.label, outcome.ok, outcome.job.skip, outcome.error, outcome.exit_code,
                   outcome.to_dict())  # fmt: skip


def shard_jobs(jobs: list[GenerateJob], rank: int, world: int) -> list[int]:
    """Positions in ``jobs`` that ``rank`` of ``world`` runs: the jobs to make in contiguous,
    balanced blocks (a reference's items stay together, read once), kept ones all on rank 0."""
    from mvt4g.model.distributed import shard

    todo = [i for i, job in enumerate(jobs) if not job.skip]
    mine = [todo[i] for i in shard(len(todo), rank, world)]
    if rank == 0:
        mine += [i for i, job in enumerate(jobs) if job.skip]
    return sorted(mine)


def gather_records(records: list[ItemRecord], ctx) -> list[ItemRecord]:
    """Every rank's records in job order (on every rank; ``records`` for one process)."""
    from mvt4g.model.distributed import gather_objects

    if not ctx.distributed:
        return records
    return sorted((r for part in gather_objects(records, ctx) for r in part), key=lambda r: r.index)


def plan_jobs(
    references: list[ReferencePlan],
    targets: list[Target],
    *,
    out: Path | None = None,
    out_dir: Path | None = None,
    side_by_side: bool = False,
    query_spec: str | None = None,
    size: tuple[int, int],
    token_stride: int,
    overwrite: bool = False,
    request: dict | None = None,
    skip_existing: bool = False,
) -> list[GenerateJob]:
    """Every (reference, target) job with its checked output paths and queries (see the module docstring).

    ``request``: the settings every item shares (model, seed, sampler, sizes, ...), hashed with
    each item's reference and target into its ``request_key``. With ``skip_existing`` an
    item whose video exists and whose ``.meta.json`` holds the same key is kept (``skip``).
    """
    if (out is None) == (out_dir is None):
        raise InputError("give exactly one of --out FILE.mp4 or --out-dir DIR")
    tracks = query_spec is not None
    if out is not None:
        if len(references) != 1 or len(targets) != 1:
            raise InputError(
                f"--out names one video but there are {len(references)} reference(s) x {len(targets)} trajectories: use --out-dir"
            )
        if out.suffix.lower() != ".mp4":
            raise InputError("--out must end in .mp4", path=out)
        pairs = [(references[0], targets[0], out)]
    else:
        stems = [r.stem for r in references]
        dupes = sorted({s for s in stems if stems.count(s) > 1})
        if dupes:
            raise InputError(f"references share output folder names: {', '.join(dupes)} (rename or run separately)")
        if not out_dir.exists():
            check_output_location(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError("--out-dir is a file", path=out_dir)
        pairs = [(r, t, out_dir / r.stem / f"{t.name}.mp4") for r in references for t in targets]
    jobs = []
    for ref, target, video in pairs:
        paths = item_paths(video, side_by_side=side_by_side, tracks=tracks)
        key = request_key(ref, target, request) if request is not None else None
        if skip_existing and not overwrite and key is not None and written_key(paths) == key:
            jobs.append(GenerateJob(ref, target, paths, request_key=key, skip=True))
            continue
        for p in paths.files():
            if p.parent.exists() and not p.parent.is_dir():
                raise InputError("output folder is a file", path=p.parent)
            if out is not None or p.parent.is_dir():
                check_output_path(p, overwrite=paths.may_replace(p, overwrite))
            elif p.exists() and not overwrite:  # pragma: no cover (parent missing implies absent)
                raise OutputExistsError("output exists (pass --overwrite to replace it)", path=p)
        queries = None
        if query_spec is not None:
            queries = load_query_points(query_spec, height=size[0], width=size[1], frames=ref.frames, token_stride=token_stride)
        jobs.append(GenerateJob(ref, target, paths, queries, request_key=key))
    return jobs


def _file_stamp(path: Path) -> list | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def request_key(reference: ReferencePlan, target: Target, request: dict) -> str:
    """Hash of what an item is made from: the shared ``request``, the reference video (path,
    size, modification time) and the target (name, source, its poses or camera file)."""
    source_file = Path(target.source.rsplit(":", 1)[0]) if target.source else None
    poses = target.file_poses
    item = {
        "reference": _file_stamp(reference.path) or str(reference.path),
        "trajectory": [target.name, target.source, target.preset],
        "trajectory_file": _file_stamp(source_file) if source_file is not None and source_file.is_file() else None,
        "poses": hashlib.sha256(np.ascontiguousarray(poses, dtype=np.float64).tobytes()).hexdigest() if poses is not None else None,
    }
    text = json.dumps({"item": item, "request": request}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def written_key(paths: ItemPaths) -> str | None:
    """The ``request_key`` of a complete item (video and every companion present), else None."""
    if not all(p.is_file() for p in paths.files()):
        return None
    try:
        return json.loads(paths.metadata.read_text()).get("request_key")
    except (OSError, ValueError, AttributeError):
        return None


def lock_item_folders(jobs: list[GenerateJob], *, out_dir: Path | None, rank: int = 0) -> contextlib.AbstractContextManager:
    """Own the output folders of a ``--out-dir`` batch for the whole run (model loading included).

    Each reference's folder ``DIR/REF_STEM`` is locked (``mvt4g.fs.lock``), not ``DIR``
    itself: two batches on different references may share ``DIR``, and ``DIR`` (the current
    folder by default) gets no lock file. A second process on the same reference is refused
    with ``output folder is in use by pid N``. ``--out FILE`` (one item, written atomically)
    locks nothing; nor do items kept by ``--skip-existing`` (a finished batch's rerun touches nothing).
    Under torchrun only rank 0 locks, for every rank (``rank`` > 0 locks nothing): the ranks
    share the folders, and rank 0 holds them until all ranks are done.
    """
    if out_dir is None or rank != 0:
        return contextlib.nullcontext([])
    return lock_folders((job.paths.video.parent for job in jobs if not job.skip), "output folder")


def library_versions() -> dict[str, str]:
    import diffusers
    import torch

    from mvt4g import __version__

    return {"mvt4g": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "numpy": np.__version__, "python": platform.python_version()}  # fmt: skip


def _metadata(pipeline, job: GenerateJob, reference, result, trajectory_note: str | None, extra: dict) -> dict:
    traj = {"name": job.target.name, "source": job.target.source, "file": job.paths.trajectory.name,
            "relative_to": "the reference camera's first pose"}  # fmt: skip
    if job.target.camera is not None:
        traj["absolute"] = "target cameras in the reference camera file's world, not re-based"
    if trajectory_note:
        traj["note"] = trajectory_note
    frames, height, width = reference.frames.shape[:3]
    meta = {
        "format": META_FORMAT,
        "format_version": META_FORMAT_VERSION,
        "video": job.paths.video.name,
        "output": {"frames": int(frames), "height": int(height), "width": int(width), "fps": reference.fps},
        "model": {"path": str(pipeline.model_dir), "name": pipeline.config.name, "config": pipeline.config.to_dict()},
        "reference": reference.report,
        "trajectory": traj,
        **result.info,
        "outputs": {k: (Path(v).name if v else None) for k, v in job.paths.to_dict().items()},
        "versions": library_versions(),
    }
    meta.update(extra)
    if job.request_key is not None:
        meta["request_key"] = job.request_key  # what --skip-existing compares
    return meta


def write_item(job: GenerateJob, reference, result, trajectory_c2w: np.ndarray, metadata: dict, *, overwrite: bool) -> None:
    """Write one item's files, the main video last; on a failure, remove what this call wrote."""
    from mvt4g.camera.trajectory_files import trajectory_json
    from mvt4g.io.video import write_video
    from mvt4g.tracks.format import write_tracks

    paths = job.paths
    paths.video.parent.mkdir(parents=True, exist_ok=True)
    for p in paths.files():
        check_output_path(p, overwrite=paths.may_replace(p, overwrite))
    companions = paths.may_replace(paths.trajectory, overwrite)  # decided before the video exists
    fps = reference.fps
    written: list[Path] = []
    try:
        if paths.tracks is not None and result.tracks is not None:
            from mvt4g.tracks.overlay import draw_overlay

            write_tracks(paths.tracks, result.tracks)
            written.append(paths.tracks)
            overlay = draw_overlay([reference.frames, result.frames], result.tracks)
            written.append(write_video(paths.overlay, overlay, fps, overwrite=companions))
        if paths.side_by_side is not None:
            both = np.concatenate([reference.frames, result.frames], axis=2)
            written.append(write_video(paths.side_by_side, both, fps, overwrite=companions))
        write_json_atomic(paths.trajectory, trajectory_json(job.target.name, trajectory_c2w))
        written.append(paths.trajectory)
        write_json_atomic(paths.metadata, metadata)
        written.append(paths.metadata)
        write_video(paths.video, result.frames, fps, overwrite=overwrite)
    except BaseException:
        # A half-written item would block a rerun without --overwrite and look complete to a reader.
        for p in written:
            p.unlink(missing_ok=True)
        raise


def job_prompt(job: GenerateJob, prompt: str | None) -> tuple[str | None, str | None]:
    """``(prompt, where it came from)``: the given one (``"--prompt"``), else the reference's
    caption (its ``meta.json`` or ``metadata.csv``), else none."""
    if prompt is not None:
        return prompt, "--prompt"
    caption = job.reference.caption
    if caption.text:
        return caption.text, str(caption.source)
    return None, None


def run_jobs(
    pipeline,
    jobs: list[GenerateJob],
    options: ReferenceOptions,
    *,
    settings,
    seed: int = 0,
    prompt: str | None = None,
    negative_prompt: str = WAN_NEGATIVE_PROMPT,
    track_timestep: float | None = None,
    overwrite: bool = False,
    extra_metadata: dict | None = None,
    on_start: Callable[[GenerateJob, int, int], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_done: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    """Run every job; a failing job is recorded and the rest still run. Returns one outcome per job.

    ``prompt`` None: each reference's own caption (:func:`job_prompt`), as ReCamMaster prompts
    with its test videos' captions; ``negative_prompt``: guidance's unconditional text (Wan's).
    """
    outcomes = []
    cache: dict[Path, object] = {}
    for number, job in enumerate(jobs):
        if on_start is not None:
            on_start(job, number, len(jobs))
        start = time.perf_counter()
        if job.skip:
            outcomes.append(JobOutcome(job, True, 0.0, info={"skipped": True}))
            if on_done is not None:
                on_done(outcomes[-1])
            continue
        try:
            ref_path = job.reference.path
            if ref_path not in cache:
                # Keep only the current reference: jobs are ordered reference by reference.
                cache = {ref_path: read_reference(job.reference, options)}
            reference = cache[ref_path]
            target, c2w, note = job.target.cameras_for(reference)
            text, text_source = job_prompt(job, prompt)
            result = pipeline.generate(
                reference, target, settings=settings, seed=seed, prompt=text, negative_prompt=negative_prompt,
                queries=job.queries, track_timestep=track_timestep, callback=on_step,
            )  # fmt: skip
            if isinstance(result.info.get("guidance"), dict):
                result.info["guidance"]["prompt_source"] = text_source
            meta = _metadata(pipeline, job, reference, result, note, extra_metadata or {})
            write_item(job, reference, result, c2w, meta, overwrite=overwrite)
            info = {"frames": int(result.frames.shape[0]), "timings": result.info.get("timings"),
                    "reference": reference.report, "trajectory_note": note, "guidance": result.info.get("guidance")}  # fmt: skip
            outcome = JobOutcome(job, True, time.perf_counter() - start, info=info)
        except MVT4GError as exc:
            outcome = JobOutcome(job, False, time.perf_counter() - start, str(exc), exc.exit_code)
        except Exception as exc:  # noqa: BLE001 (one item's bug or OOM must not lose the others)
            import traceback

            message = " ".join(f"{type(exc).__name__}: {exc}".split())
            outcome = JobOutcome(job, False, time.perf_counter() - start, message, 1, traceback=traceback.format_exc())
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes
