"""The training loop, assembled from the builders, the checkpointer and the logger.

``Trainer(cfg, resume=..., callback=...).run() -> TrainResult``. One optimizer step:

    for each of train.accumulate micro-batches (this process's share of the global batch):
        losses = train_module(batch)            (forward; per-sample losses averaged)
        stop with WorkFailed if any process sees a NaN/inf loss (before any backward)
        (losses["loss"] / accumulate).backward()
    clip gradients (optim.grad_clip); stop on a non-finite gradient norm
    optimizer.step(); scheduler.step()
    log the losses averaged over processes; checkpoint every train.checkpoint_every steps

SIGINT / SIGTERM only raise a flag; at the next step boundary every process agrees to stop
(an all-reduce), a checkpoint is written and :attr:`TrainResult.interrupted` names the
signal (the CLI then exits 130 for SIGINT, 143 for SIGTERM). A second signal acts at once
(the default handler).

Resume: a run directory with ``config.toml`` is continued from its latest valid checkpoint
(``--resume``); the configs must agree except for keys that do not change the trajectory
(:data:`RESUMABLE_KEYS`, e.g. ``train.steps``), otherwise ConfigError (exit 2). An edit of
the run's config.toml is refused with its key-by-key diff unless it only touches those keys
and the command repeats it with ``--set`` (:func:`check_config_edit`).
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mvt4g.errors import ConfigError, InputError, OutputExistsError, WorkFailed
from mvt4g.fs.atomic import check_output_location, write_text_atomic
from mvt4g.fs.lock import DirectoryLock, is_lock_file
from mvt4g.train import builders
from mvt4g.train.cache import caption_summary
from mvt4g.train.checkpointing import Checkpointer
from mvt4g.train.config import TrainConfig, diff_keys, load_config, to_toml, toml_value
from mvt4g.train.distributed import (
    DistContext,
    all_reduce_mean,
    any_process,
    barrier,
    resolve_parallel,
    setup,
    teardown,
    wrap,
)
from mvt4g.train.logging import Callback, MetricsLogger, truncate_metrics
from mvt4g.train.step import LOSS_KEYS

#: Config keys a resumed run may change: they do not alter the sequence of losses.
RESUMABLE_KEYS = frozenset({
    "train.steps", "train.log_every", "train.checkpoint_every", "train.keep_last", "train.threads",
    "train.device", "train.parallel", "train.tensorboard", "train.out", "data.num_workers", "data.cache_dir",
    "data.cache_plucker", "model.gradient_checkpointing",
})  # fmt: skip


@dataclass
class TrainResult:
    """What a run did (the CLI's ``--json`` summary)."""

    run_dir: str
    start_step: int
    step: int
    steps: int
    samples: int
    final: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    model_dir: str | None = None
    wall_s: float = 0.0
    interrupted: str | None = None
    resumed_from: str | None = None
    parameters: dict[str, int] = field(default_factory=dict)
    world_size: int = 1
    cache: dict[str, int] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)  # the captions: encoder, captioned clips (cache.caption_summary)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StopFlag:
    """SIGINT/SIGTERM handler that records the signal instead of raising (main thread only)."""

    def __init__(self):
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name
        for sig, handler in self._old.items():  # a second signal gets the default behaviour
            signal.signal(sig, handler)

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers, no flag
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


CONFIG_HASH_NAME = "config.sha256"  # what config.toml held when the run wrote it: --resume refuses an edited one
CONFIG_COPY_NAME = ".config.toml.written"  # a copy of it, so a refusal can say what the edit changed


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool, confirmed: frozenset[str] = frozenset()) -> None:
    """Refuse a used run directory without ``--resume``, or a resume with another config.

    ``confirmed``: the keys this command sets explicitly (``--set``, ``--steps``), which may
    accept an edit of the run's config.toml (:func:`check_config_edit`).
    """
    saved = run_dir / "config.toml"
    if not resume:
        if run_dir.exists() and any(not is_lock_file(p) for p in run_dir.iterdir()):
            raise OutputExistsError("run directory exists and is not empty (pass --resume to continue it, or choose "
                                    "another --out)", path=run_dir)  # fmt: skip
    elif saved.is_file():
        previous = check_config_edit(cfg, run_dir, confirmed)
        changed = [k for k in diff_keys(previous, cfg) if k not in RESUMABLE_KEYS]
        if changed:
            key = changed[0]
            raise ConfigError(f"cannot resume: this config differs from the run's at {key} ({previous.get(key)!r} "
                              f"there, {cfg.get(key)!r} here); use another --out", path=run_dir)  # fmt: skip
    elif run_dir.exists() and any(not is_lock_file(p) for p in run_dir.iterdir()):
        raise InputError("cannot resume: not a run directory (no config.toml)", path=run_dir)
    check_output_location(run_dir)


