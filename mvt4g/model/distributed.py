"""Which process of a ``torchrun`` this is, its device, and the few collectives commands share.

``torchrun --nproc-per-node N -m mvt4g COMMAND ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT`` set; without them a process is a
world of one and nothing here starts a process group. Training (``mvt4g.train.distributed``)
and the commands that share a list of items out over processes (``generate``, ``eval
--model``) both use this module; it sits in the model layer, the lowest one that needs torch
and below both of them.

Devices: ``auto`` is ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; ``cuda``
without an index is ``cuda:LOCAL_RANK`` too.

Item commands (:func:`item_group`) coordinate over gloo on the CPU even when they compute on
GPUs: only small Python objects travel (each rank's per-item records, gathered by rank 0), so
no GPU memory is used for it and no NCCL watchdog fires while ranks finish their shares at
different times. Their share of the items is :func:`shard`: contiguous, balanced blocks in
the items' own order (a reference's or a sequence's items stay together and are read once).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from mvt4g.errors import ConfigError

#: How long a rank of an item command waits for the others at a barrier or gather (ranks
#: finish their shares at different times; a rank that dies is reaped by torchrun anyway).
ITEM_TIMEOUT = datetime.timedelta(hours=24)


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
        rank, world, local = (int(os.environ.get(k, d)) for k, d in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is not a process of WORLD_SIZE {world} (set by torchrun)")
    return rank, world, local


def pick_device(requested: str, local_rank: int, what: str = "train.device") -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; or the named device
    (``cuda`` without an index: ``cuda:LOCAL_RANK``). ``what`` names the setting in errors."""
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{what} {requested!r} is not a torch device (auto, cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} asks for CUDA, which this machine does not have")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def setup(
    requested_device: str = "auto",
    *,
    backend: str | None = None,
    timeout: datetime.timedelta | None = None,
    what: str = "train.device",
) -> DistContext:
    """Read torchrun's environment, pick the device and start the process group when N > 1.

    ``backend``: None picks NCCL on CUDA and gloo on the CPU (training's tensor collectives).
    """
    rank, world, local = env_world()
    device = pick_device(requested_device, local, what)
    ctx = DistContext(rank, world, local, device, False)
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = backend or ("nccl" if device.type == "cuda" else "gloo")
            kwargs = {"timeout": timeout} if timeout is not None else {}
            if backend == "nccl":
                kwargs["device_id"] = device
            dist.init_process_group(backend=backend, **kwargs)
            ctx.initialized = True
    return ctx


def teardown(ctx: DistContext) -> None:
    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


@contextlib.contextmanager
def item_group(requested_device: str = "auto", *, what: str = "--device") -> Iterator[DistContext]:
    """The context of a command that shares items out over torchrun's processes.

    A world of one (no torchrun) starts nothing and yields the default context (rank 0 of 1;
    the command resolves its ``--device`` itself, as it always has). Under torchrun: a gloo
    process group (see the module docstring), the device ``cuda:LOCAL_RANK`` (or the CPU),
    torn down on exit.
    """
    _, world, _ = env_world()
    if world == 1:
        yield DistContext()
        return
    ctx = setup(requested_device, backend="gloo", timeout=ITEM_TIMEOUT, what=what)
    try:
        yield ctx
        # Leave together: a rank that tears gloo down while another still talks to it can abort
        # ("terminate called without an active exception"). Not after an error: the others may
        # never arrive.
        dist.barrier()
    finally:
        teardown(ctx)


def shard(count: int, rank: int, world: int) -> range:
    """Positions ``0 .. count-1`` that ``rank`` of ``world`` takes: contiguous, balanced blocks
    in order, the first ``count % world`` ranks one longer (rank 0 never has fewer)."""
    base, extra = divmod(count, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def gather_objects(obj: object, ctx: DistContext) -> list:
    """``obj`` of every rank, in rank order (``[obj]`` for a world of one); every rank gets the list."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def first_failure(error: BaseException | None, ctx: DistContext) -> tuple[int, int, str] | None:
    """Agree on whether any rank failed a step every rank does (e.g. checking inputs before work):
    ``(rank, exit code, message)`` of the lowest failing rank, or None; every rank gets the answer."""
    mine = None if error is None else (ctx.rank, int(getattr(error, "exit_code", 1)), str(error))
    return next((f for f in gather_objects(mine, ctx) if f is not None), None)
