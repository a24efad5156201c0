"""ReCamMaster (DiffSynth naming) -> mvt4g conversion: rename table and round trips."""

from __future__ import annotations

import pickle

import pytest
import torch
from diffusers import WanTransformer3DModel
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from safetensors.torch import save_file

from mvt4g.errors import InputError
from mvt4g.model.config import BackboneConfig, preset
from mvt4g.model.convert import (
    composite_to_recammaster,
    convert_recammaster,
    diffusers_to_original,
    original_to_diffusers,
    read_checkpoint,
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


def test_rename_table_covers_every_key_and_agrees_with_diffusers():
    model = tiny_wan(num_layers=1)
    state = model.state_dict()
    original = {}
    for key, tensor in state.items():
        name = diffusers_to_original(key)
        assert name is not None, f"diffusers key {key} has no original name"
        assert original_to_diffusers(name) == key
        original[name] = tensor
    assert set(original) == DIFFSYNTH_NAMES
    converted = convert_wan_transformer_to_diffusers(dict(original))
    assert set(converted) == set(state)
    for key, tensor in converted.items():
        assert tensor is state[key] or torch.equal(tensor, state[key])


def test_recammaster_extra_layers_map_onto_camera_modules():
    assert composite_to_recammaster("backbone.camera.pose_encoders.7.weight") == "blocks.7.cam_encoder.weight"
    assert composite_to_recammaster("backbone.camera.output_projectors.12.bias") == "blocks.12.projector.bias"
    assert original_to_diffusers("blocks.1.cam_encoder.weight") is None  # not a Wan key
    assert original_to_diffusers("blocks.1.self_attn.q_proj.weight") is None


@pytest.mark.parametrize("fmt", ["pickle", "safetensors", "lightning"])
def test_conversion_round_trip_is_exact(tmp_path, fmt):
    source = recammaster_source().eval()
    state = recammaster_state(source)
    base = make_base(tmp_path, seed=1)
    if fmt == "safetensors":
        path = tmp_path / "rcm.safetensors"
        save_file(state, str(path))
    elif fmt == "pickle":
        path = tmp_path / "rcm.ckpt"
        torch.save(state, path)
    else:  # a wrapper dict with metadata and a "dit." prefix
        path = tmp_path / "rcm.pt"
        torch.save({"epoch": 3, "state_dict": {"dit." + k: v for k, v in state.items()}}, path)
    model, report = convert_recammaster(path, base, tracking_head=False)
    assert report.from_checkpoint == len(state) and report.from_base == 0 and not report.dropped
    assert model.config.camera.mode == "recammaster" and model.config.tap_layer == 1
    converted = model.state_dict()
    for key, tensor in source.state_dict().items():
        if key.startswith("backbone."):
            assert torch.equal(converted[key], tensor), key

    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 16, 2, 8, 8, generator=g)
    pose = torch.randn(1, 2, 12, generator=g)
    text = torch.randn(1, 6, 32, generator=g)
    with torch.no_grad():
        a = source(lat, lat * 0.3, torch.tensor([250.0]), camera_pose=pose, text_embeds=text).velocity
        b = model.eval()(lat, lat * 0.3, torch.tensor([250.0]), camera_pose=pose, text_embeds=text).velocity
    assert torch.equal(a, b)


def test_partial_checkpoint_is_completed_from_the_base(tmp_path):
    source = recammaster_source()
    state = {k: v for k, v in recammaster_state(source).items() if ".self_attn." in k or "cam_encoder" in k or "projector" in k}
    torch.save(state, tmp_path / "rcm.ckpt")
    base_model = tiny_wan(seed=1)
    model, report = convert_recammaster(tmp_path / "rcm.ckpt", make_base(tmp_path, seed=1), tracking_head=True)
    assert report.from_checkpoint == len(state) and report.from_base > 0
    assert "tracking_head" in report.to_dict()["initialised_modules"]
    ours = model.state_dict()
    src = source.state_dict()
    for key, tensor in base_model.state_dict().items():
        full = "backbone.transformer." + key
        expected = src[full] if ".attn1." in key else tensor
        assert torch.equal(ours[full], expected), key


def test_plucker_mode_keeps_projectors_and_drops_pose_encoders(tmp_path):
    source = recammaster_source()
    torch.save(recammaster_state(source), tmp_path / "rcm.ckpt")
    model, report = convert_recammaster(tmp_path / "rcm.ckpt", make_base(tmp_path), camera="plucker", tracking_head=False)
    assert len(report.dropped) == 2 * 3  # weight + bias of 3 pose encoders
    assert model.config.camera.mode == "plucker" and model.config.camera.output_projector
    assert torch.equal(
        model.backbone.camera.output_projectors[2].weight, source.backbone.camera.output_projectors[2].weight
    )
    assert not model.backbone.camera.plucker_encoder.conv.weight.any()


class _NotATensor:
    pass


def test_bad_checkpoints_are_input_errors(tmp_path):
    base = make_base(tmp_path)
    state = recammaster_state(recammaster_source())

    torch.save({**state, "blocks.0.mystery.weight": torch.zeros(2)}, tmp_path / "extra.ckpt")
    with pytest.raises(InputError, match="match no rename rule"):
        convert_recammaster(tmp_path / "extra.ckpt", base, tracking_head=False)

    torch.save({k: v for k, v in state.items() if not k.startswith("blocks.2.cam_encoder")}, tmp_path / "holes.ckpt")
    with pytest.raises(InputError, match="pose encoders for 2 of 3"):
        convert_recammaster(tmp_path / "holes.ckpt", base, tracking_head=False)

    torch.save({**state, "head.head.weight": torch.zeros(3, 3)}, tmp_path / "shape.ckpt")
    with pytest.raises(InputError, match="shape"):
        convert_recammaster(tmp_path / "shape.ckpt", base, tracking_head=False)

    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="weights_only=True"):
        read_checkpoint(tmp_path / "text.ckpt")

    # An arbitrary pickled object is refused by weights_only=True (never executed).
    with open(tmp_path / "object.ckpt", "wb") as fh:
        pickle.dump({"x": _NotATensor()}, fh, protocol=2)
    with pytest.raises(InputError, match="weights_only=True"):
        read_checkpoint(tmp_path / "object.ckpt")

    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="safetensors"):
        read_checkpoint(tmp_path / "broken.safetensors")

    with pytest.raises(InputError, match="not a diffusers Wan directory"):
        convert_recammaster(tmp_path / "extra.ckpt", tmp_path, tracking_head=False)
