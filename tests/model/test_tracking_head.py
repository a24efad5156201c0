"""Tracking head: shapes, iteration mechanics, and overfitting one synthetic clip with known motion."""

from __future__ import annotations

import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.correlation import CorrelationConfig
from mvt4g.model.losses import track_loss
from mvt4g.model.tracking_head import (
    TrackingHead,
    TrackingHeadConfig,
    displacement_encoding,
)

SIZE = (64, 64)  # (H, W) pixels
STRIDE = 8
FRAMES = 4

# View 1 sees view 0 through this homography (pixels -> pixels).
HOMOGRAPHY = torch.tensor([[1.06, 0.05, 3.0], [-0.04, 0.96, 4.0], [4e-4, -3e-4, 1.0]], dtype=torch.float64)


def frame_transform(j: int) -> torch.Tensor:
    """Scene motion of frame j: rotation by 4 deg/frame about the image centre, then translation."""
    theta = math.radians(4.0 * j)
    c, s = math.cos(theta), math.sin(theta)
    centre = torch.tensor([32.0, 32.0], dtype=torch.float64)
    R = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    t = centre - R @ centre + torch.tensor([2.5 * j, -1.5 * j], dtype=torch.float64)
    A = torch.eye(3, dtype=torch.float64)
    A[:2, :2], A[:2, 2] = R, t
    return A


def view_frame_map(v: int, j: int) -> torch.Tensor:
    """Canonical scene coordinates -> pixels of view v, frame j (3x3)."""
    A = frame_transform(j)
    return HOMOGRAPHY @ A if v == 1 else A


