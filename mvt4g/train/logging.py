"""Training metrics: a JSONL file, TensorBoard when installed, and a callback for the CLI.

The core prints nothing. :class:`MetricsLogger` (rank 0 only) appends one JSON object per
logged step to ``RUN_DIR/metrics.jsonl``, mirrors scalars to TensorBoard
(``RUN_DIR/tensorboard``) when ``torch.utils.tensorboard`` can be imported, and hands every
event to ``callback`` (the CLI's rich progress bar). Events are dicts with an ``"event"`` key:

    {"event": "start", "step": s0, "steps": N, ...}       once, before the first step
    {"event": "step", "step": s, "loss": ..., ...}       every ``log_every`` steps (and the last)
    {"event": "checkpoint", "step": s, "path": ...}      after each checkpoint
    {"event": "end", ...}                                 once, with the summary

Resuming truncates ``metrics.jsonl`` to the steps at or before the resumed checkpoint, so
the file always describes one uninterrupted trajectory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

Callback = Callable[[dict[str, Any]], None]


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: write them as strings so the file stays valid JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop records after ``last_step`` (steps are 1-based counts of finished steps)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if int(record.get("step", 0)) <= last_step:
            kept.append(line)
    path.write_text("".join(f"{line}\n" for line in kept))


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (one-line InputError for a missing or broken one)."""
    from mvt4g.fs.jsonio import read_jsonl

    return read_jsonl(path, what="metrics log")


class MetricsLogger:
    """See the module docstring. ``enabled=False`` (ranks > 0) makes every method a no-op."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, tensorboard: bool = True, callback: Callback | None = None):
        self.enabled = enabled
        self.callback = callback if enabled else None
        self.path = Path(run_dir) / "metrics.jsonl"
        self._fh = None
        self._tb = None
        if not enabled:
            return
        self._fh = open(self.path, "a", buffering=1)  # noqa: SIM115 (closed in close(); line-buffered records)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    @property
    def tensorboard_enabled(self) -> bool:
        return self._tb is not None

    def event(self, record: dict[str, Any]) -> None:
        """Send a non-step event to the callback only."""
        if self.callback is not None:
            self.callback(record)

    def log_step(self, record: dict[str, Any]) -> None:
        """Write one step's metrics (``record["step"]`` required) and tell the callback."""
        if not self.enabled:
            return
        record = {"event": "step", **record}
        self._fh.write(json.dumps({k: _clean(v) for k, v in record.items() if k != "event"}) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(f"train/{key}", value, record["step"])
        if self.callback is not None:
            self.callback(record)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
