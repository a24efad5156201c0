"""`mvt4g train`: fine-tune with L_diff + L_track + L_corr; `mvt4g train prepare`: fill the feature cache.

`train` is a typer group whose callback IS the training command (``invoke_without_command``):
``mvt4g train --config F`` trains, ``mvt4g train prepare --config F`` runs the subcommand.
The group's own options are refused in front of ``prepare`` (they would be silently unused).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mvt4g.cli import common

app = typer.Typer(invoke_without_command=True)

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="An example config by name, installed with mvt4g (e.g. tiny; an unknown name "
                 "lists them all), or a TOML file."),
]
DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="Clip directory or folder of clips (repeatable); replaces data.paths."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key, e.g. --set optim.lr=5e-5 (repeatable). With --resume, also "
                 "accepts an edit of the run's config.toml by repeating it (only keys a resume may change)."),
]


def _load(config: str | None, overrides: list[str] | None, data: list[Path] | None, fallback: Path | None = None):
    from mvt4g.errors import InputError
    from mvt4g.train.config import apply_overrides, load_config

    if config is not None:
        cfg = load_config(config)
    elif fallback is not None and fallback.is_file():
        cfg = load_config(fallback)
    elif fallback is not None:
        raise InputError("--resume without --config needs the run's config.toml, which is missing", path=fallback)
    else:
        raise InputError("--config is required: an example config's name or a TOML file (e.g. --config tiny)")
    apply_overrides(cfg, list(overrides or []))
    if data:
        cfg.data.paths = [str(p) for p in data]
    return cfg


def _explicit_keys(overrides: list[str] | None, steps: int | None) -> set[str]:
    """Keys this command sets by name: on --resume they may accept an edit of the run's config.toml."""
    from mvt4g.train.config import override_keys

    return override_keys(list(overrides or [])) | ({"train.steps"} if steps is not None else set())


