"""Process-group setup for ``torchrun`` and the data-parallel wrappers (DDP, FSDP2).

``torchrun --nproc-per-node N -m mvt4g train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT`` set. :func:`setup` reads them,
initialises the process group (NCCL on CUDA, gloo on CPU) and picks the device
(``cuda:LOCAL_RANK``). A plain ``mvt4g train`` is a world of one with no process group.

Wrapping (``train.parallel``): ``ddp`` replicates the model and averages gradients;
``fsdp`` shards parameters, gradients and optimizer state with FSDP2 (``fully_shard`` on
every DiT block, then on the root), bf16 parameters in compute and fp32 gradient reduction
when the run is bf16; ``auto`` is FSDP for the Wan preset on several GPUs and DDP otherwise.
Only rank 0 writes logs and checkpoints (:attr:`DistContext.is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from mvt4g.errors import ConfigError


@dataclass
class DistContext:
    """Who this process is: ``rank`` of ``world_size``, its device, and whether a group exists."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (0, 1, 0 without it)."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun)") from None


def pick_device(requested: str, local_rank: int) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; or the named device."""
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ConfigError(f"train.device {requested!r} is not a torch device (auto, cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device asks for CUDA, which this machine does not have")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def setup(requested_device: str = "auto") -> DistContext:
    """Read torchrun's environment, pick the device and start the process group when N > 1."""
    rank, world, local = env_world()
    device = pick_device(requested_device, local)
    ctx = DistContext(rank, world, local, device, False)
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
            ctx.initialized = True
    return ctx


def teardown(ctx: DistContext) -> None:
    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()


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


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
