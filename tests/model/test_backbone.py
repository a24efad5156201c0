"""The camera-conditioned Wan backbone: shapes, no-op camera path at init, injection point, tap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import WanTransformer3DModel

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.attention_tap import pixel_to_token, token_to_pixel
from mvt4g.model.camera_encoder import TokenLayout, recammaster_pose_embedding
from mvt4g.model.checkpoint import build_on_meta
from mvt4g.model.config import ModelConfig, preset, preset_names
from mvt4g.model.mvt4g_model import MVT4GModel


def tiny_config(**changes) -> ModelConfig:
    cfg = preset("tiny")
    cfg.use_tracking_head = False
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0, frames: int | None = None):
    g = torch.Generator().manual_seed(seed)
    f = frames or cfg.latent_frames(cfg.video.frames)
    sf = cfg.autoencoder.spatial_factor
    shape = (batch, cfg.backbone.in_channels, f, cfg.video.height // sf, cfg.video.width // sf)
    ref = torch.randn(shape, generator=g)
    tgt = torch.randn(shape, generator=g)
    rays = torch.randn(batch, 2, f, 6, cfg.video.height, cfg.video.width, generator=g)
    pose = torch.randn(batch, f, 12, generator=g)
    t = torch.rand(batch, generator=g) * 1000
    return ref, tgt, t, rays, pose


def randomize_camera(model: MVT4GModel, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.backbone.camera.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny", "small", "tiny-wanvae"])
def test_preset_forward_shapes(name):
    torch.manual_seed(0)
    cfg = preset(name)
    cfg.use_tracking_head = False
    model = MVT4GModel(cfg).eval()
    f = 2
    ref, tgt, t, rays, _ = inputs(cfg, batch=1, frames=f)
    with torch.no_grad():
        out = model(ref, tgt, t, plucker=rays)
    h, w = cfg.token_grid(cfg.video.height, cfg.video.width)
    b = cfg.backbone
    assert out.velocity.shape == tgt.shape
    assert out.tap.q.shape == (1, 2, f, h, w, b.num_attention_heads, b.attention_head_dim)
    assert out.tap.k.shape == out.tap.q.shape
    assert out.token_stride == cfg.autoencoder.spatial_factor * b.patch_size[1]
    assert torch.isfinite(out.velocity).all()


@pytest.mark.slow
def test_wan_preset_shapes_on_meta_device():
    cfg = preset("wan2.1-1.3b")
    assert (cfg.backbone.num_layers, cfg.backbone.num_attention_heads, cfg.backbone.attention_head_dim) == (30, 12, 128)
    assert (cfg.backbone.ffn_dim, cfg.backbone.text_dim, cfg.tap_layer, cfg.token_stride) == (8960, 4096, 18, 16)
    model = build_on_meta(cfg)
    f = cfg.latent_frames(81)
    latents = torch.empty(1, 16, f, 60, 104, device="meta")
    rays = torch.empty(1, 2, f, 6, 480, 832, device="meta")
    out = model(latents, latents, torch.empty(1, device="meta"), plucker=rays)
    assert f == 21
    assert out.velocity.shape == (1, 16, 21, 60, 104)
    assert out.tap.q.shape == (1, 2, 21, 30, 52, 12, 128)
    # 2 x 21 x 30 x 52 = 65,520 tokens (docs/FACTS.md, section 1).
    assert 2 * 21 * 30 * 52 == 65520


@pytest.mark.slow
@pytest.mark.parametrize("order", ["target_first", "reference_first"])
@pytest.mark.parametrize("mode", ["plucker", "recammaster"])
def test_camera_path_is_exact_noop_at_init(order, mode):
    torch.manual_seed(0)
    cfg = tiny_config(token_order=order)
    cfg.camera.mode = mode
    model = MVT4GModel(cfg).eval()
    ref, tgt, t, rays, pose = inputs(cfg, frames=3)
    with torch.no_grad():
        out = model(ref, tgt, t, plucker=rays, camera_pose=pose)
        plain = WanTransformer3DModel(**cfg.backbone.diffusers_kwargs()).eval()
        plain.load_state_dict(model.transformer.state_dict())
        f = ref.shape[2]
        both = torch.cat([tgt, ref], 2) if order == "target_first" else torch.cat([ref, tgt], 2)
        expected = plain(both, t, model.null_text(2)).sample
        expected = expected[:, :, :f] if order == "target_first" else expected[:, :, f:]
    assert torch.equal(out.velocity, expected)


@pytest.mark.slow
def test_camera_path_trains_from_zero_and_changes_output():
    torch.manual_seed(0)
    model = MVT4GModel(tiny_config())
    ref, tgt, t, rays, _ = inputs(tiny_config(), batch=1, frames=2)
    out = model(ref, tgt, t, plucker=rays)
    out.velocity.square().mean().backward()
    conv = model.backbone.camera.plucker_encoder.conv
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    base = out.velocity.detach()
    randomize_camera(model)
    with torch.no_grad():
        moved = model(ref, tgt, t, plucker=rays).velocity
    assert not torch.allclose(moved, base)
    with torch.no_grad():
        pair = model(ref, tgt, t, plucker=(rays[:, 0], rays[:, 1])).velocity
    assert torch.equal(pair, moved)


def test_plucker_term_added_at_self_attention_input():
    """to_q's input minus attn1's input is P_l(conv(rays)) in token order (float64 reference)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    model = MVT4GModel(cfg).eval()
    randomize_camera(model)
    ref, tgt, t, rays, _ = inputs(cfg, batch=1)
    block = 2
    attn = model.transformer.blocks[block].attn1
    seen = {}
    h1 = attn.register_forward_pre_hook(lambda m, args: seen.__setitem__("attn_in", args[0].detach()))
    h2 = attn.to_q.register_forward_pre_hook(lambda m, args: seen.__setitem__("q_in", args[0].detach()))
    with torch.no_grad():
        model(ref, tgt, t, plucker=rays)
    h1.remove()
    h2.remove()

    s = cfg.token_stride
    conv = model.backbone.camera.plucker_encoder.conv
    w = conv.weight.detach().double().numpy()  # [dim, 6, s, s]
    r = rays.double().numpy()
    bsz, v, f, c, hh, ww = r.shape
    patches = r.reshape(bsz, v, f, c, hh // s, s, ww // s, s)
    feats = np.einsum("bvfcyaxe,dcae->bvfyxd", patches, w) + conv.bias.detach().double().numpy()
    seq = np.concatenate([feats[:, 1].reshape(bsz, -1, w.shape[0]), feats[:, 0].reshape(bsz, -1, w.shape[0])], 1)
    proj = model.backbone.camera.block_projections[block]
    expected = seq @ proj.weight.detach().double().numpy().T + proj.bias.detach().double().numpy()
    got = (seen["q_in"] - seen["attn_in"]).double().numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("order", ["target_first", "reference_first"])
def test_tap_reproduces_attention_output(order):
    torch.manual_seed(0)
    cfg = tiny_config(token_order=order)
    model = MVT4GModel(cfg).eval()
    randomize_camera(model)
    ref, tgt, t, rays, _ = inputs(cfg, frames=3)
    attn = model.transformer.blocks[cfg.tap_layer].attn1
    seen = {}
    h1 = attn.to_v.register_forward_hook(lambda m, a, out: seen.__setitem__("v", out.detach()))
    h2 = attn.to_out[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("o", a[0].detach()))
    with torch.no_grad():
        out = model(ref, tgt, t, plucker=rays)
    h1.remove()
    h2.remove()
    f, hh, ww = out.tap.q.shape[2:5]
    layout = TokenLayout(order, f, hh, ww)
    q = layout.views_to_sequence(out.tap.q).double()  # [B, S, H, d]
    k = layout.views_to_sequence(out.tap.k).double()
    v = seen["v"].double().unflatten(2, (q.shape[2], -1))
    logits = torch.einsum("bshd,bthd->bhst", q, k) / q.shape[-1] ** 0.5
    naive = torch.einsum("bhst,bthd->bshd", logits.softmax(-1), v).flatten(2)
    torch.testing.assert_close(naive, seen["o"].double(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("order", ["target_first", "reference_first"])
def test_tap_view_axis_is_reference_then_target(order):
    # In block 0 a token's query depends on its own latent patch only (nothing has mixed yet),
    # so changing only the reference latents must change view 0 of the tap and not view 1.
    torch.manual_seed(0)
    cfg = tiny_config(token_order=order, tap_layer=0)
    model = MVT4GModel(cfg).eval()
    ref, tgt, t, rays, _ = inputs(cfg, batch=1, frames=2)
    with torch.no_grad():
        a = model(ref, tgt, t, plucker=rays).tap
        b = model(ref + 1.0, tgt, t, plucker=rays).tap
    assert torch.equal(a.q[:, 1], b.q[:, 1]) and torch.equal(a.k[:, 1], b.k[:, 1])
    assert not torch.allclose(a.q[:, 0], b.q[:, 0])


@pytest.mark.slow
def test_gradient_checkpointing_matches():
    torch.manual_seed(0)
    cfg = tiny_config()
    model = MVT4GModel(cfg)
    randomize_camera(model)
    ref, tgt, t, rays, _ = inputs(cfg, batch=1, frames=3)
    results = []
    for enabled in (False, True):
        model.zero_grad()
        model.set_gradient_checkpointing(enabled)
        out = model(ref, tgt, t, plucker=rays)
        loss = out.velocity.square().mean() + out.tap.q.square().mean() + out.tap.k.square().mean()
        loss.backward()
        results.append((out.velocity.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    torch.testing.assert_close(results[0][0], results[1][0])
    assert results[0][1].keys() == results[1][1].keys()
    for name in results[0][1]:
        torch.testing.assert_close(results[0][1][name], results[1][1][name], atol=1e-6, rtol=1e-5)


def test_tracking_head_runs_on_the_tap():
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.tracking_head = {"preset": "tiny", "iterations": 2}
    model = MVT4GModel(cfg)
    assert model.tracking_head is not None
    ref, tgt, t, rays, _ = inputs(cfg, batch=1, frames=3)
    queries = torch.tensor([[[0.0, 1.0, 10.5, 12.5], [1.0, 2.0, 20.0, 4.0]]])
    out = model(ref, tgt, t, plucker=rays, queries=queries)
    assert len(out.tracks["coords"]) == 2 and out.tracks["coords"][-1].shape == (1, 2, 3, 2, 2)
    # Saved configs carry the head's resolved fields, not the preset shorthand.
    assert "preset" not in model.config.tracking_head and model.config.tracking_head["hidden"] > 0


def test_bad_inputs_raise_one_line_errors():
    cfg = tiny_config()
    model = MVT4GModel(cfg)
    ref, tgt, t, rays, _ = inputs(cfg, batch=1)
    with pytest.raises(InputError, match="differ in shape"):
        model(ref, tgt[:, :, :3], t, plucker=rays)
    with pytest.raises(InputError, match="Plücker"):
        model(ref, tgt, t)
    with pytest.raises(InputError, match="Plücker maps must be"):
        model(ref, tgt, t, plucker=rays[..., :16])
    with pytest.raises(InputError, match="channels"):
        model(ref[:, :3], tgt[:, :3], t, plucker=rays)
    with pytest.raises(InputError, match="timestep"):
        model(ref, tgt, torch.ones(3), plucker=rays)


def test_configs_round_trip_and_validate():
    for name in preset_names():
        cfg = preset(name)
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("wan2.2-5b")
    bad = preset("tiny")
    bad.backbone.attention_head_dim = 64  # Wan's RoPE split misassigns axes at d = 64
    with pytest.raises(ConfigError, match="RoPE"):
        bad.validate()
    bad = preset("tiny")
    bad.tap_layer = 3
    with pytest.raises(ConfigError, match="tap_layer"):
        bad.validate()
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({**preset("tiny").to_dict(), "extra": 1})


def test_pixel_token_mapping():
    s = 16
    xy = torch.tensor([[0.5 * s, 0.5 * s], [8.0, 24.0], [832.0, 480.0]])
    tok = pixel_to_token(xy, s)
    # The centre of token 0 is pixel 8 (= 0.5 * 16); the image border is at -0.5 tokens.
    torch.testing.assert_close(tok[0], torch.zeros(2))
    torch.testing.assert_close(tok[2], torch.tensor([51.5, 29.5]))
    torch.testing.assert_close(token_to_pixel(tok, s), xy)


def test_recammaster_pose_embedding_is_relative_pose_rows():
    ref0 = np.eye(4)
    ref0[:3, 3] = [1.0, 2.0, 3.0]
    tgt = np.repeat(np.eye(4)[None], 2, 0)
    tgt[1, :3, 3] = [1.0, 2.0, 4.0]
    emb = recammaster_pose_embedding(ref0, tgt)
    assert emb.shape == (2, 12)
    np.testing.assert_allclose(emb[1], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1], atol=1e-7)
    np.testing.assert_allclose(emb[0, [3, 7, 11]], [-1, -2, -3], atol=1e-7)


@pytest.mark.slow
def test_null_text_is_used_without_prompt_embeddings_and_umt5_needs_transformers(tmp_path):
    import importlib.util

    from mvt4g.model import MVT4GModel as Lazy
    from mvt4g.model.text import load_text_encoder

    assert Lazy is MVT4GModel
    cfg = tiny_config()
    model = MVT4GModel(cfg).eval()
    ref, tgt, t, rays, _ = inputs(cfg, batch=1, frames=2)
    with torch.no_grad():
        model.null_text.weight.normal_()
        a = model(ref, tgt, t, plucker=rays).velocity
        b = model(ref, tgt, t, plucker=rays, text_embeds=model.null_text.weight[None].clone()).velocity
        c = model(ref, tgt, t, plucker=rays, text_embeds=torch.zeros(1, 4, cfg.backbone.text_dim)).velocity
    assert torch.equal(a, b) and not torch.allclose(a, c)
    if importlib.util.find_spec("transformers") is None:
        with pytest.raises(InputError, match="transformers"):
            load_text_encoder(tmp_path)
    else:
        with pytest.raises(InputError):
            load_text_encoder(tmp_path / "missing")
