"""One loop for the commands that plan jobs in the core and run them one by one behind a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mvt4g.cli import common

Job = TypeVar("Job")


def run_jobs(jobs: Sequence[Job], run: Callable[[Job], dict[str, Any]], label: str) -> tuple[list[dict[str, Any]], float]:
    """Run ``run(job)`` for every job in order under a progress bar named ``label``.

    Returns the rows ``run`` gave (one JSON-ready dict per job) and the wall time in seconds.
    """
    start = time.perf_counter()
    rows = []
    with common.progress() as bar:
        task = bar.add_task(label, total=len(jobs))
        for job in jobs:
            rows.append(run(job))
            bar.advance(task)
    return rows, time.perf_counter() - start
