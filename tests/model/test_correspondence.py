"""L_corr against a naive full-attention implementation (values and gradients, float64)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.correspondence import (
    CorrespondenceLoss,
    CorrespondenceLossConfig,
    measure_memory,
)


def make_inputs(seed, B=2, V=2, Fr=3, h=3, w=4, H=2, d=4, N=5, stride=8, occlude=0.3, outside=0.1):
    g = torch.Generator().manual_seed(seed)
    shape = (B, V, Fr, h, w, H, d)
    q = torch.randn(shape, generator=g, dtype=torch.float64)
    k = torch.randn(shape, generator=g, dtype=torch.float64)
    size = (h * stride, w * stride)
    queries = torch.stack([
        torch.randint(0, V, (B, N), generator=g).double(),
        torch.randint(0, Fr, (B, N), generator=g).double(),
        torch.rand(B, N, generator=g, dtype=torch.float64) * size[1],
        torch.rand(B, N, generator=g, dtype=torch.float64) * size[0]], -1)
    # Ground truth spills a little outside the image so the in-bounds rule is exercised.
    lo = -outside * torch.tensor([size[1], size[0]], dtype=torch.float64)
    span = (1 + 2 * outside) * torch.tensor([size[1], size[0]], dtype=torch.float64)
    tracks = lo + torch.rand(B, V, Fr, N, 2, generator=g, dtype=torch.float64) * span
    visible = torch.rand(B, V, Fr, N, generator=g) > occlude
    return q, k, queries, tracks, visible, size


def naive_loss(q, k, queries, tracks, visible, size, head_mode, frame_reduction, sampling, mlp=None):
    """Full softmax(QK^T / sqrt d) over all S tokens, each row split into per-frame softmaxes."""
    B, V, Fr, h, w, H, d = q.shape
    sx, sy = size[1] / w, size[0] / h
    S, hw = V * Fr * h * w, h * w
    terms, per_query = [], []
    for b in range(B):
        Q = q[b].reshape(S, H, d)
        K = k[b].reshape(S, H, d)
        full = torch.einsum("shd,thd->hst", Q, K) / math.sqrt(d)  # [H, S, S]
        for n in range(queries.shape[1]):
            v1, f1, x, y = queries[b, n].tolist()
            v1, f1 = round(v1), round(f1)
            if not (0 <= x < size[1] and 0 <= y < size[0]):
                continue
            base = (v1 * Fr + f1) * hw
            if sampling == "nearest":
                row = full[:, base + int(y // sy) * w + int(x // sx)]
            else:  # logits are linear in q: blend the logit rows of the four neighbours
                xt = min(max(x / sx - 0.5, 0), w - 1)
                yt = min(max(y / sy - 0.5, 0), h - 1)
                x0, y0 = math.floor(xt), math.floor(yt)
                x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
                fx, fy = xt - x0, yt - y0
                row = ((1 - fy) * (1 - fx) * full[:, base + y0 * w + x0] + (1 - fy) * fx * full[:, base + y0 * w + x1]
                       + fy * (1 - fx) * full[:, base + y1 * w + x0] + fy * fx * full[:, base + y1 * w + x1])
            row = row.view(H, V * Fr, hw)
            qsum, qcount = 0.0, 0
            for v2 in range(V):
                for f2 in range(Fr):
                    if (v2, f2) == (v1, f1) or not visible[b, v2, f2, n]:
                        continue
                    tx, ty = tracks[b, v2, f2, n].tolist()
                    if not (0 <= tx < size[1] and 0 <= ty < size[0]):
                        continue
                    label = int(ty // sy) * w + int(tx // sx)
                    logits = row[:, v2 * Fr + f2]  # [H, hw]
                    if head_mode == "mean_ce":
                        ce = -torch.log_softmax(logits, -1)[:, label].mean()
                    elif head_mode == "mean_prob":
                        ce = -torch.log(torch.softmax(logits, -1)[:, label].mean())
                    else:
                        ce = -torch.log_softmax(mlp(logits.T), -1)[label]
                    terms.append(ce)
                    qsum, qcount = qsum + ce, qcount + 1
            if qcount:
                per_query.append(qsum)
    if not terms:
        return q.sum() * 0
    if frame_reduction == "mean":
        return torch.stack(terms).mean()
    return torch.stack(per_query).mean()


OPTIONS = [(hm, fr, smp) for hm in ("mean_ce", "mean_prob", "mlp") for fr in ("mean", "sum") for smp in ("nearest", "bilinear")]


@pytest.mark.parametrize("head_mode,frame_reduction,sampling", OPTIONS)
def test_matches_naive_values_and_gradients(head_mode, frame_reduction, sampling):
    q, k, queries, tracks, visible, size = make_inputs(0)
    cfg = CorrespondenceLossConfig(head_mode=head_mode, frame_reduction=frame_reduction, query_sampling=sampling,
                                   chunk_size=2, num_heads=2, mlp_hidden=5)
    torch.manual_seed(0)
    loss_fn = CorrespondenceLoss(cfg).double()
    q1, k1 = q.clone().requires_grad_(), k.clone().requires_grad_()
    q2, k2 = q.clone().requires_grad_(), k.clone().requires_grad_()
    ours = loss_fn(q1, k1, queries, tracks, visible, size)
    mlp = (lambda x: loss_fn.head_mlp(x)) if head_mode == "mlp" else None
    ref = naive_loss(q2, k2, queries, tracks, visible, size, head_mode, frame_reduction, sampling, mlp)
    assert ours.item() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    g_ours = torch.autograd.grad(ours, [q1, k1])
    g_ref = torch.autograd.grad(ref, [q2, k2])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert g_ours[1].abs().sum() > 0


def test_mlp_parameters_get_gradients_through_checkpoint():
    q, k, queries, tracks, visible, size = make_inputs(1)
    loss_fn = CorrespondenceLoss(CorrespondenceLossConfig(head_mode="mlp", num_heads=2, chunk_size=3)).double()
    loss_fn(q, k, queries, tracks, visible, size).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss_fn.parameters())


def test_gradcheck_float64():
    q, k, queries, tracks, visible, size = make_inputs(2, B=1, Fr=2, h=2, w=3, N=3, occlude=0.0, outside=0.0)
    loss_fn = CorrespondenceLoss(CorrespondenceLossConfig(head_mode="mean_prob", query_sampling="bilinear", chunk_size=2))
    assert torch.autograd.gradcheck(lambda a, b: loss_fn(a, b, queries, tracks, visible, size),
                                    (q.requires_grad_(), k.requires_grad_()), fast_mode=True)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 2), Fr=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4),
       H=st.integers(1, 3), N=st.integers(1, 7), chunk=st.integers(1, 8),
       head_mode=st.sampled_from(["mean_ce", "mean_prob"]), reduction=st.sampled_from(["mean", "sum"]),
       sampling=st.sampled_from(["nearest", "bilinear"]))
def test_property_matches_naive(seed, B, Fr, h, w, H, N, chunk, head_mode, reduction, sampling):
    q, k, queries, tracks, visible, size = make_inputs(seed, B=B, Fr=Fr, h=h, w=w, H=H, N=N)
    cfg = CorrespondenceLossConfig(head_mode=head_mode, frame_reduction=reduction, query_sampling=sampling, chunk_size=chunk)
    ours = CorrespondenceLoss(cfg)(q, k, queries, tracks, visible, size)
    ref = naive_loss(q, k, queries, tracks, visible, size, head_mode, reduction, sampling)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), head_mode=st.sampled_from(["mean_ce", "mean_prob"]))
def test_property_per_frame_key_offset_invariance(seed, head_mode):
    """A constant added to every key of one frame shifts that frame's logits uniformly: no change."""
    q, k, queries, tracks, visible, size = make_inputs(seed)
    offset = torch.randn(2, 2, 3, 1, 1, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 3
    loss_fn = CorrespondenceLoss(CorrespondenceLossConfig(head_mode=head_mode))
    torch.testing.assert_close(loss_fn(q, k, queries, tracks, visible, size),
                               loss_fn(q, k + offset, queries, tracks, visible, size), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("head_mode", ["mean_ce", "mean_prob"])
def test_uniform_attention_gives_log_tokens_per_frame(head_mode):
    q, k, queries, tracks, visible, size = make_inputs(3, outside=0.0)
    loss = CorrespondenceLoss(CorrespondenceLossConfig(head_mode=head_mode))(torch.zeros_like(q), k, queries, tracks, visible, size)
    assert loss.item() == pytest.approx(math.log(3 * 4), rel=1e-12)


def test_own_frame_excluded_and_no_terms_gives_zero_with_graph():
    q, k, queries, tracks, visible, size = make_inputs(4, B=1, N=2, occlude=0.0, outside=0.0)
    only_own = torch.zeros_like(visible)
    for n in range(2):
        only_own[0, int(queries[0, n, 0]), int(queries[0, n, 1]), n] = True
    q.requires_grad_()
    loss = CorrespondenceLoss()(q, k, queries, tracks, only_own, size)
    assert loss.item() == 0.0
    loss.backward()
    assert q.grad is not None and q.grad.abs().sum() == 0


def test_recompute_and_chunking_do_not_change_results():
    q, k, queries, tracks, visible, size = make_inputs(5, N=7)
    results = []
    for chunk, recompute in ((1, True), (3, False), (64, True)):
        qq, kk = q.clone().requires_grad_(), k.clone().requires_grad_()
        loss = CorrespondenceLoss(CorrespondenceLossConfig(chunk_size=chunk, recompute=recompute))(qq, kk, queries, tracks, visible, size)
        loss.backward()
        results.append((loss.detach(), qq.grad, kk.grad))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_bad_inputs_and_options():
    q, k, queries, tracks, visible, size = make_inputs(6)
    with pytest.raises(ConfigError):
        CorrespondenceLossConfig(head_mode="max")
    with pytest.raises(ConfigError):
        CorrespondenceLossConfig(head_mode="mlp", num_heads=0)
    with pytest.raises(ConfigError):
        CorrespondenceLossConfig.from_dict({"chunk": 3})
    bad = queries.clone()
    bad[0, 0, 1] = 7
    with pytest.raises(InputError):
        CorrespondenceLoss()(q, k, bad, tracks, visible, size)
    with pytest.raises(InputError):
        CorrespondenceLoss()(q, k[:, :, :2], queries, tracks, visible, size)
    cfg = CorrespondenceLossConfig(head_mode="mlp", num_heads=2, frame_reduction="sum")
    assert CorrespondenceLossConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.slow
def test_memory_grows_linearly_with_tokens():
    stats = measure_memory(grid_hw=(6, 8), frames=2, heads=2, head_dim=16, num_queries=256)
    assert stats["tokens"][1] == 4 * stats["tokens"][0]
    assert stats["peak_ratio"] <= 4.5 and stats["extra_ratio"] <= 4.5
    # Without recomputation all 256 rows of logits are kept for backward: clearly more memory.
    held = measure_memory(grid_hw=(6, 8), frames=2, heads=2, head_dim=16, num_queries=256,
                          config=CorrespondenceLossConfig(recompute=False))
    assert held["extra_bytes"][1] > 2 * stats["extra_bytes"][1]
