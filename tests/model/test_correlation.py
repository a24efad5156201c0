"""Multi-scale local 4D correlation against a naive numpy loop and torch's grid_sample."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.correlation import (
    CorrelationConfig,
    LocalCorrelation,
    build_pyramid,
    sample_windows,
)


def naive_pyramid(grid: np.ndarray, levels: int) -> list[np.ndarray]:
    """grid [h, w, C] -> levels of 2x2 block means (a block hanging off the edge averages what it has)."""
    out = [grid]
    for _ in range(1, levels):
        g = out[-1]
        h, w = g.shape[:2]
        nh, nw = -(-h // 2), -(-w // 2)
        nxt = np.zeros((nh, nw, g.shape[2]))
        for i in range(nh):
            for j in range(nw):
                nxt[i, j] = g[2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(-1, g.shape[2]).mean(0)
        out.append(nxt)
    return out


def naive_bilinear(grid: np.ndarray, x: float, y: float) -> np.ndarray:
    """Value at cell coordinates (x, y) with zeros outside the grid."""
    h, w = grid.shape[:2]
    x0, y0 = math.floor(x), math.floor(y)
    value = np.zeros(grid.shape[2])
    for yy, xx, wt in ((y0, x0, (1 - (y - y0)) * (1 - (x - x0))), (y0, x0 + 1, (1 - (y - y0)) * (x - x0)),
                       (y0 + 1, x0, (y - y0) * (1 - (x - x0))), (y0 + 1, x0 + 1, (y - y0) * (x - x0))):
        if 0 <= yy < h and 0 <= xx < w:
            value += wt * grid[yy, xx]
    return value


def naive_correlation(q, k, queries, coords, image_size, radius, levels, head_mode, softmax_over):
    q, k, queries, coords = (t.detach().numpy().astype(np.float64) for t in (q, k, queries, coords))
    B, V, Fr, h, w, H, d = q.shape
    N = queries.shape[1]
    sx, sy = image_size[1] / w, image_size[0] / h
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    out = []
    for b in range(B):
        qp = {(v, f): naive_pyramid(q[b, v, f].reshape(h, w, H * d), levels) for v in range(V) for f in range(Fr)}
        kp = {(v, f): naive_pyramid(k[b, v, f].reshape(h, w, H * d), levels) for v in range(V) for f in range(Fr)}
        per_b = np.zeros((V, Fr, N, levels, (H if head_mode == "concat" else 1) * len(offsets) ** 2))
        for n in range(N):
            qv, qf, qx, qy = queries[b, n]
            for lvl in range(levels):
                scale = 2 ** lvl
                cx, cy = qx / (sx * scale) - 0.5, qy / (sy * scale) - 0.5
                qwin = np.stack([naive_bilinear(qp[(int(qv), int(qf))][lvl], cx + dx, cy + dy) for dy, dx in offsets])
                for v in range(V):
                    for f in range(Fr):
                        px, py = coords[b, v, f, n]
                        ex, ey = px / (sx * scale) - 0.5, py / (sy * scale) - 0.5
                        kwin = np.stack([naive_bilinear(kp[(v, f)][lvl], ex + dx, ey + dy) for dy, dx in offsets])
                        heads = []
                        for hh in range(H):
                            logits = qwin[:, hh * d:(hh + 1) * d] @ kwin[:, hh * d:(hh + 1) * d].T / math.sqrt(d)
                            if softmax_over == "keys":
                                e = np.exp(logits - logits.max(1, keepdims=True))
                                heads.append(e / e.sum(1, keepdims=True))
                            else:
                                e = np.exp(logits - logits.max())
                                heads.append(e / e.sum())
                        heads = np.stack(heads)
                        per_b[v, f, n, lvl] = heads.mean(0).ravel() if head_mode == "mean" else heads.ravel()
        out.append(per_b)
    return np.stack(out)


def make_inputs(seed, B=1, V=2, Fr=2, h=5, w=6, H=2, d=3, N=3, stride=4):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, V, Fr, h, w, H, d, generator=g, dtype=torch.float64)
    k = torch.randn(B, V, Fr, h, w, H, d, generator=g, dtype=torch.float64)
    size = (h * stride, w * stride)
    queries = torch.stack([torch.randint(0, V, (B, N), generator=g).double(), torch.randint(0, Fr, (B, N), generator=g).double(),
                           torch.rand(B, N, generator=g, dtype=torch.float64) * size[1],
                           torch.rand(B, N, generator=g, dtype=torch.float64) * size[0]], -1)
    # Estimates wander up to 30% outside the image so the zero padding is exercised.
    extent = torch.tensor([size[1], size[0]], dtype=torch.float64)
    coords = -0.3 * extent + torch.rand(B, V, Fr, N, 2, generator=g, dtype=torch.float64) * 1.6 * extent
    return q, k, queries, coords, size


@pytest.mark.parametrize("head_mode,softmax_over", [("mean", "keys"), ("concat", "keys"), ("mean", "all")])
def test_matches_naive_loop(head_mode, softmax_over):
    q, k, queries, coords, size = make_inputs(0)
    cfg = CorrelationConfig(radius=1, levels=3, head_mode=head_mode, softmax_over=softmax_over, frame_chunk=1)
    ours = LocalCorrelation(q, k, queries, size, cfg)(coords)
    assert ours.shape == (1, 2, 2, 3, 3, cfg.channels(2))
    ref = naive_correlation(q, k, queries, coords, size, 1, 3, head_mode, softmax_over)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(1, 6), w=st.integers(1, 6), radius=st.integers(0, 2),
       levels=st.integers(1, 3), chunk=st.integers(1, 3))
def test_property_matches_naive(seed, h, w, radius, levels, chunk):
    q, k, queries, coords, size = make_inputs(seed, h=h, w=w, N=2, H=1)
    cfg = CorrelationConfig(radius=radius, levels=levels, frame_chunk=chunk)
    ours = LocalCorrelation(q, k, queries, size, cfg)(coords)
    ref = naive_correlation(q, k, queries, coords, size, radius, levels, "mean", "keys")
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-12)
    # Rows of the keys-softmax are distributions.
    rows = ours.reshape(*ours.shape[:-1], (2 * radius + 1) ** 2, (2 * radius + 1) ** 2).sum(-1)
    np.testing.assert_allclose(rows.numpy(), 1.0, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), radius=st.integers(0, 3))
def test_sample_windows_equals_grid_sample(seed, radius):
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(1, 3, 4, 7, 5, generator=g, dtype=torch.float64)  # [B, M, h, w, C]
    centres = torch.rand(1, 6, 2, generator=g, dtype=torch.float64) * torch.tensor([11.0, 8.0]) - 2
    index = torch.randint(0, 3, (1, 6), generator=g)
    ours = sample_windows(maps, index, centres, radius)
    offs = torch.arange(-radius, radius + 1, dtype=torch.float64)
    dy, dx = torch.meshgrid(offs, offs, indexing="ij")
    for p in range(6):
        pts = centres[0, p] + torch.stack([dx.ravel(), dy.ravel()], -1)  # cell coords
        norm = torch.stack([(2 * pts[:, 0] + 1) / 7 - 1, (2 * pts[:, 1] + 1) / 4 - 1], -1)
        ref = F.grid_sample(maps[0, index[0, p]].permute(2, 0, 1)[None], norm[None, None], mode="bilinear",
                            padding_mode="zeros", align_corners=False)[0, :, 0].T
        torch.testing.assert_close(ours[0, p], ref, rtol=1e-10, atol=1e-12)


def test_pyramid_levels_and_sizes():
    x = torch.randn(1, 2, 2, 30, 52, 3, dtype=torch.float64)
    pyr = build_pyramid(x, 4)
    assert [p.shape[3:5] for p in pyr] == [(30, 52), (15, 26), (8, 13), (4, 7)]
    torch.testing.assert_close(pyr[1][0, 1, 0, 2, 3], x[0, 1, 0, 4:6, 6:8].mean((0, 1)))


@pytest.mark.slow
def test_gradients_reach_q_and_k_but_not_coords():
    q, k, queries, coords, size = make_inputs(1, h=3, w=4, N=2)
    cfg = CorrelationConfig(radius=1, levels=2, frame_chunk=1)
    coords.requires_grad_()
    for seed in range(3):  # fast mode checks random directional derivatives
        torch.manual_seed(seed)
        assert torch.autograd.gradcheck(lambda a, b: LocalCorrelation(a, b, queries, size, cfg)(coords.detach()),
                                        (q.clone().requires_grad_(), k.clone().requires_grad_()), fast_mode=True)
    qq = q.clone().requires_grad_()
    out = LocalCorrelation(qq, k, queries, size, cfg)(coords)
    (out * torch.randn_like(out)).sum().backward()
    assert coords.grad is None and qq.grad.abs().sum() > 0


def test_recompute_matches_plain_gradients():
    q, k, queries, coords, size = make_inputs(2)
    grads = []
    for recompute in (True, False):
        qq, kk = q.clone().requires_grad_(), k.clone().requires_grad_()
        cfg = CorrelationConfig(radius=2, levels=2, recompute=recompute, frame_chunk=1)
        out = LocalCorrelation(qq, kk, queries, size, cfg)(coords)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append((qq.grad, kk.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_config_validation_and_round_trip():
    with pytest.raises(ConfigError):
        CorrelationConfig(radius=-1)
    with pytest.raises(ConfigError):
        CorrelationConfig(head_mode="sum")
    with pytest.raises(ConfigError):
        CorrelationConfig.from_dict({"radius": 3, "scales": 4})
    cfg = CorrelationConfig(radius=2, softmax_over="all")
    assert CorrelationConfig.from_dict(cfg.to_dict()) == cfg
    assert CorrelationConfig().channels(12) == 2401
    q, k, queries, _, size = make_inputs(3)
    queries[0, 0, 0] = 2
    with pytest.raises(InputError):
        LocalCorrelation(q, k, queries, size, CorrelationConfig())
