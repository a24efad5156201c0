"""Progress bars for the commands that plan jobs in the core and run them: one by one (:func:`run_jobs`),
or however the core runs them, worker processes included (:func:`run_with_progress`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mvt4g.cli import common

Job = TypeVar("Job")
R = TypeVar("R")


def run_jobs(jobs: Sequence[Job], run: Callable[[Job], dict[str, Any]], label: str) -> tuple[list[dict[str, Any]], float]:
    """Run ``run(job)`` for every job in order under a progress bar named ``label``.

    Returns the rows ``run`` gave (one JSON-ready dict per job) and the wall time in seconds.
    """

    def work(advance: Callable[..., None]) -> list[dict[str, Any]]:
        rows = []
        for job in jobs:
            rows.append(run(job))
            advance()
        return rows

    return run_with_progress(len(jobs), label, work)


def run_with_progress(total: int, label: str, work: Callable[[Callable[..., None]], R]) -> tuple[R, float]:
    """Call ``work(advance)`` under a progress bar of ``total`` steps named ``label``; ``work``
    calls ``advance()`` (any arguments are ignored) as each step ends, in any order (worker
    processes finish when they finish). Returns what ``work`` returned and the wall time in seconds."""
    start = time.perf_counter()
    with common.progress() as bar:
        task = bar.add_task(label, total=total)
        result = work(lambda *_args: bar.advance(task))
    return result, time.perf_counter() - start
