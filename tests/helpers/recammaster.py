"""Tiny diffusers Wan folders and ReCamMaster checkpoints, saved in the real on-disk formats."""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel

from mvt4g.model.config import BackboneConfig, preset
from mvt4g.model.convert import (
    composite_to_recammaster,
)
from mvt4g.model.mvt4g_model import MVT4GModel

TINY = BackboneConfig(
    num_layers=3, num_attention_heads=2, attention_head_dim=24, ffn_dim=96, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=32, rope_max_seq_len=256,
)


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


def make_base(tmp_path, seed: int = 0, *, vae: bool = True, in_channels: int = 16):
    """A diffusers Wan directory: a tiny transformer/ and (``vae``) a tiny random vae/."""
    base = tmp_path / "wan"
    model = tiny_wan(seed=seed) if in_channels == 16 else _wan_with_channels(in_channels, seed)
    model.save_pretrained(str(base / "transformer"))
    if vae:
        from mvt4g.model.autoencoder import build_autoencoder

        config = preset("tiny-wanvae").autoencoder
        config.latent_channels = in_channels
        build_autoencoder(config).vae.save_pretrained(str(base / "vae"))
    return base


def _wan_with_channels(channels: int, seed: int) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    kwargs = TINY.diffusers_kwargs()
    kwargs["in_channels"] = kwargs["out_channels"] = channels
    return WanTransformer3DModel(**kwargs)


def recammaster_source(seed: int = 5) -> MVT4GModel:
    """A tiny model in ReCamMaster's layout with non-trivial weights everywhere."""
    cfg = preset("tiny")
    cfg.backbone = BackboneConfig(**TINY.__dict__)
    cfg.autoencoder.kind = "wan_vae"
    cfg.autoencoder.latent_channels = 16
    cfg.autoencoder.spatial_factor = 8
    cfg.video.height = cfg.video.width = 64
    cfg.camera.mode = "recammaster"
    cfg.use_tracking_head = False
    torch.manual_seed(seed)
    model = MVT4GModel(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def recammaster_state(model: MVT4GModel) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in model.state_dict().items():
        if key.startswith("backbone."):
            name = composite_to_recammaster(key)
            assert name is not None, key
            out[name] = tensor.clone()
    return out
