"""Signals in worker processes of a ``--workers`` pool (``mvt4g synth``, ``mvt4g tracks``).

A SIGTERM (from the main process, or to the whole process group from a timeout or a job
scheduler) must end a worker cleanly: its atomic write in progress removes its temporary
(docs/ARCHITECTURE.md, "Signals"). A worker whose main process dies (kill -9) must not live on
as an orphan that writes into a folder a rerun may be using.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal


def install_worker_signals(*, ignore_sigint: bool = False) -> None:
    """Call in a pool's initializer: SIGTERM raises SystemExit (once), and on Linux the worker
    gets SIGTERM when its parent dies. ``ignore_sigint``: Ctrl-C reaches the whole process
    group; leave it to the main process, which then stops the workers with SIGTERM."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _sigterm_when_parent_dies()


def end_worker(stop: SystemExit) -> None:
    """End this worker process after a SIGTERM was handled (its temporary is removed by now);
    the pool would otherwise wait in it for the next job, for ever if the main process died."""
    os._exit(stop.code if isinstance(stop.code, int) else 143)


def _sigterm_when_parent_dies() -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl took effect
        raise SystemExit(143)


def _exit_on_sigterm(signum, frame) -> None:
    # Once: a second SIGTERM (timeout sends one to the process and one to its group) must not
    # cut short the cleanup the first started. SystemExit, not KeyboardInterrupt: an idle
    # worker then ends without a traceback, a busy one removes its temporary first.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)
