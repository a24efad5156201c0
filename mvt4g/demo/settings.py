"""What a demo run does: its settings and how its time budget is shared between stages.

The default is the embedded CPU configuration: the ``small`` DiT (6 blocks of 8 heads x 32)
on 32x32 synthetic scenes of 9 frames, which trains in minutes on two cores. Every size here
is a setting, so a larger budget can buy a larger demo.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.memory import check_demo
from mvt4g.model.config import preset_names

#: Shares of the training time (what is left of the budget after data preparation and the
#: reserve for generation, evaluation and analysis). The baseline fine-tune runs as many
#: steps as the method's, without the tracking head and L_corr, so it costs less: it gets
#: the rest.
BASE_SHARE = 0.62
METHOD_SHARE = 0.28
#: Fraction of the whole budget kept for the stages after training.
POST_TRAINING_RESERVE = 0.2
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
        budget_minutes: wall-clock budget of the whole run; training gets what the other
            stages leave (module constants).
        preset: model preset trained from scratch (the stand-in for the pretrained backbone).
        views, frames, height, width: synthetic clip shape (frames 4k+1; H, W multiples of the
            preset's token stride).
        train_scenes, heldout_scenes: scenes rendered for training and for evaluation (another seed).
        seed: run seed (scenes, training, sampling).
        sample_steps: denoising steps of every generated video.
        real_video: a real monocular video generated along arc-left (None: skipped, with a note).
        threads: torch CPU threads (0: half the cores, at least 1: torch's small matrices gain
            little from more, and a busy core stalls every parallel region).
    """

    out: Path
    budget_minutes: float = 10.0
    preset: str = "small"
    views: int = 4
    frames: int = 9
    height: int = 32
    width: int = 32
    train_scenes: int = 24
    heldout_scenes: int = 3
    seed: int = 0
    sample_steps: int = 8
    real_video: Path | None = field(default_factory=default_real_video)
    threads: int = 0

    def validate(self) -> DemoSettings:
        if not 1.0 <= self.budget_minutes <= 24 * 60:
            raise InputError(f"--budget-minutes must be between 1 and 1440, got {self.budget_minutes:g}")
        if self.preset not in preset_names():
            raise InputError(f"unknown preset {self.preset!r} (choose from: {', '.join(preset_names())})")
        if self.views < 2:
            raise InputError(f"the demo needs at least 2 views per scene, got {self.views}")
        if self.frames < 5 or (self.frames - 1) % 4:
            raise InputError(f"frames must be 4k+1 and at least 5, got {self.frames}")
        if self.train_scenes < 2 or self.heldout_scenes < 1:
            raise InputError("the demo needs at least 2 training scenes and 1 held-out scene")
        if self.sample_steps < 1:
            raise InputError(f"sample steps must be >= 1, got {self.sample_steps}")
        if self.real_video is not None and not Path(self.real_video).is_file():
            raise InputError("no such video", path=self.real_video)
        if self.threads < 0:
            raise InputError(f"threads must be >= 0, got {self.threads}")
        check_demo(views=self.views, frames=self.frames, height=self.height, width=self.width)
        return self

    @property
    def torch_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 2) // 2)

    @property
    def budget_s(self) -> float:
        return 60.0 * self.budget_minutes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["real_video"] = None if self.real_video is None else str(self.real_video)
        return d


def stage_key(name: str, values: dict, upstream: list[str]) -> str:
    """Hash of what a stage's output depends on: its own settings and its inputs' keys."""
    text = json.dumps({"stage": name, "values": values, "upstream": upstream, "version": 1}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class TrainingBudget:
    """Seconds for the base and the method's fine-tune, fixed once the data stages have run (the
    baseline fine-tune runs the method's step count when it fits, see ``runner``)."""

    base_s: float
    method_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def training_budget(settings: DemoSettings, spent_s: float) -> TrainingBudget:
    """Share what the budget leaves after ``spent_s`` seconds of data preparation (see the constants)."""
    left = max(settings.budget_s * (1.0 - POST_TRAINING_RESERVE) - spent_s, MIN_TRAINING_SECONDS)
    return TrainingBudget(base_s=round(BASE_SHARE * left, 1), method_s=round(METHOD_SHARE * left, 1))
