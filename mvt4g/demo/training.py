"""Training runs of the demo: the base model and the two fine-tunes, each within a time budget.

A run's step count comes from its budget: a short calibration run (``CALIBRATION_STEPS``,
inside the warm-up, so the learning-rate schedule is the one a straight run of the final
length would have had) measures the step time, then the run resumes to
``budget / step time`` steps. The chosen count is written next to the run directory, so an
interrupted demo resumes the same run to the same length.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from mvt4g.errors import Interrupted
from mvt4g.io.atomic import write_json_atomic
from mvt4g.model.freeze import FINETUNE_GROUPS, GROUPS
from mvt4g.train.config import TrainConfig, from_dict
from mvt4g.train.trainer import Trainer

CALIBRATION_STEPS = 3
WARMUP_STEPS = 10  # > CALIBRATION_STEPS: the schedule does not depend on the final length until after calibration
MIN_STEPS = CALIBRATION_STEPS + 2
#: Every group except the text path: the base model learns everything from scratch.
BASE_GROUPS = [g for g in GROUPS if g not in ("text", "tracking_head")]


def base_config(clips: list[Path], out: Path, *, preset: str, frames: int, height: int, width: int, seed: int,
                threads: int) -> TrainConfig:  # fmt: skip
    """Diffusion-only training from scratch with every group trainable: the demo's stand-in for
    the pretrained camera-conditioned backbone (ReCamMaster) that the paper fine-tunes."""
    return from_dict({
        "model": {"preset": preset, "tracking_head": False},
        "data": {"paths": [str(p) for p in clips], "frames": frames, "height": height, "width": width, "queries": 8},
        "loss": {"corr": False, "weighting": "none"},
        "optim": {"lr": 3e-3, "warmup_steps": WARMUP_STEPS, "schedule": "cosine", "train_groups": BASE_GROUPS},
        "train": {"steps": CALIBRATION_STEPS, "batch_size": 8, "seed": seed, "out": str(out), "log_every": 1,
                  "checkpoint_every": 50, "keep_last": 1, "tensorboard": False, "threads": threads},
    }).validate()  # fmt: skip


def finetune_config(clips: list[Path], out: Path, init: Path, *, method: bool, frames: int, height: int, width: int,
                    seed: int, threads: int) -> TrainConfig:  # fmt: skip
    """Fine-tuning from the base with the paper's scope (self-attention, camera modules, tracking
    head). ``method``: L_diff + 0.01 L_track + 0.01 L_corr; otherwise L_diff alone (the baseline)."""
    return from_dict({
        "model": {"init": str(init), "tracking_head": method},
        "data": {"paths": [str(p) for p in clips], "frames": frames, "height": height, "width": width, "queries": 32},
        "loss": {"corr": method, "weighting": "none"},
        "optim": {"lr": 5e-4, "warmup_steps": WARMUP_STEPS, "schedule": "cosine", "train_groups": list(FINETUNE_GROUPS)},
        "train": {"steps": CALIBRATION_STEPS, "batch_size": 4, "seed": seed, "out": str(out), "log_every": 1,
                  "checkpoint_every": 25, "keep_last": 1, "tensorboard": False, "threads": threads},
    }).validate()  # fmt: skip


def plan_path(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".plan.json")


def measured_step_seconds(run_dir: Path) -> float:
    """Median step time of the calibration steps after the first (which pays one-off costs)."""
    times = []
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            record = json.loads(line)
            if "step_s" in record and record.get("step", 0) > 1:
                times.append(float(record["step_s"]))
    return statistics.median(times)


def budgeted_run(
    cfg: TrainConfig,
    seconds: float | None,
    *,
    steps: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Train ``cfg`` for ``steps`` steps, or as many as fit in ``seconds``; resumes an interrupted run.

    Returns the trainer's summary plus ``planned_steps`` and ``step_s`` (the calibration's).
    """
    run_dir = Path(cfg.train.out)
    plan_file = plan_path(run_dir)
    plan = json.loads(plan_file.read_text()) if plan_file.is_file() else None

    def callback(event: dict) -> None:
        if on_progress is not None and event.get("event") == "step":
            on_progress(int(event["step"]), int(event.get("steps") or cfg.train.steps))

    def train(total: int) -> dict:
        cfg.train.steps = total
        resume = (run_dir / "config.toml").is_file()
        summary = Trainer(cfg, resume=resume, callback=callback).run().to_dict()
        if summary["interrupted"]:
            raise Interrupted(f"stopped by {summary['interrupted']} at step {summary['step']}; checkpoint saved "
                              "(run the same command again to resume)", signal_name=summary["interrupted"],
                              path=run_dir)  # fmt: skip
        return summary

    if plan is None:
        step_s = None
        if steps is None:
            train(CALIBRATION_STEPS)
            step_s = measured_step_seconds(run_dir)
            steps = max(MIN_STEPS, int(seconds / step_s))
        plan = {"steps": steps, "step_s": step_s, "budget_s": seconds}
        write_json_atomic(plan_file, plan)
    summary = train(int(plan["steps"]))
    summary.update(planned_steps=int(plan["steps"]), step_s=plan["step_s"], budget_s=plan["budget_s"])
    return summary


def loss_history(run_dir: Path) -> list[dict]:
    """``metrics.jsonl`` of a run, as records."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
