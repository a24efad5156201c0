"""Where a generation's models live while it runs: the offload modes, shared by the pipeline
(:mod:`mvt4g.sample.offload` moves the weights) and the memory plan (:mod:`mvt4g.model.plan`
prices them), so the two cannot disagree.

A generation has three components, run as stages in this order: the text encoder (umT5,
once per new prompt), the DiT (every sampling step) and the autoencoder (encoding the
reference, decoding the result). Each component is placed in one of three ways:

    resident   on the execution device from loading to the end
    staged     on the CPU; the whole component is copied to the device for its stage and
               dropped from it after (diffusers' ``enable_model_cpu_offload``)
    blocks     on the CPU; each block (a DiT transformer block, a umT5 layer) and each
               remaining module that owns weights is copied to the device for its own forward
               only (diffusers' ``enable_sequential_cpu_offload``, at block granularity)

The text encoder is staged even without offload: it runs once per prompt, its embeddings are
cached, and umT5-XXL's ~11 GiB would otherwise sit idle on the device through sampling. The
autoencoder is staged, not streamed, under ``sequential``: its weights (~0.5 GiB for Wan's
VAE in float32) are small next to its decode activations, and its per-frame causal decode
would copy every weight to the device once per latent frame.
"""

from __future__ import annotations

from torch import nn

OFFLOAD_MODES = ("none", "model", "sequential")
COMPONENTS = ("text_encoder", "dit", "autoencoder")
PLACEMENT = {
    "none": {"text_encoder": "staged", "dit": "resident", "autoencoder": "resident"},
    "model": {"text_encoder": "staged", "dit": "staged", "autoencoder": "staged"},
    "sequential": {"text_encoder": "blocks", "dit": "blocks", "autoencoder": "staged"},
}
# What each mode costs, for help texts and error messages.
OFFLOAD_COST = {
    "none": "DiT and VAE resident (the text encoder on the device only to encode): the most memory, no copies",
    "model": "one model on the device at a time: the largest stage's memory, each model copied in per video",
    "sequential": "one block on the device at a time: the least memory, every weight copied in per forward (slowest)",
}


def check_offload(mode: str) -> str:
    """``mode`` when it is one of :data:`OFFLOAD_MODES`, else a one-line InputError."""
    if mode not in OFFLOAD_MODES:
        from mvt4g.errors import InputError

        raise InputError(f"--offload must be one of {', '.join(OFFLOAD_MODES)}, got {mode!r}")
    return mode


def own_tensors(module: nn.Module) -> list[tuple[nn.Module, str, bool]]:
    """``(owner, name, is_parameter)`` of the parameters and buffers ``module`` itself registers."""
    params = [(module, name, True) for name, p in module._parameters.items() if p is not None]
    return params + [(module, name, False) for name, b in module._buffers.items() if b is not None]


def streaming_units(module: nn.Module, blocks=()) -> list[tuple[nn.Module, bool]]:
    """The modules ``blocks`` placement moves one forward at a time: ``(unit, whole)``.

    Each of ``blocks`` is a unit with everything inside it (``whole``); every other module that
    registers parameters or buffers of its own is a unit of those alone, so the small modules
    around the blocks (embeddings, norms, camera projections) stream too. A module shared by
    two parents (tied embeddings) is one unit.
    """
    block_ids = {id(b) for b in blocks}
    units: list[tuple[nn.Module, bool]] = []
    seen: set[int] = set()

    def visit(m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        if id(m) in block_ids:
            units.append((m, True))
            return
        if own_tensors(m):
            units.append((m, False))
        for child in m.children():
            visit(child)

    visit(module)
    return units


def unit_bytes(unit: nn.Module, whole: bool) -> float:
    tensors = [*unit.parameters(), *unit.buffers()] if whole else [getattr(o, n) for o, n, _ in own_tensors(unit)]
    return float(sum(t.numel() * t.element_size() for t in tensors))


def streamed_bytes(module: nn.Module, blocks=()) -> float:
    """The most weight bytes ``blocks`` placement holds on the device at once: the largest
    block plus the largest other unit (a small module can run inside a block: the camera
    projections run inside the DiT blocks' self-attention)."""
    sizes = [(unit_bytes(u, whole), whole) for u, whole in streaming_units(module, blocks)]
    largest_block = max((s for s, whole in sizes if whole), default=0.0)
    largest_other = max((s for s, whole in sizes if not whole), default=0.0)
    return largest_block + largest_other
