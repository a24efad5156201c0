"""Training runs of the demo: the two fine-tunes of the base, for a fixed number of steps.

Every run starts with a short calibration (``CALIBRATION_STEPS``, inside the warm-up, so the
learning-rate schedule is the one a straight run of the final length has): it measures the
step time, for the estimate printed up front or, with an opt-in time budget, for the step
count (``budget / step time``). Then the run resumes to its length; resuming is exact, so the
result equals a straight run. The chosen count is written next to the run directory, so an
interrupted demo resumes the same run to the same length.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from mvt4g.errors import Interrupted
from mvt4g.fs.atomic import write_json_atomic
from mvt4g.fs.jsonio import read_json, read_jsonl
from mvt4g.model.freeze import FINETUNE_GROUPS
from mvt4g.train.config import TrainConfig, from_dict
from mvt4g.train.trainer import Trainer

CALIBRATION_STEPS = 3
WARMUP_STEPS = 10  # > CALIBRATION_STEPS: the schedule does not depend on the final length until after calibration
MIN_STEPS = CALIBRATION_STEPS + 2


def finetune_config(clips: list[Path], out: Path, init: Path, *, method: bool, frames: int, height: int, width: int,
                    seed: int, threads: int) -> TrainConfig:  # fmt: skip
    """Fine-tuning from the base with the paper's scope (self-attention, camera modules, tracking
    head) and the shipped MVTrack4Gen recipe's optimiser (packaged config ``mvtrack4gen``).
    ``method``: L_diff + 0.01 L_track + 0.01 L_corr; otherwise L_diff alone (the baseline)."""
    return from_dict({
        "model": {"init": str(init), "tracking_head": method},
        "data": {"paths": [str(p) for p in clips], "frames": frames, "height": height, "width": width, "queries": 32},
        "loss": {"corr": method, "weighting": "none"},
        "optim": {"lr": 2e-4, "warmup_steps": WARMUP_STEPS, "schedule": "cosine", "train_groups": list(FINETUNE_GROUPS)},
        "train": {"steps": CALIBRATION_STEPS, "batch_size": 4, "seed": seed, "out": str(out), "log_every": 1,
                  "checkpoint_every": 25, "keep_last": 1, "tensorboard": False, "threads": threads},
    }).validate()  # fmt: skip


def plan_path(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".plan.json")


def measured_step_seconds(run_dir: Path) -> float:
    """Median step time of the calibration steps after the first (which pays one-off costs)."""
    records = read_jsonl(run_dir / "metrics.jsonl", what="metrics log")
    times = [float(r["step_s"]) for r in records if "step_s" in r]
    later = [float(r["step_s"]) for r in records if "step_s" in r and r.get("step", 0) > 1]
    return statistics.median(later or times)


def calibrated_run(
    cfg: TrainConfig,
    *,
    steps: int | None = None,
    seconds: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[dict], None] | None = None,
) -> dict:
    """Train ``cfg`` for ``steps`` steps, or (``steps`` None) as many as fit in ``seconds``;
    resumes an interrupted run. ``on_plan`` gets {"steps", "step_s", "budget_s"} once the
    calibration has measured the step time.

    Returns the trainer's summary plus ``planned_steps`` and ``step_s`` (the calibration's).
    """
    run_dir = Path(cfg.train.out)
    plan_file = plan_path(run_dir)
    plan = read_json(plan_file, what="demo plan") if plan_file.is_file() else None

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
        train(min(CALIBRATION_STEPS, steps or CALIBRATION_STEPS))
        step_s = measured_step_seconds(run_dir)
        if steps is None:
            steps = max(MIN_STEPS, int(seconds / step_s))
        plan = {"steps": steps, "step_s": step_s, "budget_s": seconds}
        write_json_atomic(plan_file, plan)
    if on_plan is not None:
        on_plan(plan)
    summary = train(int(plan["steps"]))
    summary.update(planned_steps=int(plan["steps"]), step_s=plan["step_s"], budget_s=plan["budget_s"])
    return summary


def loss_history(run_dir: Path) -> list[dict]:
    """``metrics.jsonl`` of a run, as records."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return read_jsonl(path, what="metrics log")
