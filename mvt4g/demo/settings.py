"""What a demo run does: its settings, and how an opt-in time budget becomes a step count.

The default fine-tunes the shipped base model (``mvt4g info --model base``: the ``small`` DiT
trained on 32x32 synthetic scenes of 9 frames) twice, with and without the tracking
supervision, for a fixed number of steps: the numbers depend on the settings and seeds only,
never on the machine's load. ``--budget-minutes`` trades that for a wall-clock limit.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.memory import check_demo

#: Fine-tuning steps of each of the two runs by default: the whole demo then takes 7 to 15
#: minutes on 2 CPU cores, depending on their load (README, "The main job").
DEFAULT_STEPS = 60
#: With ``--budget-minutes``: the share of what the budget leaves after the data stages that
#: the method's fine-tune may use (the baseline runs as many steps, at a lower cost per step;
#: generation, evaluation and analysis take the rest).
METHOD_SHARE = 0.45
#: Fraction of the whole budget kept for the stages after training.
POST_TRAINING_RESERVE = 0.25
#: Training time when the data stages used up the budget (each run still trains a few steps).
MIN_TRAINING_SECONDS = 10.0


def default_real_video() -> Path | None:
    """``../shared/data/real/bear.mp4`` beside the working directory or the source checkout, if present."""
    here = Path(__file__).resolve().parents[2]
    for root in (Path.cwd(), here):
        candidate = root.parent / "shared" / "data" / "real" / "bear.mp4"
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class DemoSettings:
    """One demo run.

    Attributes:
        out: the demo folder (stages, run directories, report).
        base: the model both fine-tunes start from: a shipped name (``base``) or a model folder.
        steps: fine-tuning steps of each run (ignored when ``budget_minutes`` is set).
        budget_minutes: opt-in wall-clock budget; the step count then comes from a measured
            step time and differs between machines (the report says so).
        views, frames, height, width: synthetic clip shape (frames 4k+1; H, W multiples of the
            model's token stride). ``None``: the base model's own video size.
        train_scenes, heldout_scenes: scenes rendered for training and for evaluation (another seed).
        seed: run seed (scenes, training, sampling).
        sample_steps: denoising steps of every generated video.
        real_video: a real monocular video generated along arc-left (None: skipped, with a note).
        threads: torch CPU threads (0: half the cores, at least 1: torch's small matrices gain
            little from more, and a busy core stalls every parallel region).
    """

    out: Path
    base: str = "base"
    steps: int = DEFAULT_STEPS
    budget_minutes: float | None = None
    views: int = 4
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    train_scenes: int = 24
    heldout_scenes: int = 3
    seed: int = 0
    sample_steps: int = 8
    real_video: Path | None = field(default_factory=default_real_video)
    threads: int = 0

    def validate(self) -> DemoSettings:
        """Check every value and fill the video size from the base model; returns the settings to use."""
        from dataclasses import replace

        from mvt4g.model.checkpoint import read_config
        from mvt4g.model.lookup import resolve_model

        if self.budget_minutes is not None and not 1.0 <= self.budget_minutes <= 24 * 60:
            raise InputError(f"--budget-minutes must be between 1 and 1440, got {self.budget_minutes:g}")
        if not 1 <= self.steps <= 100_000:
            raise InputError(f"--steps must be between 1 and 100000, got {self.steps}")
        if self.views < 2:
            raise InputError(f"the demo needs at least 2 views per scene, got {self.views}")
        if self.train_scenes < 2 or self.heldout_scenes < 1:
            raise InputError("the demo needs at least 2 training scenes and 1 held-out scene")
        if self.sample_steps < 1:
            raise InputError(f"sample steps must be >= 1, got {self.sample_steps}")
        if self.real_video is not None and not Path(self.real_video).is_file():
            raise InputError("no such video", path=self.real_video)
        if self.threads < 0:
            raise InputError(f"threads must be >= 0, got {self.threads}")
        video = read_config(resolve_model(self.base)).video
        s = replace(self, frames=video.frames if self.frames is None else self.frames,
                    height=video.height if self.height is None else self.height,
                    width=video.width if self.width is None else self.width)  # fmt: skip
        if s.frames < 5 or (s.frames - 1) % 4:
            raise InputError(f"frames must be 4k+1 and at least 5, got {s.frames}")
        check_demo(views=s.views, frames=s.frames, height=s.height, width=s.width)
        return s

    @property
    def base_dir(self) -> Path:
        from mvt4g.model.lookup import resolve_model

        return resolve_model(self.base)

    @property
    def torch_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 2) // 2)

    @property
    def budget_s(self) -> float | None:
        return None if self.budget_minutes is None else 60.0 * self.budget_minutes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["real_video"] = None if self.real_video is None else str(self.real_video)
        return d


def stage_key(name: str, values: dict, upstream: list[str]) -> str:
    """Hash of what a stage's output depends on: its own settings and its inputs' keys."""
    text = json.dumps({"stage": name, "values": values, "upstream": upstream, "version": 2}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def method_budget_s(settings: DemoSettings, spent_s: float) -> float | None:
    """With ``--budget-minutes``: seconds for the method's fine-tune after ``spent_s`` seconds of
    data preparation (module constants); None without a budget (fixed steps)."""
    if settings.budget_s is None:
        return None
    left = max(settings.budget_s * (1.0 - POST_TRAINING_RESERVE) - spent_s, MIN_TRAINING_SECONDS)
    return round(METHOD_SHARE * left, 1)
