"""Run directories and train-state checkpoints (atomic, keep-last-K, resume from the latest valid).

Run directory layout (``mvt4g generate --model RUN_DIR`` and ``from_pretrained(RUN_DIR /
"model")`` read it)::

    RUN_DIR/
      config.toml                 the resolved training config (every key)
      metrics.jsonl               one JSON object per logged step
      model/                      save_pretrained directory of the LATEST checkpoint's weights
      checkpoints/step_000100/    full train state at step 100 (the last ``keep_last`` kept)
        model/                    save_pretrained directory (config.json, model.safetensors)
        optimizer.safetensors     AdamW moments and step counts, keyed "PARAM::NAME"
        extra.safetensors         weights of loss modules (L_corr's head MLP), when any
        rng.safetensors           torch RNG states of rank 0 (CPU, and CUDA when used)
        trainer_state.json        step, samples seen (the data position), scheduler state,
                                  optimizer hyper-parameters, last metrics, resolved config
      tensorboard/                when tensorboard is installed

Atomicity: a checkpoint is written into a hidden temporary folder beside its final name and
renamed when complete, so ``checkpoints/step_*`` folders are always whole. ``RUN_DIR/model``
is replaced after the checkpoint lands, by renaming a complete new folder (its files
hard-linked from the checkpoint, copied where links fail) over the old one. A NaN/inf loss
stops the run before anything is written, so the last good checkpoint is never replaced.

Resume (:meth:`Checkpointer.latest_valid`): the highest ``step_N`` whose files are all
present and whose ``trainer_state.json`` parses; broken or foreign folders are skipped.
Samples are a pure function of their global index (:mod:`mvt4g.train.data`), so restoring
the step restores the data position.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mvt4g.errors import InputError
from mvt4g.fs.atomic import write_json_atomic
from mvt4g.fs.jsonio import read_json

STATE_FORMAT = "mvt4g-train-state"
STATE_VERSION = 1
STATE_NAME = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_REQUIRED = ("model/config.json", "model/model.safetensors", "optimizer.safetensors", "rng.safetensors", STATE_NAME)


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


class _StateView:
    """Duck-types what ``save_pretrained`` reads from a model: ``config`` and ``state_dict()``."""

    def __init__(self, config, state: dict[str, torch.Tensor]):
        self.config = config
        self._state = state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


def _full_state_options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def gather_model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) CPU state of the train module; collective under FSDP (call on every rank)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(module, options=_full_state_options(cpu_offload=True))


def gather_optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(module, optimizer, options=_full_state_options(cpu_offload=True))


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for name, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}::{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(name, {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, dict[str, Any]] = {}
    for flat, value in tensors.items():
        name, _, key = flat.rpartition("::")
        state.setdefault(name, {})[key] = value
    for name, extra in meta.get("scalars", {}).items():
        state.setdefault(name, {}).update(extra)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def _rng_state() -> dict[str, torch.Tensor]:
    out = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def _hardlink_tree(src: Path, dst: Path) -> None:
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(path, target)


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the complete folder ``tmp`` at ``final``: two renames, the old one deleted after."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def tensors_finite(tensors) -> bool:
    """Whether every floating tensor in an iterable holds only finite values."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class Checkpointer:
    """Writes and finds train-state checkpoints of one run directory (see the module docstring).

    Every rank calls :meth:`save` (gathering FSDP shards is collective); only ``is_main``
    writes files.
    """

    def __init__(self, run_dir: str | Path, *, keep_last: int = 3, is_main: bool = True):
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "checkpoints"
        self.keep_last = keep_last
        self.is_main = is_main

    # ---- finding ----------------------------------------------------------------------
    def steps(self) -> list[tuple[int, Path]]:
        """All ``step_N`` folders, ascending by N (valid or not)."""
        if not self.dir.is_dir():
            return []
        found = []
        for path in self.dir.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return sorted(found)

    @staticmethod
    def read_state(path: Path) -> dict[str, Any] | None:
        """The ``trainer_state.json`` of a complete checkpoint folder, or None."""
        if not all((path / rel).is_file() for rel in _REQUIRED):
            return None
        try:
            state = read_json(path / STATE_NAME, what="checkpoint state")
        except InputError:  # unreadable, not JSON or not an object: not a valid checkpoint
            return None
        if state.get("format") != STATE_FORMAT or int(state.get("format_version", 0)) > STATE_VERSION:
            return None
        return state

    def latest_valid(self) -> tuple[Path, dict[str, Any]] | None:
        for _, path in reversed(self.steps()):
            state = self.read_state(path)
            if state is not None:
                return path, state
        return None

    # ---- saving -----------------------------------------------------------------------
    def save(self, step: int, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler, *,
             model_config, config_dict: dict, samples: int, metrics: dict | None = None) -> Path:  # fmt: skip
        """Write ``checkpoints/step_N`` and refresh ``RUN_DIR/model``; returns the checkpoint path.

        ``module`` is the train module (attribute ``model`` = the MVT4GModel; other
        submodules hold loss parameters), wrapped or not.
        """
        from safetensors.torch import save_file

        from mvt4g.model.checkpoint import save_pretrained

        full = gather_model_state(module)
        optim_state = gather_optimizer_state(module, optimizer)
        final = self.dir / step_dir_name(step)
        if not self.is_main:
            return final
        model_state = {k[len("model."):]: v.contiguous() for k, v in full.items() if k.startswith("model.")}
        extra = {k: v.contiguous() for k, v in full.items() if not k.startswith("model.")}
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=self.dir))
        try:
            save_pretrained(_StateView(model_config, model_state), tmp / "model", metadata={"step": str(step)})
            tensors, optim_meta = _flatten_optimizer(optim_state)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            save_file(extra, str(tmp / "extra.safetensors"))
            save_file(_rng_state(), str(tmp / "rng.safetensors"))
            state = {
                "format": STATE_FORMAT, "format_version": STATE_VERSION, "step": step, "samples": samples,
                "scheduler": scheduler.state_dict(), "optimizer": optim_meta, "metrics": metrics or {},
                "config": config_dict,
            }  # fmt: skip
            write_json_atomic(tmp / STATE_NAME, state)
            os.chmod(tmp, 0o755)
            replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._publish_model(final / "model")
        self._prune(keep=final)
        return final

    def _publish_model(self, source: Path) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=".model.", suffix=".tmp", dir=self.run_dir))
        try:
            _hardlink_tree(source, tmp)
            os.chmod(tmp, 0o755)
            replace_dir(tmp, self.run_dir / "model")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _prune(self, keep: Path) -> None:
        folders = [p for _, p in self.steps()]
        for path in folders[: max(0, len(folders) - self.keep_last)]:
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)

    # ---- loading ----------------------------------------------------------------------
    def load(self, path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> dict[str, Any]:
        """Restore weights, optimizer, scheduler and RNG from a checkpoint folder; returns its state."""
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import (
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        from mvt4g.model.checkpoint import load_state_dict_file

        state = self.read_state(path)
        if state is None:
            raise InputError("not a complete checkpoint", path=path)
        weights = {f"model.{k}": v for k, v in load_state_dict_file(path / "model" / "model.safetensors").items()}
        extra_path = path / "extra.safetensors"
        if extra_path.is_file():
            weights.update({k: v.clone() for k, v in load_file(str(extra_path)).items()})
        try:
            set_model_state_dict(module, weights, options=_full_state_options())
        except RuntimeError as exc:
            raise InputError(f"checkpoint weights do not fit this model: {str(exc).splitlines()[0]}", path=path) from None
        tensors = {k: v.clone() for k, v in load_file(str(path / "optimizer.safetensors")).items()}
        set_optimizer_state_dict(module, optimizer, _unflatten_optimizer(tensors, state["optimizer"]),
                                 options=_full_state_options())  # fmt: skip
        scheduler.load_state_dict(state["scheduler"])
        rng = load_file(str(path / "rng.safetensors"))
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        return state