def apply(Hm: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    p = torch.cat([xy, torch.ones_like(xy[..., :1])], -1) @ Hm.T
    return p[..., :2] / p[..., 2:]


def texture(xy: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Analytic RGB texture: a sum of random plane waves, evaluated anywhere. xy [..., 2] -> [..., 3]."""
    freqs = torch.randn(24, 2, generator=gen, dtype=torch.float64) * 0.25
    phases = torch.rand(24, generator=gen, dtype=torch.float64) * 2 * math.pi
    mix = torch.randn(24, 3, generator=gen, dtype=torch.float64) / math.sqrt(24)
    return torch.sin(xy @ freqs.T + phases) @ mix


@functools.lru_cache(maxsize=4)
def synthetic_clip(num_queries: int = 12, seed: int = 0):
    """Two views x FRAMES frames of a textured plane under known motion, DiT-like q/k and GT tracks.

    Cached: callers must not modify the returned tensors in place.
    """
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(SIZE[0], dtype=torch.float64) + 0.5,
                            torch.arange(SIZE[1], dtype=torch.float64) + 0.5, indexing="ij")
    pixels = torch.stack([xs, ys], -1)
    tex_gen_state = gen.get_state()
    images = []
    for v in range(2):
        for j in range(FRAMES):
            canon = apply(torch.linalg.inv(view_frame_map(v, j)), pixels)
            gen.set_state(tex_gen_state)  # the same texture in every view and frame
            images.append(texture(canon, gen))
    images = torch.stack(images).permute(0, 3, 1, 2).float()  # [V*F, 3, H, W]
    # Per-pixel features from a fixed random convolution, averaged over each token's footprint.
    conv = torch.randn(16, 3, 5, 5, generator=gen) / math.sqrt(75)
    feats = F.avg_pool2d(torch.tanh(F.conv2d(images, conv, padding=2)), STRIDE) * 3  # [V*F, 16, h, w]
    h, w = SIZE[0] // STRIDE, SIZE[1] // STRIDE
    qk = feats.permute(0, 2, 3, 1).reshape(1, 2, FRAMES, h, w, 2, 8)
    view = torch.randint(0, 2, (num_queries,), generator=gen)
    frame = torch.randint(0, FRAMES, (num_queries,), generator=gen)
    pos = 16 + torch.rand(num_queries, 2, generator=gen, dtype=torch.float64) * 32
    tracks = torch.zeros(2, FRAMES, num_queries, 2, dtype=torch.float64)
    for n in range(num_queries):
        canon = apply(torch.linalg.inv(view_frame_map(int(view[n]), int(frame[n]))), pos[n])
        for v in range(2):
            for j in range(FRAMES):
                tracks[v, j, n] = apply(view_frame_map(v, j), canon)
    visible = ((tracks >= 0) & (tracks < 64)).all(-1)
    queries = torch.cat([view[:, None].double(), frame[:, None].double(), pos], -1)
    return qk, queries[None].float(), tracks[None].float(), visible[None]


def test_synthetic_tracks_are_consistent():
    _, queries, tracks, visible = synthetic_clip()
    for n in range(queries.shape[1]):
        v, j = int(queries[0, n, 0]), int(queries[0, n, 1])
        torch.testing.assert_close(tracks[0, v, j, n], queries[0, n, 2:], atol=1e-4, rtol=0)
    assert visible.float().mean() > 0.9
    assert (tracks[0, 1] - tracks[0, 0]).norm(dim=-1).mean() > 2  # the views really differ


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: conftest.one_thread


@pytest.mark.slow
def test_overfits_one_clip():
    torch.manual_seed(0)
    qk, queries, tracks, visible = synthetic_clip()
    head = TrackingHead(TrackingHeadConfig.tiny())
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    losses, errors = [], []
    for _ in range(120):
        pred = head(qk, qk, queries, SIZE)
        parts = track_loss(pred, tracks, visible)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
        errors.append((pred["coords"][-1] - tracks).norm(dim=-1)[visible].mean().item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first / 10, (first, last)
    recent_error = sum(errors[-5:]) / 5  # Adam wobbles step to step: average the last few
    assert recent_error < errors[0] / 3, (errors[0], recent_error)


def test_shapes_start_and_detached_iterations():
    qk, queries, tracks, visible = synthetic_clip(num_queries=5)
    cfg = TrackingHeadConfig.tiny()
    head = TrackingHead(cfg)
    q = qk.clone().requires_grad_()
    k = qk.clone().requires_grad_()
    out = head(q, k, queries, SIZE)
    assert len(out["coords"]) == cfg.iterations == len(out["vis_logits_iters"]) == len(out["conf_logits_iters"])
    assert out["coords"][0].shape == (1, 2, FRAMES, 5, 2)
    assert out["vis_logits"].shape == out["conf_logits"].shape == (1, 2, FRAMES, 5)
    # Zero-initialised output layer: every estimate is the query position, V = C = 0.
    torch.testing.assert_close(out["coords"][-1], queries[:, None, None, :, 2:].expand(1, 2, FRAMES, 5, 2))
    assert out["vis_logits"].abs().max() == 0 and out["conf_logits"].abs().max() == 0
    # After a training step, positions move and gradients reach q and k through the correlation.
    torch.nn.init.normal_(head.out.weight, std=0.1)
    out = head(q, k, queries, SIZE)
    track_loss(out, tracks, visible)["loss"].backward()
    assert q.grad.abs().sum() > 0 and k.grad.abs().sum() > 0
    # Coordinates are detached between iterations: the last ones do not depend on the previous ones.
    out = head(qk, qk, queries, SIZE)
    grad = torch.autograd.grad(out["coords"][-1].sum(), out["coords"][-2], allow_unused=True)[0]
    assert grad is None
    assert not torch.equal(out["coords"][-1], out["coords"][0])



def test_gradient_checkpointing_gives_the_same_tracks_and_gradients():
    """Checkpointed iterations recompute their activations in backward: same outputs, same grads."""
    qk, queries, tracks, visible = synthetic_clip(num_queries=5)
    torch.manual_seed(0)
    head = TrackingHead(TrackingHeadConfig.tiny())
    torch.nn.init.normal_(head.out.weight, std=0.1)
    results = []
    for enabled in (False, True):
        head.gradient_checkpointing = enabled
        head.zero_grad()
        q, k = qk.clone().requires_grad_(), qk.clone().requires_grad_()
        out = head(q, k, queries, SIZE)
        track_loss(out, tracks, visible)["loss"].backward()
        grads = {n: p.grad.clone() for n, p in head.named_parameters() if p.grad is not None}
        results.append((out["coords"][-1].detach(), q.grad, k.grad, grads))
    (c0, q0, k0, g0), (c1, q1, k1, g1) = results
    torch.testing.assert_close(c0, c1)
    torch.testing.assert_close(q0, q1)
    torch.testing.assert_close(k0, k1)
    assert g0.keys() == g1.keys() and len(g0) > 0
    for name in g0:
        torch.testing.assert_close(g0[name], g1[name])

@pytest.mark.slow
def test_reference_config_runs_and_concat_heads():
    qk, queries, _, _ = synthetic_clip(num_queries=3)
    head = TrackingHead(TrackingHeadConfig.reference())
    assert head.corr_mlps[0][0].in_features == 2401 and head.corr_mlps[0][2].out_features == 256
    with torch.no_grad():
        out = head(qk, qk, queries, SIZE)
    assert out["coords"][-1].shape == (1, 2, FRAMES, 3, 2) and len(out["coords"]) == 4
    cfg = TrackingHeadConfig.tiny()
    cfg.correlation = CorrelationConfig(radius=1, levels=2, head_mode="concat")
    head = TrackingHead(cfg, num_attention_heads=2)
    assert head.corr_mlps[0][0].in_features == 2 * 81
    with torch.no_grad():
        head(qk, qk, queries, SIZE)
        with pytest.raises(InputError):
            TrackingHead(cfg, num_attention_heads=3)(qk, qk, queries, SIZE)


def test_config_json_round_trip_and_validation():
    cfg = TrackingHeadConfig.tiny()
    again = TrackingHeadConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and isinstance(again.correlation, CorrelationConfig)
    with pytest.raises(ConfigError):
        TrackingHeadConfig(hidden=65, heads=4)
    with pytest.raises(ConfigError):
        TrackingHeadConfig.from_dict({"hidden_size": 3})


def test_displacement_encoding():
    enc = displacement_encoding(torch.tensor([[0.0, 0.0], [32.0, -16.0]]), (64, 64), 2)
    assert enc.shape == (2, 2 + 8)
    torch.testing.assert_close(enc[1, :2], torch.tensor([0.5, -0.25]))
    torch.testing.assert_close(enc[1, 2:4], torch.sin(torch.tensor([0.5, -0.25]) * math.pi))