def delete_run_dir(run_dir: str | Path) -> bool:
    """``--overwrite``: delete a training run directory so a new run can start there; True if deleted.

    A missing or empty folder (a lock file alone counts as empty) is left as it is (False). A
    folder that is not a run directory (no ``config.toml``) is refused with InputError, never
    deleted, and so is a run another process holds the lock of (``DirectoryLock``).
    """
    import shutil

    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not any(not is_lock_file(p) for p in run_dir.iterdir()):
        return False
    DirectoryLock(run_dir).acquire().release()  # refuses a run directory another process is using
    if not (run_dir / "config.toml").is_file():
        raise InputError("--overwrite only deletes run directories (this one has no config.toml)", path=run_dir)
    shutil.rmtree(run_dir)
    return True


def _load_run_config(path: Path) -> TrainConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise ConfigError(f"cannot resume: {exc}") from None


def check_config_edit(cfg: TrainConfig, run_dir: Path, confirmed: frozenset[str]) -> TrainConfig:
    """The config the run was trained with; refuses an edit of its config.toml that is not accepted.

    An edit (config.toml no longer matches config.sha256) is accepted only when every key it
    changed is one a resume may change (:data:`RESUMABLE_KEYS`) and this command repeats
    the change explicitly (``--set KEY=VALUE`` with the edited value): an edit is deliberate
    or it is refused, never used or ignored silently. The refusal lists the changes key by
    key ("optim.lr: 0.001 -> 0.0005"). An edit of comments or layout changes no key: fine.
    """
    saved, stamp, copy = run_dir / "config.toml", run_dir / CONFIG_HASH_NAME, run_dir / CONFIG_COPY_NAME
    if not stamp.is_file() or stamp.read_text().strip() == hashlib.sha256(saved.read_bytes()).hexdigest():
        return _load_run_config(saved)
    if not copy.is_file():  # a run written before the copy was kept: no way to tell what changed
        raise ConfigError("cannot resume: config.toml was edited after the run wrote it; restore it or use another "
                          "--out", path=saved)  # fmt: skip
    written, edited = _load_run_config(copy), _load_run_config(saved)
    changes = diff_keys(written, edited)
    diff = ", ".join(f"{k}: {toml_value(written.get(k))} -> {toml_value(edited.get(k))}" for k in changes)
    fixed = [k for k in changes if k not in RESUMABLE_KEYS]
    if fixed:
        raise ConfigError(f"cannot resume: config.toml was edited after the run wrote it ({diff}); "
                          f"{', '.join(fixed)} cannot change on a resume (the run would no longer be the one its "
                          "checkpoints come from): restore config.toml or start a new run with another --out",
                          path=saved)  # fmt: skip
    unconfirmed = [k for k in changes if k not in confirmed or cfg.get(k) != edited.get(k)]
    if unconfirmed:
        again = " ".join(f"--set {k}={toml_value(edited.get(k))}" for k in unconfirmed)
        raise ConfigError(f"cannot resume: config.toml was edited after the run wrote it ({diff}); to accept the "
                          f"edit repeat it: {again} (or restore config.toml)", path=saved)  # fmt: skip
    return written


