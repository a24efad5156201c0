"""Tiny diffusers Wan folders and ReCamMaster checkpoints, saved in the real on-disk formats."""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel

from mvt4g.model.tiny_formats import (
    TINY_WAN,
    recammaster_state_dict,
    tiny_recammaster_source,
    write_tiny_wan,
)

TINY = TINY_WAN


# DiffSynth-Studio's WanModel parameter names for one block and the model's other layers,
# written out from its module structure (the naming ReCamMaster checkpoints use).
DIFFSYNTH_NAMES = {
    "patch_embedding.weight", "patch_embedding.bias",
    "text_embedding.0.weight", "text_embedding.0.bias", "text_embedding.2.weight", "text_embedding.2.bias",
    "time_embedding.0.weight", "time_embedding.0.bias", "time_embedding.2.weight", "time_embedding.2.bias",
    "time_projection.1.weight", "time_projection.1.bias",
    "head.head.weight", "head.head.bias", "head.modulation",
} | {
    f"blocks.0.{name}"
    for name in [
        *(f"{attn}.{p}.{wb}" for attn in ("self_attn", "cross_attn") for p in "qkvo" for wb in ("weight", "bias")),
        *(f"{attn}.norm_{p}.weight" for attn in ("self_attn", "cross_attn") for p in "qk"),
        "norm3.weight", "norm3.bias", "ffn.0.weight", "ffn.0.bias", "ffn.2.weight", "ffn.2.bias", "modulation",
    ]
}


def tiny_wan(num_layers: int = 3, seed: int = 0) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    kwargs = TINY.diffusers_kwargs()
    kwargs["num_layers"] = num_layers
    return WanTransformer3DModel(**kwargs)


def make_base(tmp_path, seed: int = 0, *, vae: bool = True, in_channels: int = 16, text: bool = False):
    """A diffusers Wan directory: a tiny transformer/, (``vae``) a tiny random vae/ and (``text``)
    a tiny random umT5 text_encoder/ + tokenizer/."""
    return write_tiny_wan(tmp_path / "wan", seed=seed, vae=vae, text=text, in_channels=in_channels)


recammaster_source = tiny_recammaster_source
recammaster_state = recammaster_state_dict
