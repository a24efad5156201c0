"""Process-group setup for ``torchrun`` and the data-parallel wrappers (DDP, FSDP2).

``torchrun --nproc-per-node N -m mvt4g train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT`` set. :func:`setup` (from
``mvt4g.model.distributed``, shared with generate and eval) reads them,
initialises the process group (NCCL on CUDA, gloo on CPU) and picks the device
(``cuda:LOCAL_RANK``). A plain ``mvt4g train`` is a world of one with no process group.

Wrapping (``train.parallel``): ``ddp`` replicates the model and averages gradients;
``fsdp`` shards parameters, gradients and optimizer state with FSDP2 (``fully_shard`` on
every DiT block, then on the root), bf16 parameters in compute and fp32 gradient reduction
when the run is bf16; ``auto`` is FSDP for the Wan preset on several GPUs and DDP otherwise.
Only rank 0 writes logs and checkpoints (:attr:`DistContext.is_main`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

# Reading torchrun's environment, the device and the process group are shared with the item
# commands (generate, eval --model) and live below both: mvt4g.model.distributed.
from mvt4g.errors import ConfigError
from mvt4g.model.distributed import DistContext, barrier, env_world, pick_device, setup, teardown

__all__ = ["DistContext", "all_reduce_mean", "any_process", "barrier", "env_world", "pick_device", "resolve_parallel",
           "setup", "teardown", "unwrap", "wrap"]


def resolve_parallel(mode: str, preset: str, ctx: DistContext) -> str:
    """The wrapper to use: ``none`` for one process, else ``ddp`` or ``fsdp``."""
    if not ctx.distributed:
        return "none"
    if mode == "auto":
        return "fsdp" if preset.startswith("wan") and ctx.device.type == "cuda" else "ddp"
    if mode == "none":
        raise ConfigError("train.parallel = 'none' cannot run several processes (use ddp or fsdp)")
    return mode


def wrap(module: nn.Module, mode: str, ctx: DistContext, *, bf16: bool) -> nn.Module:
    """``module`` under DDP or FSDP2 (``mode`` from :func:`resolve_parallel`)."""
    if mode == "none":
        return module
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)
    if mode == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)
        for block in module.model.backbone.transformer.blocks:
            fully_shard(block, mp_policy=policy)
        fully_shard(module, mp_policy=policy)
        return module
    raise ConfigError(f"unknown parallel mode {mode!r}")


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 modules are not wrapped)."""
    return module.module if hasattr(module, "module") and isinstance(module.module, nn.Module) else module


def all_reduce_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean over processes of a 1-D tensor (a copy; unchanged for a single process)."""
    if not ctx.distributed:
        return values.clone()
    out = values.detach().clone().to(ctx.device)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return (out / ctx.world_size).cpu()


def any_process(flag: bool, ctx: DistContext) -> bool:
    """True when ``flag`` is true on any process (every process gets the same answer)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
