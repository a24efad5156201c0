"""``run_demo``: the demo's stages in order, each reused when finished with the same inputs.

Stages and folders under ``OUT``:

    data                 data/train, data/heldout        synthetic clips (``mvt4g synth``)
    tracks               tracks/                         flow tracks scored against exact ones
    features             data/*/scene_*/cache            latents and Plücker maps (``train prepare``)
    finetune_method      runs/mvtrack4gen                the base fine-tuned with L_track and L_corr
    finetune_baseline    runs/baseline                   the base fine-tuned with L_diff only, same steps
    generate             generate/MODEL/                 novel views (``mvt4g generate``)
    evaluate             eval/                           held-out scores (``mvt4g eval``)
    analyze              analysis/MODEL/                 attention correspondence (``mvt4g analyze``)
    report               report/                         report.md and its pictures

A stage that did not finish has its folder rebuilt, except the training runs, which resume
from their checkpoints (Ctrl-C loses at most a few steps).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mvt4g.demo import results, stages, training
from mvt4g.demo.settings import DemoSettings, method_budget_s, stage_key
from mvt4g.demo.state import DemoState
from mvt4g.errors import InputError

Event = Callable[[dict], None]

TITLES = {
    "data": "Rendering synthetic multi-view scenes",
    "tracks": "Multi-view point tracks (flow) vs exact",
    "features": "Caching latents and Plücker ray maps",
    "finetune_method": "Fine-tuning with L_track + L_corr (MVTrack4Gen)",
    "finetune_baseline": "Fine-tuning with L_diff only (baseline)",
    "generate": "Generating novel views",
    "evaluate": "Evaluating on held-out scenes",
    "analyze": "Attention-correspondence analysis",
    "report": "Writing the report",
}
STAGES = tuple(TITLES)


@dataclass
class DemoResult:
    out: Path
    records: dict[str, dict] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def report(self) -> Path:
        return self.out / "report" / "report.md"

    def to_dict(self) -> dict:
        return {"out": str(self.out), "report": str(self.report), "seconds": round(self.seconds, 1),
                "reused": self.reused, "skipped": self.skipped,
                "stages": {k: {"seconds": r["seconds"], "summary": r["summary"]} for k, r in self.records.items()}}  # fmt: skip


class _Run:
    def __init__(self, settings: DemoSettings, state: DemoState, on_event: Event):
        self.s, self.state, self.emit = settings, state, on_event
        self.result = DemoResult(settings.out)
        self.keys: dict[str, str] = {}

    def progress(self, stage: str) -> Callable[[int, int], None]:
        return lambda done, total: self.emit({"event": "progress", "stage": stage, "done": done, "total": total})

    def stage(self, name: str, values: dict, upstream: list[str], work: Callable[[], dict], *,
              folder: Path | None = None, resumable: bool = False) -> dict:  # fmt: skip
        key = stage_key(name, values, [self.keys[u] for u in upstream if u in self.keys])
        self.keys[name] = key
        index = STAGES.index(name)
        record = self.state.load(name, key)
        self.emit({"event": "stage", "stage": name, "title": TITLES[name], "index": index, "total": len(STAGES),
                   "reused": record is not None})  # fmt: skip
        if record is None:
            if folder is not None:
                _claim(folder, key, resumable)
            start = time.perf_counter()
            summary = work()
            record = self.state.save(name, key, summary, time.perf_counter() - start)
        else:
            self.result.reused.append(name)
        self.result.records[name] = record
        self.emit({"event": "stage_done", "stage": name, "seconds": record["seconds"], "reused": name in self.result.reused})
        return record["summary"]


#: Cost of a baseline step relative to a method step (no tracking head, no L_corr), for the
#: estimate printed before training: the default demo's fine-tunes took 112 s and 512 s for
#: 60 steps each on 2 shared cores.
BASELINE_STEP_COST = 0.25


def model_fingerprint(model_dir: Path) -> dict:
    """What identifies a base model for the stage keys: its folder and its weights' size and time."""
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    return {"path": str(model_dir), "weights": [[w.name, w.stat().st_size, int(w.stat().st_mtime)] for w in weights]}


