"""Tracks for a whole dataset: find its clips, plan them, run them in worker processes.

A dataset folder is any folder with clip folders somewhere below it (a clip folder is one
with ``videos/``; it is not searched further): a MultiCamVideo release
(``train/f24_aperture5/scene1/videos/cam01.mp4 ...`` with ``cameras/camera_extrinsics.json``)
or the output of ``mvt4g synth``. Hidden names (``.NAME``, the temporaries a killed writer
leaves) are skipped.

Clips named directly are checked as ``mvt4g tracks CLIP...`` always did: a bad one stops the
run before any work (:class:`~mvt4g.errors.InputError`). A bad clip found in a dataset folder
(no cameras, views of different lengths, ...) is set aside with a one-line problem instead,
at planning time (the checks read video headers, never pixels), and the others go on.
Existing outputs that must not be replaced stop the run either way.

    plan = plan_dataset(["MultiCamVideo-Dataset/train"], TrackOptions(method="flow"))
    with lock_track_jobs(plan.jobs) as jobs:               # the clip folders are this run's
        rows = run_track_jobs(jobs, workers=2)             # one row per job, in order
    rows = plan.rows(rows)                                 # with the bad clips' rows, in clip order

Workers are processes (``spawn``), each with ``threads_per_worker`` OpenCV and BLAS threads
so that N workers share the machine's cores instead of oversubscribing them; a clip's tracks
do not depend on the number of workers. SIGTERM or Ctrl-C stop the workers too: a clip being
written is finished atomically or not at all (its temporary removed), never half-written.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from mvt4g.errors import InputError, MVT4GError, OutputExistsError
from mvt4g.io.clip import find_clips, is_clip_dir  # noqa: F401 (is_clip_dir: part of this module's API)
from mvt4g.workers import end_worker, install_worker_signals
from mvt4g.tracks.compute import (
    TrackJob,
    TrackOptions,
    load_plugin,
    plan_track_job,
    run_track_job,
)

#: Environment variables that size the BLAS/OpenMP thread pools of a worker process.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class BadClip:
    """A clip of a dataset folder that cannot be tracked: ``problem`` is one line naming it."""

    clip: Path
    problem: str

    def row(self) -> dict:
        """The row a run reports for it (status ``failed``, stage ``plan``)."""
        return {"clip": str(self.clip), "status": "failed", "stage": "plan", "error": self.problem, "exit_code": 2}


def problem_line(clip: Path, exc: BaseException) -> str:
    """One line naming the clip and the problem (an error that names a file in it already does)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text.startswith(str(clip)) else f"{clip}: {text}"


@dataclass
class DatasetPlan:
    """Every clip of a run in order: a :class:`TrackJob` or, for a bad clip, a :class:`BadClip`."""

    entries: list[TrackJob | BadClip]
    scanned: bool  # some clips were found in a dataset folder (not all named directly)

    @property
    def jobs(self) -> list[TrackJob]:
        return [e for e in self.entries if isinstance(e, TrackJob)]

    @property
    def bad(self) -> list[BadClip]:
        return [e for e in self.entries if isinstance(e, BadClip)]

    def rows(self, job_rows: Sequence[dict]) -> list[dict]:
        """``job_rows`` (one per :attr:`jobs`, in order) with the bad clips' rows put in clip order."""
        it = iter(job_rows)
        return [e.row() if isinstance(e, BadClip) else next(it) for e in self.entries]


