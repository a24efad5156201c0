"""`mvt4g demo`: the whole method on the embedded CPU configuration, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvt4g.cli import common
from mvt4g.demo.settings import DEFAULT_STEPS


class _Progress:
    """Stage events -> a rich progress bar (TTY) or one line per stage."""

    def __init__(self, bar):
        self.bar = bar
        self.stages = bar.add_task("demo", total=None)
        self.work = None

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "stage":
            label = f"[{event['index'] + 1}/{event['total']}] {event['title']}"
            self.bar.update(self.stages, total=event["total"], completed=event["index"], description=label)
            if self.work is not None:
                self.bar.remove_task(self.work)
            self.work = self.bar.add_task("  " + event["stage"], total=None)
            if not common.show_progress():
                common.info(label + (" (reused)" if event["reused"] else ""))
        elif kind == "estimate":
            common.info(_estimate_line(event))
        elif kind == "warning":
            common.warn(event["message"])
        elif kind == "progress" and self.work is not None:
            self.bar.update(self.work, completed=event["done"], total=event["total"])
        elif kind == "stage_done":
            self.bar.advance(self.stages)
            if common.show_progress():
                reused = "reused" if event["reused"] else f"{event['seconds']:.1f} s"
                common.info(f"{event['stage']}: {reused}")


def _estimate_line(event: dict) -> str:
    steps = event["steps"]
    if not event.get("seconds"):
        return f"fine-tuning 2 runs x {steps} steps"
    how = "from the time budget" if event.get("budget") else "fixed, whatever this machine's speed"
    return (f"fine-tuning 2 runs x {steps} steps ({how}): about {event['seconds'] / 60:.1f} min at the measured "
            f"{event['step_s']:.2f} s/step")


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder (created; a second run resumes it).")] = Path("mvt4g_demo"),
    base: Annotated[
        str, typer.Option(help="Model both fine-tunes start from: a shipped name (`base`) or a model folder.")
    ] = "base",
    steps: Annotated[int, typer.Option(help="Fine-tuning steps of each run (the same on every machine).")] = DEFAULT_STEPS,
    budget_minutes: Annotated[
        float | None,
        typer.Option(help="Opt-in: size the fine-tunes to a wall-clock budget instead of --steps. Trades "
                     "reproducibility for time: another machine, or a busy one, trains a different number of steps."),
    ] = None,
    real_video: Annotated[
        Path | None,
        typer.Option(help="A real monocular video to generate along arc-left. Default: ../shared/data/real/bear.mp4 if present."),
    ] = None,
    size: Annotated[str | None, typer.Option(help="HxW of the synthetic clips and generated videos. Default: the base model's.")] = None,
    frames: Annotated[int | None, typer.Option(help="Frames per clip, 4k+1. Default: the base model's.")] = None,
    train_scenes: Annotated[int, typer.Option(help="Synthetic training scenes.")] = 24,
    heldout_scenes: Annotated[int, typer.Option(help="Held-out synthetic scenes (evaluation).")] = 3,
    sample_steps: Annotated[int, typer.Option(help="Denoising steps of every generated video.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the scenes, the training and the sampling.")] = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: half the cores, at least 1).")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Delete the demo folder's earlier results and start over.")] = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Run the whole method on a CPU and write a report: OUT/report/report.md.

    Stages: render synthetic multi-view scenes (`synth`), score weight-free flow tracks against
    exact ones (`tracks`), cache latents and Plücker maps (`train prepare`), fine-tune the
    shipped base model with and without the tracking head and L_corr for the same fixed number
    of steps (`train`), generate held-out scenes along arc-left and zoom-in and a real video
    along arc-left (`generate`), score the base, both fine-tunes and copying the reference
    against exact renders (`eval`), and compare attention correspondence per layer with its
    chance level (`analyze`). The report has sample frames, trajectory plots, track overlays,
    loss curves, attention heatmaps, the metric tables and what beat what.

    Two runs with the same settings give the same numbers on any machine; a slow machine takes
    longer (an estimate is printed once the first steps are timed). Resumable: run the same
    command again and finished stages are reused; an interrupted fine-tune continues from its
    checkpoint. 7 to 15 minutes on 2 CPU cores by default, depending on their load.

    Examples:

        mvt4g demo

        mvt4g demo --out demo_long --steps 300

        mvt4g demo --out demo_quick --budget-minutes 3 --train-scenes 8 --json
    """
    from mvt4g.demo import DemoSettings, run_demo

    height, width = common.parse_size(size) if size is not None else (None, None)
    settings = DemoSettings(
        out=out, base=base, steps=steps, budget_minutes=budget_minutes, frames=frames, height=height, width=width,
        train_scenes=train_scenes, heldout_scenes=heldout_scenes, sample_steps=sample_steps, seed=seed,
        threads=threads, **({"real_video": real_video} if real_video is not None else {}),
    ).validate()  # fmt: skip
    with common.progress() as bar:
        result = run_demo(settings, overwrite=overwrite, on_event=_Progress(bar))
    if json_out:
        common.emit_json(result.to_dict())
        return
    _summary(result)


def _summary(result) -> None:
    ev = result.records.get("evaluate", {}).get("summary")
    if ev:
        for name, row in ev["sources"].items():
            psnr = row["mean"].get("psnr")
            text = f"{psnr:.2f} dB" if psnr is not None else "n/a"
            common.info(f"held-out PSNR, {name}: {text}")
    reused = f" ({len(result.reused)} stage(s) reused)" if result.reused else ""
    common.info(f"demo finished in {result.seconds:.0f} s{reused}; report: {result.report}")
