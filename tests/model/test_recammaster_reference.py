"""The ``recammaster`` camera mode computes what ReCamMaster's DiT computes.

The reference below is an independent float64 re-statement of the DiffSynth-Studio Wan DiT
with ReCamMaster's block (original parameter names): per block, the camera embedding
``cam_encoder(pose)`` of latent frame f is added to every token of frame f in both halves of
the normalised, modulated input; the self-attention output goes through ``projector`` before
the gate; cross-attention uses the affine ``norm3``; the FFN uses ``norm2``. Our model (a
diffusers transformer + processors) must match it on the same weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from helpers.recammaster import recammaster_source, recammaster_state


def _lin(x, sd, name):
    return F.linear(x, sd[name + ".weight"], sd[name + ".bias"])


def _rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _attention(q, k, v, heads):
    b, s, dim = q.shape
    q, k, v = (t.view(b, -1, heads, dim // heads) for t in (q, k, v))
    logits = torch.einsum("bshd,bthd->bhst", q, k) / math.sqrt(dim // heads)
    return torch.einsum("bhst,bthd->bshd", logits.softmax(-1), v).reshape(b, s, dim)


def _rope_angles(frames, h, w, head_dim):
    def axis(n, dim):
        inv = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64)[: dim // 2] / dim))
        return torch.outer(torch.arange(n, dtype=torch.float64), inv)

    f_dim = head_dim - 2 * (head_dim // 3)
    fa, ha, wa = axis(frames, f_dim), axis(h, head_dim // 3), axis(w, head_dim // 3)
    grid = torch.cat(
        [
            fa[:, None, None].expand(frames, h, w, -1),
            ha[None, :, None].expand(frames, h, w, -1),
            wa[None, None, :].expand(frames, h, w, -1),
        ],
        -1,
    )
    return grid.reshape(frames * h * w, 1, -1)  # [S, 1, d/2]


def _rope(x, angles, heads):
    b, s, dim = x.shape
    pairs = torch.view_as_complex(x.view(b, s, heads, -1, 2).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).reshape(b, s, dim)


def recammaster_dit(sd, latents, t, context, cam, *, heads, layers, patch=(1, 2, 2), freq_dim=32):
    """latents [B, C, 2F, h, w] (target first), t [B], context [B, L, D_text], cam [B, F, 12]."""
    half = freq_dim // 2
    args = t[:, None] * torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)[None]
    t_emb = _lin(F.silu(_lin(torch.cat([args.cos(), args.sin()], 1), sd, "time_embedding.0")), sd, "time_embedding.2")
    dim = t_emb.shape[1]
    t_mod = _lin(F.silu(t_emb), sd, "time_projection.1").view(-1, 6, dim)
    ctx = _lin(F.gelu(_lin(context, sd, "text_embedding.0"), approximate="tanh"), sd, "text_embedding.2")

    x = F.conv3d(latents, sd["patch_embedding.weight"], sd["patch_embedding.bias"], stride=patch)
    b, _, frames, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)
    angles = _rope_angles(frames, h, w, dim // heads)
    ln = lambda y: F.layer_norm(y, (dim,), eps=1e-6)

    for i in range(layers):
        p = f"blocks.{i}."
        shift, scale, gate, shift_mlp, scale_mlp, gate_mlp = (sd[p + "modulation"] + t_mod).chunk(6, dim=1)
        inp = ln(x) * (1 + scale) + shift
        cam_emb = _lin(cam, sd, p + "cam_encoder").repeat(1, 2, 1)  # [B, 2F, dim]: both halves
        inp = inp + cam_emb[:, :, None, :].expand(b, frames, h * w, dim).reshape(b, -1, dim)
        q = _rope(_rms(_lin(inp, sd, p + "self_attn.q"), sd[p + "self_attn.norm_q.weight"]), angles, heads)
        k = _rope(_rms(_lin(inp, sd, p + "self_attn.k"), sd[p + "self_attn.norm_k.weight"]), angles, heads)
        attn = _lin(_attention(q, k, _lin(inp, sd, p + "self_attn.v"), heads), sd, p + "self_attn.o")
        x = x + gate * _lin(attn, sd, p + "projector")
        y = F.layer_norm(x, (dim,), sd[p + "norm3.weight"], sd[p + "norm3.bias"], eps=1e-6)
        cq = _rms(_lin(y, sd, p + "cross_attn.q"), sd[p + "cross_attn.norm_q.weight"])
        ck = _rms(_lin(ctx, sd, p + "cross_attn.k"), sd[p + "cross_attn.norm_k.weight"])
        x = x + _lin(_attention(cq, ck, _lin(ctx, sd, p + "cross_attn.v"), heads), sd, p + "cross_attn.o")
        inp = ln(x) * (1 + scale_mlp) + shift_mlp
        x = x + gate_mlp * _lin(F.gelu(_lin(inp, sd, p + "ffn.0"), approximate="tanh"), sd, p + "ffn.2")

    shift, scale = (sd["head.modulation"] + t_emb[:, None]).chunk(2, dim=1)
    out = _lin(ln(x) * (1 + scale) + shift, sd, "head.head")  # [B, S, C*pt*ph*pw]
    pt, ph, pw = patch
    out = out.view(b, frames, h, w, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return out.reshape(b, out.shape[1], frames * pt, h * ph, w * pw)


def test_recammaster_mode_matches_reference_dit():
    model = recammaster_source(seed=11).eval()
    sd = {k: v.double() for k, v in recammaster_state(model).items()}
    g = torch.Generator().manual_seed(0)
    frames = 2
    ref = torch.randn(1, 16, frames, 8, 8, generator=g)
    tgt = torch.randn(1, 16, frames, 8, 8, generator=g)
    pose = torch.randn(1, frames, 12, generator=g)
    text = torch.randn(1, 5, 32, generator=g)
    t = torch.tensor([637.0])
    with torch.no_grad():
        ours = model(ref, tgt, t, camera_pose=pose, text_embeds=text).velocity
    expected = recammaster_dit(
        sd, torch.cat([tgt, ref], 2).double(), t.double(), text.double(), pose.double(),
        heads=model.config.backbone.num_attention_heads, layers=model.config.backbone.num_layers,
    )[:, :, :frames]
    torch.testing.assert_close(ours.double(), expected, atol=2e-5, rtol=1e-4)