def dataset_clips(paths: Sequence[str | Path]) -> list[tuple[Path, bool]]:
    """``(clip folder, found in a dataset folder)`` for each path: a clip or a dataset folder.

    A path that is neither a folder nor exists is left to the clip reader (its one-line error);
    a clip reached twice is kept once.
    """
    out: list[tuple[Path, bool]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        named = not path.is_dir() or is_clip_dir(path)
        for clip in [path] if named else find_clips(path):
            key = clip.resolve()
            if key not in seen:
                seen.add(key)
                out.append((clip, not named))
    return out


def plan_dataset(
    paths: Sequence[str | Path],
    options: TrackOptions,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> DatasetPlan:
    """Plan tracks for clips and dataset folders (module docstring); no work is done.

    Raises :class:`InputError` for a bad clip named directly, for ``out`` with more than one
    clip or with a dataset folder, and :class:`~mvt4g.errors.OutputExistsError` for an output
    that must not be replaced; bad clips found in a dataset folder become :class:`BadClip`.
    """
    clips = dataset_clips(paths)
    scanned = any(found for _, found in clips)
    if out is not None and (len(paths) > 1 or scanned):
        raise InputError("--out takes one clip; without it each clip gets CLIP/tracks.npz")
    tracker = load_plugin(options)
    entries: list[TrackJob | BadClip] = []
    for clip, found in clips:
        try:
            entries.append(plan_track_job(clip, options, out=out, overwrite=overwrite, tracker=tracker))
        except OutputExistsError:
            raise
        except InputError as exc:
            if not found:
                raise
            entries.append(BadClip(clip, problem_line(clip, exc)))
    return DatasetPlan(entries, scanned)


def default_workers_threads(workers: int) -> int:
    """Threads for each of ``workers`` processes: the usable cores shared out, at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def failed_row(job: TrackJob, exc: BaseException) -> dict:
    """The row of a job whose work raised ``exc`` (status ``failed``, stage ``run``)."""
    if isinstance(exc, MVT4GError):
        error, code = problem_line(job.clip.root, exc), exc.exit_code
    else:
        error, code = problem_line(job.clip.root, f"internal error: {type(exc).__name__}: {exc}"), 1
    return {"clip": str(job.clip.root), "out": str(job.out), "method": job.plan.method, "reason": job.plan.reason,
            "status": "failed", "stage": "run", "error": error, "exit_code": code}  # fmt: skip


def _run_caught(job: TrackJob) -> dict:
    try:
        return run_track_job(job)
    except Exception as exc:  # noqa: BLE001 (one clip's failure, bug or not, must not stop the dataset)
        return failed_row(job, exc)


def run_track_jobs(
    jobs: Sequence[TrackJob],
    *,
    workers: int = 1,
    keep_going: bool = True,
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run planned jobs; returns their rows (:func:`mvt4g.tracks.compute.run_track_job`) in job order.

    ``workers > 1`` computes the clips with work in that many processes (the rows are the same).
    With ``keep_going`` a job that raises gives a row with status ``failed`` and its ``error``
    line and the others go on; without, the error propagates (one job: the CLI's own error).
    ``on_done(row)`` is called as each job ends (for progress bars), in the order they end.
    """
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    rows: list[dict | None] = [None] * len(jobs)
    run_one = _run_caught if keep_going else run_track_job

    def done(i: int, row: dict) -> None:
        rows[i] = row
        if on_done:
            on_done(row)

    todo = [i for i, job in enumerate(jobs) if job.status == "todo"]
    for i, job in enumerate(jobs):
        if job.status != "todo":
            done(i, run_track_job(job))  # reads the existing file's quality only
    if workers == 1 or len(todo) <= 1:
        for i in todo:
            done(i, run_one(jobs[i]))
        return rows  # type: ignore[return-value]
    n = min(workers, len(todo))
    with _worker_pool(n, default_workers_threads(n)) as pool:
        # A plug-in callable loaded from a file does not pickle: each worker loads it again.
        pending = {pool.submit(_run_in_worker, replace(jobs[i], tracker=None)): i for i in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=pending.get):
                i = pending.pop(fut)
                exc = fut.exception()
                if exc is not None:  # a worker that died (out of memory, killed)
                    if not keep_going:
                        raise exc
                    done(i, failed_row(jobs[i], exc))
                else:
                    done(i, fut.result())
    return rows  # type: ignore[return-value]


@contextlib.contextmanager
def _worker_pool(workers: int, threads: int) -> Iterator[ProcessPoolExecutor]:
    """A ``spawn`` pool whose workers use ``threads`` threads each; on any exception (a
    failure, Ctrl-C, SIGTERM) the clips not started are dropped and the running ones are sent
    SIGTERM, which ends each after removing its temporary (an atomic write in progress)."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: str(threads) for k in THREAD_ENV})  # read by the workers' numpy and OpenCV at import
    # "spawn": a fresh interpreter per worker, safe with the parent's thread pools (fork is not).
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(threads,))  # fmt: skip
    try:
        yield pool
    except BaseException:
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if proc.is_alive():
                    os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                proc.join(timeout=60)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _init_worker(threads: int) -> None:
    import cv2

    cv2.setNumThreads(threads)
    # Ctrl-C reaches the whole process group; the main process then stops the workers with
    # SIGTERM (_worker_pool), so a worker does not start another clip meanwhile.
    install_worker_signals(ignore_sigint=True)


def _run_in_worker(job: TrackJob) -> dict:
    try:
        return _run_caught(job)
    except SystemExit as stop:  # SIGTERM: the clip's temporary is removed by now
        end_worker(stop)