class _Progress:
    """Turns the trainer's events into a rich progress bar (TTY) or periodic lines."""

    def __init__(self, bar):
        self.bar = bar
        self.task = None
        self.every = 1

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self.every = max(1, event["steps"] // 20)
            self.task = self.bar.add_task("train", total=event["steps"], completed=event["step"])
            where = f", resumed from {event['resumed_from']}" if event.get("resumed_from") else ""
            common.info(
                f"training {event['trainable']:,} of {event['total']:,} parameters on {event['device']} "
                f"({event['precision']}, {event['world_size']} process(es), {event['parallel']}){where}"
            )
            if "text" in event:
                common.info(text_line(event["text"]))
        elif kind == "step":
            losses = f"loss {event['loss']:.4f} diff {event['diff']:.4f} track {event['track']:.3f} corr {event['corr']:.3f}"
            speed = f"{1.0 / event['step_s']:.2f} it/s" if event["step_s"] > 0 else ""
            self.bar.update(self.task, completed=event["step"], description=f"step {event['step']} {losses} {speed}")
            if not common.show_progress() and (event["step"] % self.every == 0):
                common.info(f"step {event['step']}: {losses}, {event['samples_per_s']:.2f} samples/s")
        elif kind == "checkpoint" and not common.show_progress():
            common.info(f"checkpoint: {event['path']}")


def _is_rank0() -> bool:
    return os.environ.get("RANK", "0") == "0"


@app.callback()
def train(
    ctx: typer.Context,
    config: ConfigOpt = None,
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (replaces train.out).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Total optimizer steps (replaces train.steps).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its latest valid checkpoint.")] = False,
    overrides: SetOpt = None,
    no_track_head: Annotated[bool, typer.Option("--no-track-head", help="No tracking head, no L_track (paper Table 3).")] = False,
    no_corr_loss: Annotated[bool, typer.Option("--no-corr-loss", help="No L_corr (paper Table 3).")] = False,
    tap_layer: Annotated[
        int | None,
        typer.Option("--tap-layer", "--layer", min=0, help="DiT block whose Q/K feed the head and L_corr (0-based; "
                     "replaces model.tap_layer; default: the preset's)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Delete an existing run in --out and start over.")] = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Train with L = L_diff + 0.01 L_track + 0.01 L_corr on (reference, target) view pairs.

    Writes RUN_DIR/config.toml, metrics.jsonl, checkpoints/step_N (full train state, the last
    train.keep_last kept) and model/ (the latest weights; `mvt4g generate --model RUN_DIR` reads it).
    Ctrl-C (SIGINT) or SIGTERM saves a checkpoint and exits 130 (SIGTERM: 143); a NaN/inf loss exits 1
    without saving. Multi-process: `torchrun --nproc-per-node N -m mvt4g train ...`.

    --resume continues from the latest valid checkpoint. It may change only keys that leave the
    run's losses as they were (train.steps, train.log_every, train.checkpoint_every,
    train.keep_last, train.threads, train.device, train.parallel, train.tensorboard,
    data.num_workers, data.cache_dir, data.cache_plucker, model.gradient_checkpointing). An
    edited RUN_DIR/config.toml is refused with the changes key by key ("train.keep_last: 3 -> 5")
    until the resume repeats them (`--set train.keep_last=5`) or the file is restored.

    Examples:

        mvt4g train --config tiny --data data/synth --out runs/tiny

        mvt4g train --resume --out runs/tiny --steps 400

        mvt4g train -c small --set optim.lr=5e-5 --no-corr-loss

        mvt4g train -c my_config.toml --tap-layer 3
    """
    if ctx.invoked_subcommand is not None:
        given = [name for name, value in (("--config", config), ("--data", data), ("--out", out), ("--steps", steps),
                 ("--set", overrides), ("--tap-layer", tap_layer)) if value is not None and value != []] + [f for f, v in (("--resume", resume),
                 ("--no-track-head", no_track_head), ("--no-corr-loss", no_corr_loss), ("--json", json_out)) if v]  # fmt: skip
        if given:
            raise typer.BadParameter(f"{given[0]} goes after `{ctx.invoked_subcommand}`, not before it")
        return
    from mvt4g.errors import InputError
    from mvt4g.train.trainer import Trainer, delete_run_dir

    if overwrite and resume:
        raise InputError("--overwrite and --resume contradict each other")
    cfg = _load(config, overrides, data, fallback=(out / "config.toml") if resume and config is None and out else None)
    if out is not None:
        cfg.train.out = str(out)
    if steps is not None:
        cfg.train.steps = steps
    if tap_layer is not None:
        cfg.model.tap_layer = tap_layer
    if no_track_head:
        cfg.model.tracking_head = False
    if no_corr_loss:
        cfg.loss.corr = False
    if overwrite and _is_rank0():
        delete_run_dir(cfg.train.out)
    with common.progress(transient=True) as bar:
        result = Trainer(cfg, resume=resume, callback=_Progress(bar), confirmed=_explicit_keys(overrides, steps)).run()
    summary = result.to_dict()
    if json_out and _is_rank0():
        common.emit_json(summary)
    elif _is_rank0():
        final = ", ".join(f"{k} {v:.4f}" for k, v in result.final.items() if k in ("loss", "diff", "track", "corr"))
        common.info(f"{result.step}/{result.steps} steps in {result.wall_s:.1f} s ({final}); model: {result.model_dir}")
    if result.interrupted:
        common.warn(f"stopped by {result.interrupted} at step {result.step}; checkpoint {result.checkpoint} "
                    f"(continue with --resume --out {result.run_dir})")  # fmt: skip
        raise typer.Exit(143 if result.interrupted == "SIGTERM" else 130)


@app.command("prepare")
def prepare(
    config: ConfigOpt = None,
    data: DataOpt = None,
    overrides: SetOpt = None,
    device: Annotated[str, typer.Option("--device", help="Where to run the autoencoder (auto, cpu, cuda:0).")] = "auto",
    json_out: common.JsonOpt = False,
) -> None:
    """Encode every clip's latents (both temporal directions when data.reverse_prob > 0), every
    view pair's Plücker maps and the captions' text embeddings into the feature cache, so training
    never encodes. Entries already cached (same inputs) are reused.

    Examples:

        mvt4g train prepare --config tiny --data data/synth

        mvt4g train prepare -c wan2.1-1.3b --device cuda:0 --json
    """
    import time

    from mvt4g.train import builders
    from mvt4g.train.cache import prepare as fill_cache
    from mvt4g.train.distributed import pick_device

    cfg = builders.absolutize_paths(_load(config, overrides, data)).validate()
    model_config = builders.resolve_model_config(cfg)
    dataset = builders.build_dataset(cfg, model_config, device=pick_device(device, 0))
    start = time.perf_counter()
    with common.progress() as bar:
        task = bar.add_task("cache", total=None)
        counts = fill_cache(dataset, reverse=cfg.data.reverse_prob > 0,
                            on_item=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    counts["seconds"] = round(time.perf_counter() - start, 3)
    if json_out:
        common.emit_json(counts)
        return
    common.info(f"{counts['items']} cache entries for {counts['clips']} clip(s): {counts['computed']} computed, "
                f"{counts['hits']} reused ({counts['bytes'] / 2**20:.1f} MiB, {counts['seconds']:.1f} s)")  # fmt: skip
    common.info(text_line(counts["text"]))


def text_line(text: dict) -> str:
    """One line on the captions: encoded by which umT5, or unused (the learned null text)."""
    have = f"{text['captioned']} clip(s) captioned, {text['uncaptioned']} without (encoded as \"\")"
    if text["encoder"]:
        return f"captions: {have}, umT5 at {text['encoder']}"
    if text["captioned"]:
        return f"captions: not used ({text['captioned']} clip(s) have one): the model has no text encoder and " \
               "learns a null text embedding"
    return "captions: none; the model has no text encoder and learns a null text embedding"