def write_run_config(cfg: TrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    text = to_toml(cfg)
    write_text_atomic(run_dir / "config.toml", text)
    written = hashlib.sha256((run_dir / "config.toml").read_bytes()).hexdigest()
    stamp, copy = run_dir / CONFIG_HASH_NAME, run_dir / CONFIG_COPY_NAME
    if not stamp.is_file() or stamp.read_text().strip() != written:  # unchanged: left as it is
        write_text_atomic(stamp, written + "\n")
    if not copy.is_file() or copy.read_text() != text:
        write_text_atomic(copy, text)


class Trainer:
    """See the module docstring. ``callback`` receives the logger's events (rank 0 only)."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, callback: Callback | None = None,
                 confirmed: frozenset[str] | set[str] = frozenset()):
        self.cfg = builders.absolutize_paths(cfg).validate()
        self.run_dir = Path(self.cfg.train.out)
        self.resume = resume
        self.confirmed = frozenset(confirmed)  # keys set explicitly: may accept an edit of config.toml
        self.callback = callback

    def run(self) -> TrainResult:
        ctx = setup(self.cfg.train.device)
        try:
            return self._run(ctx)
        finally:
            teardown(ctx)

    # ---- assembly ---------------------------------------------------------------------
    def _run(self, ctx: DistContext) -> TrainResult:
        cfg, t = self.cfg, self.cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        start_time = time.perf_counter()
        model_config = builders.resolve_model_config(cfg)
        dataset = builders.build_dataset(cfg, model_config)  # validates the data before touching the run dir
        check_output_location(self.run_dir)
        # One process owns a run directory: rank 0 holds its lock for the whole run (released on
        # any exit); the checks below run under it, so two starts cannot both pass them.
        lock = DirectoryLock(self.run_dir).acquire() if ctx.is_main else None
        try:
            return self._run_locked(ctx, cfg, model_config, dataset, start_time)
        except BaseException:
            if lock is not None:
                lock.release(cleanup=True)
            raise
        finally:
            if lock is not None:
                lock.release()

    def _run_locked(self, ctx: DistContext, cfg: TrainConfig, model_config, dataset, start_time: float) -> TrainResult:
        t = cfg.train
        check_run_dir(cfg, self.run_dir, self.resume, self.confirmed)
        barrier(ctx)  # every process checked before rank 0 writes anything
        if ctx.is_main:
            write_run_config(cfg, self.run_dir)
        barrier(ctx)
        bf16 = t.precision == "bf16" or (t.precision == "auto" and ctx.device.type == "cuda")
        model = builders.build_model(cfg, model_config)
        from mvt4g.model.freeze import freeze_for_finetuning

        report = freeze_for_finetuning(model, tuple(cfg.optim.train_groups))
        module = builders.build_train_module(cfg, model, model_config, bf16=bf16).to(ctx.device)
        parallel = resolve_parallel(t.parallel, model_config.name, ctx)
        module = wrap(module, parallel, ctx, bf16=bf16)
        optimizer = builders.build_optimizer(cfg, module)
        scheduler = builders.build_scheduler(cfg, optimizer)
        checkpointer = Checkpointer(self.run_dir, keep_last=t.keep_last, is_main=ctx.is_main)

        start_step, resumed_from = 0, None
        latest = checkpointer.latest_valid() if self.resume else None
        if latest is not None:
            state = checkpointer.load(latest[0], module, optimizer, scheduler)
            start_step, resumed_from = int(state["step"]), str(latest[0])
        if ctx.is_main:
            truncate_metrics(self.run_dir / "metrics.jsonl", start_step)
        logger = MetricsLogger(self.run_dir, enabled=ctx.is_main, tensorboard=t.tensorboard, callback=self.callback)
        result = TrainResult(
            run_dir=str(self.run_dir), start_step=start_step, step=start_step, steps=t.steps, samples=start_step * t.batch_size,
            resumed_from=resumed_from, parameters={"trainable": report.trainable, "total": report.total},
            world_size=ctx.world_size, model_dir=str(self.run_dir / "model") if resumed_from else None,
            checkpoint=resumed_from,
        )  # fmt: skip
        if latest is not None:
            result.final = {k: float(state["metrics"][k]) for k in LOSS_KEYS if k in state.get("metrics", {})}
        result.text = caption_summary(dataset.clips, dataset.cache.text_encoder_path)
        logger.event({"event": "start", "step": start_step, "steps": t.steps, "run_dir": str(self.run_dir),
                      "resumed_from": resumed_from, "world_size": ctx.world_size, "parallel": parallel,
                      "device": str(ctx.device), "precision": "bf16" if bf16 else "fp32", "text": result.text,
                      **result.parameters})  # fmt: skip
        try:
            loop = _Loop(cfg, ctx, module, optimizer, scheduler, checkpointer, logger, model_config, dataset, parallel)
            loop.run(start_step, result)
        finally:
            logger.close()
        result.wall_s = time.perf_counter() - start_time
        result.cache = {"hits": dataset.cache.hits, "misses": dataset.cache.misses}
        logger.event({"event": "end", **result.to_dict()})
        return result


# Divergence guard beyond NaN/inf: a loss above SPIKE_FACTOR x the median of the last
# SPIKE_WINDOW steps (once SPIKE_MIN_STEPS are seen), or a weight above WEIGHT_LIMIT in
# magnitude, stops the run without saving (a checkpoint is never written after one).
SPIKE_FACTOR = 100.0
SPIKE_WINDOW = 50
SPIKE_MIN_STEPS = 10
WEIGHT_LIMIT = 1e6


class SpikeGuard:
    """The running median of recent losses; :meth:`check` returns a message for a spike."""

    def __init__(self, factor: float = SPIKE_FACTOR, window: int = SPIKE_WINDOW, min_steps: int = SPIKE_MIN_STEPS):
        from collections import deque

        self.factor, self.min_steps = factor, min_steps
        self.recent: deque[float] = deque(maxlen=window)

    def check(self, loss: float) -> str | None:
        import statistics

        if len(self.recent) >= self.min_steps:
            median = statistics.median(self.recent)
            if loss > self.factor * median:
                return f"loss spiked to {loss:.4g} ({loss / median if median > 0 else float('inf'):.0f}x the median {median:.4g} of the last {len(self.recent)} steps)"
        self.recent.append(loss)
        return None


def largest_weight(tensors) -> float:
    """The largest magnitude over every floating tensor (inf/nan when one is not finite)."""
    worst = 0.0
    for t in tensors:
        if t.is_floating_point() and t.numel():
            if not bool(torch.isfinite(t).all()):
                return float("nan")
            worst = max(worst, float(t.abs().max()))
    return worst


class _Loop:
    """The step loop of one run (state shared by the step, checkpoint and stop logic)."""

    def __init__(self, cfg, ctx, module, optimizer, scheduler, checkpointer, logger, model_config, dataset, parallel):
        self.cfg, self.ctx, self.module = cfg, ctx, module
        self.optimizer, self.scheduler = optimizer, scheduler
        self.checkpointer, self.logger = checkpointer, logger
        self.model_config, self.dataset, self.parallel = model_config, dataset, parallel
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.last_saved: int | None = None
        self.spikes = SpikeGuard(SPIKE_FACTOR, SPIKE_WINDOW, SPIKE_MIN_STEPS)

    def _loader(self, start_step: int):
        from torch.utils.data import DataLoader

        from mvt4g.train.data import StepBatchSampler, collate

        t, d = self.cfg.train, self.cfg.data
        sampler = StepBatchSampler(t.batch_size, t.accumulate, self.ctx.world_size, self.ctx.rank, start_step, t.steps)
        return DataLoader(self.dataset, batch_sampler=sampler, collate_fn=collate, num_workers=d.num_workers,
                          pin_memory=self.ctx.device.type == "cuda")  # fmt: skip

    def _grad_sync(self, enabled: bool):
        if self.parallel == "ddp" and not enabled:
            return self.module.no_sync()
        if self.parallel == "fsdp":
            self.module.set_requires_gradient_sync(enabled)
        return contextlib.nullcontext()

    def run(self, start_step: int, result: TrainResult) -> None:
        t = self.cfg.train
        if start_step >= t.steps:
            return
        batches = iter(self._loader(start_step))
        with StopFlag() as stop:
            for step in range(start_step, t.steps):
                record = self._step(step, batches)
                spike = self.spikes.check(record["loss"])  # the same on every process (all-reduced losses)
                if spike:
                    raise WorkFailed(self._nan_message(step, "the loss", record["loss"], what_happened=spike))
                done = step + 1
                result.step, result.samples = done, done * t.batch_size
                result.final = {k: record[k] for k in LOSS_KEYS}
                if done % t.log_every == 0 or done == t.steps or done == start_step + 1:
                    self.logger.log_step(record)
                stopping = any_process(stop.signal is not None, self.ctx)
                if stopping or done % t.checkpoint_every == 0 or done == t.steps:
                    self._checkpoint(done, record, result)
                if stopping:
                    result.interrupted = stop.signal or "signal on another process"
                    return

    def _step(self, step: int, batches) -> dict[str, Any]:
        t, ctx = self.cfg.train, self.ctx
        started = time.perf_counter()
        data_time = 0.0
        sums = torch.zeros(len(LOSS_KEYS))
        lr = self.optimizer.param_groups[0]["lr"]
        for micro in range(t.accumulate):
            tick = time.perf_counter()
            batch = next(batches)
            data_time += time.perf_counter() - tick
            batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
            with self._grad_sync(micro == t.accumulate - 1):
                losses = self.module(batch)
                bad = not bool(torch.isfinite(losses["loss"]).item())
                if any_process(bad, ctx):
                    raise WorkFailed(self._nan_message(step, "loss", losses["loss"].item()))
                (losses["loss"] / t.accumulate).backward()
            sums += torch.stack([losses[k].detach().float().cpu() for k in LOSS_KEYS])
        clip = self.cfg.optim.grad_clip if self.cfg.optim.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        if not bool(torch.isfinite(norm).item()):
            raise WorkFailed(self._nan_message(step, "gradient norm", norm.item()))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        means = all_reduce_mean(sums / t.accumulate, ctx)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        step_s = time.perf_counter() - started
        record: dict[str, Any] = {"step": step + 1}
        record.update({k: float(v) for k, v in zip(LOSS_KEYS, means)})
        record.update(lr=lr, grad_norm=float(norm), step_s=step_s, data_s=data_time,
                      samples_per_s=t.batch_size / step_s, epoch=(step + 1) * t.batch_size / len(self.dataset))  # fmt: skip
        if ctx.device.type == "cuda":
            record["max_memory_gb"] = torch.cuda.max_memory_allocated(ctx.device) / 2**30
        return record

    def _nan_message(self, step: int, what: str, value: float, what_happened: str | None = None) -> str:
        latest = self.checkpointer.latest_valid()
        kept = f"the last good checkpoint is {latest[0]}" if latest else "no checkpoint was written"
        happened = what_happened or f"{what} is {value}"
        return (f"{happened} at step {step + 1}; stopped without saving ({kept}); lower optim.lr, raise "
                f"optim.warmup_steps or check the data")  # fmt: skip

    def _checkpoint(self, step: int, record: dict, result: TrainResult) -> None:
        if self.last_saved == step:
            return
        local = [p.to_local() if hasattr(p, "to_local") else p for p in self.params]
        worst = largest_weight(p.detach() for p in local)
        if any_process(not worst <= WEIGHT_LIMIT, self.ctx):  # NaN fails the comparison too
            raise WorkFailed(self._nan_message(step - 1, "a weight", worst, what_happened=(
                f"a weight is {worst:.4g} (exploding: above {WEIGHT_LIMIT:g})" if worst == worst else None)))
        path = self.checkpointer.save(
            step, self.module, self.optimizer, self.scheduler, model_config=self.model_config,
            config_dict=self.cfg.to_dict(), samples=step * self.cfg.train.batch_size,
            metrics={k: v for k, v in record.items() if isinstance(v, (int, float))},
        )  # fmt: skip
        barrier(self.ctx)
        self.last_saved = step
        result.checkpoint = str(path)
        result.model_dir = str(self.checkpointer.run_dir / "model")
        self.logger.event({"event": "checkpoint", "step": step, "path": str(path)})