def _claim(folder: Path, key: str, resumable: bool) -> None:
    """Empty ``folder`` for a stage that did not finish, unless it may resume work of the same key."""
    mark = folder.with_name(folder.name + ".key")
    if folder.exists() and not (resumable and mark.is_file() and mark.read_text().strip() == key):
        shutil.rmtree(folder)
        training.plan_path(folder).unlink(missing_ok=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(key + "\n")


def run_demo(settings: DemoSettings, *, overwrite: bool = False, on_event: Event | None = None) -> DemoResult:
    """Run (or resume) the demo in ``settings.out``; see the module docstring. The demo folder
    is locked for the whole run: a second demo on it is refused ("demo folder is in use by pid N")."""
    from mvt4g.demo.state import MARKER
    from mvt4g.fs.atomic import check_output_location
    from mvt4g.fs.lock import directory_lock, is_lock_file

    settings = settings.validate()
    if settings.real_video is not None:
        from mvt4g.io.video import probe_video

        probe_video(settings.real_video)  # a corrupt video fails now, not after training
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise InputError("--out is a file", path=out)
    check_output_location(out)
    if out.is_dir() and not (out / MARKER).is_file() and any(not is_lock_file(p) for p in out.iterdir()):
        raise InputError("folder exists and is not a demo folder (no demo.json); choose another --out", path=out)
    with directory_lock(out, "demo folder"):
        return _run_demo_locked(settings, overwrite, on_event)


def _run_demo_locked(settings: DemoSettings, overwrite: bool, on_event: Event | None) -> DemoResult:
    from mvt4g.demo.report import write_report
    from mvt4g.threads import torch_threads

    state = DemoState(settings.out)
    state.prepare(settings.to_dict(), overwrite)
    run = _Run(settings, state, on_event or (lambda event: None))
    s, out = settings, settings.out
    if s.real_video is None:  # said once the inputs are known to be good, not before a refusal
        run.emit({"event": "warning", "message": "no real video found (../shared/data/real/bear.mp4); "
                  "pass --real-video to include one"})
    start = time.perf_counter()
    with torch_threads(s.torch_threads):
        data = run.stage("data", {"views": s.views, "frames": s.frames, "size": [s.height, s.width],
                                  "train": s.train_scenes, "heldout": s.heldout_scenes, "seed": s.seed,
                                  "scenes": stages.SCENE_DISTRIBUTION}, [],
                         lambda: stages.make_data(s, out / "data", run.progress("data")), folder=out / "data")  # fmt: skip
        train_clips = [Path(p) for p in data["train"]]
        heldout = [Path(p) for p in data["heldout"]]
        run.stage("tracks", {"scene": stages.TRACKS_SCENE, "seed": s.seed}, [],
                  lambda: stages.make_tracks(s, out / "tracks", run.progress("tracks")), folder=out / "tracks")  # fmt: skip
        method_dir, baseline_dir = out / "runs" / "mvtrack4gen", out / "runs" / "baseline"
        base_dir = s.base_dir
        common = dict(frames=s.frames, height=s.height, width=s.width, seed=s.seed, threads=s.torch_threads)
        method_cfg = training.finetune_config(train_clips, method_dir, base_dir, method=True, **common)
        baseline_cfg = training.finetune_config(train_clips, baseline_dir, base_dir, method=False, **common)
        run.stage("features", {}, ["data"], lambda: stages.make_features(method_cfg, run.progress("features")))

        spent = sum(run.result.records[n]["seconds"] for n in ("data", "tracks", "features"))
        budget_s = method_budget_s(s, spent)
        steps = None if budget_s is not None else s.steps

        def estimate(plan: dict) -> None:
            seconds = plan["steps"] * plan["step_s"] * (1.0 + BASELINE_STEP_COST) if plan["step_s"] else None
            run.emit({"event": "estimate", "steps": plan["steps"], "step_s": plan["step_s"], "seconds": seconds,
                      "budget": plan["budget_s"] is not None})  # fmt: skip

        values = {"base": model_fingerprint(base_dir), "steps": steps, "budget_minutes": s.budget_minutes}
        method = run.stage("finetune_method", values, ["data"],
                           lambda: training.calibrated_run(method_cfg, steps=steps, seconds=budget_s, on_plan=estimate,
                                                           on_progress=run.progress("finetune_method")),
                           folder=method_dir, resumable=True)  # fmt: skip
        run.stage("finetune_baseline", {}, ["finetune_method"],
                  lambda: training.calibrated_run(baseline_cfg, steps=method["planned_steps"],
                                                  on_progress=run.progress("finetune_baseline")),
                  folder=baseline_dir, resumable=True)  # fmt: skip
        models = {"base": base_dir, "mvtrack4gen": method_dir / "model", "baseline": baseline_dir / "model"}
        trained = [n for n in ("finetune_method", "finetune_baseline") if n in run.keys]
        values = {"steps": s.sample_steps, "real": str(s.real_video), "models": sorted(models)}
        run.stage("generate", values, trained,
                  lambda: {name: results.generate_videos(s, path, heldout, out / "generate" / name,
                                                         tracks=name == "mvtrack4gen", progress=run.progress("generate"))
                           for name, path in models.items()},
                  folder=out / "generate")  # fmt: skip
        run.stage("evaluate", values, trained,
                  lambda: results.evaluate(s, models, out / "data" / "heldout", out / "eval", run.progress("evaluate")),
                  folder=out / "eval")  # fmt: skip
        run.stage("analyze", values, trained,
                  lambda: {name: results.analyze(s, path, heldout, out / "analysis" / name, run.progress("analyze"))
                           for name, path in models.items()},
                  folder=out / "analysis")  # fmt: skip
        run.result.seconds = time.perf_counter() - start
        run.emit({"event": "stage", "stage": "report", "title": TITLES["report"], "index": len(STAGES) - 1,
                  "total": len(STAGES), "reused": False})  # fmt: skip
        write_report(run.result, s)
        run.emit({"event": "stage_done", "stage": "report", "seconds": 0.0, "reused": False})
    return run.result
