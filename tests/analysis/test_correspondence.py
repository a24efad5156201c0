"""Correspondence metrics from tapped Q/K: known answers, a float64 reference, chance level, memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mvt4g.analysis.correspondence import (
    CORRESPONDENCE_TYPES,
    MetricSums,
    TypeSums,
    auto_chunk,
    correspondence_sums,
    default_delta_px,
    query_attention,
)
from mvt4g.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: conftest.one_thread

STRIDE = 4  # pixels per token in these tests


def random_tracks(rng, frames, n, h, w, p_visible=0.8):
    tracks = rng.random((2, frames, n, 2)) * np.array([w * STRIDE, h * STRIDE])
    visible = rng.random((2, frames, n)) < p_visible
    return torch.from_numpy(tracks), torch.from_numpy(visible)


def naive_sums(q, k, tracks, visible, delta):
    """Float64 numpy reference: builds the full S x S attention (tiny sizes only) and loops."""
    q = q.double().numpy()
    k = k.double().numpy()
    _, frames, h, w, heads, d = q.shape
    hw = h * w
    qs = q.reshape(2 * frames * hw, heads, d)
    ks = k.reshape(2 * frames * hw, heads, d)
    logits = np.einsum("ahd,bhd->hab", qs, ks) / math.sqrt(d)  # [H, S, S]
    full = np.exp(logits - logits.max(-1, keepdims=True))
    full = (full / full.sum(-1, keepdims=True)).mean(0)  # [S, S] head-mean of row softmax
    blocks = logits.reshape(heads, 2 * frames * hw, 2 * frames, hw)
    per_frame = np.exp(blocks - blocks.max(-1, keepdims=True))
    per_frame = (per_frame / per_frame.sum(-1, keepdims=True)).mean(0)  # [S, VF, hw]

    def token(v, f, xy):
        tx, ty = int(np.floor(xy[0] / STRIDE)), int(np.floor(xy[1] / STRIDE))
        inside = 0 <= tx < w and 0 <= ty < h
        return ((v * frames + f) * hw + ty * w + tx) if inside else None, inside

    def centre(t):
        t = t % hw
        return np.array([(t % w + 0.5) * STRIDE, (t // w + 0.5) * STRIDE])

    out = {name: dict(pairs=0, correct=0, reliable=0, confidence=0.0, queries=0, attention=0.0, correct_sq=0, pairs_sq=0,
                      correct_pairs=0) for name in CORRESPONDENCE_TYPES}  # fmt: skip
    kinds = {"ref_temporal": (0, 0), "tgt_temporal": (1, 1), "cross_view": (1, 0)}
    tr, vis = tracks.numpy(), visible.numpy()
    for name, (v1, v2) in kinds.items():
        acc = out[name]
        for i in range(frames):
            for n in range(tr.shape[2]):
                qt, q_in = token(v1, i, tr[v1, i, n])
                if not (vis[v1, i, n] and q_in):
                    continue
                any_pair, c_q, p_q = False, 0, 0
                for j in range(frames):
                    if v1 == v2 and j == i:
                        continue
                    gt, gt_in = token(v2, j, tr[v2, j, n])
                    if not (vis[v2, j, n] and gt_in):
                        continue
                    any_pair = True
                    row = per_frame[qt, v2 * frames + j]
                    fwd = int(np.argmax(row))
                    fwd_global = (v2 * frames + j) * hw + fwd
                    back = int(np.argmax(per_frame[fwd_global, v1 * frames + i]))
                    reliable = np.linalg.norm(centre(back) - tr[v1, i, n]) <= delta
                    near = np.linalg.norm(centre(fwd) - tr[v2, j, n]) <= delta
                    acc["pairs"] += 1
                    acc["reliable"] += int(reliable)
                    acc["correct"] += int(reliable and near)
                    c_q, p_q = c_q + int(reliable and near), p_q + 1
                    acc["confidence"] += float(row.max())
                    acc["attention"] += float(full[qt, gt])
                acc["queries"] += int(any_pair)
                acc["correct_sq"] += c_q * c_q
                acc["pairs_sq"] += p_q * p_q
                acc["correct_pairs"] += c_q * p_q
    return out


def assert_matches(sums: MetricSums, ref: dict, rtol=1e-5):
    for name in CORRESPONDENCE_TYPES:
        got, want = sums.types[name], ref[name]
        assert (got.pairs, got.correct, got.reliable, got.queries) == (
            want["pairs"], want["correct"], want["reliable"], want["queries"]), name  # fmt: skip
        assert (got.correct_sq, got.pairs_sq, got.correct_pairs) == (
            want["correct_sq"], want["pairs_sq"], want["correct_pairs"]), name  # fmt: skip
        assert got.confidence == pytest.approx(want["confidence"], rel=rtol, abs=1e-9), name
        assert got.attention == pytest.approx(want["attention"], rel=rtol, abs=1e-9), name


@pytest.mark.parametrize("heads", ["mean", 1])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_reference(seed, heads):
    rng = np.random.default_rng(seed)
    frames, h, w, H, d, n = 3, 4, 5, 2, 8, 12
    # Moderate scale: peaked enough that argmax and cycles are often right, not always.
    q = torch.from_numpy(rng.normal(size=(2, frames, h, w, H, d)) * 2.0).float()
    k = torch.from_numpy(rng.normal(size=(2, frames, h, w, H, d)) * 2.0).float()
    tracks, visible = random_tracks(rng, frames, n, h, w)
    tracks[0, 1, 0] = torch.tensor([-3.0, 2.0])  # outside the image: never a query nor a match
    delta = default_delta_px(STRIDE) * 1.5
    got = correspondence_sums(q, k, tracks, visible, (h * STRIDE, w * STRIDE), delta_px=delta, heads=heads, chunk_size=5)
    sel = slice(None) if heads == "mean" else slice(heads, heads + 1)
    ref = naive_sums(q[..., sel, :], k[..., sel, :], tracks, visible, delta)
    assert_matches(got, ref)
    assert sum(got.types[t].pairs for t in CORRESPONDENCE_TYPES) > 20


def planted_keys(rng, frames, h, w, n, heads, dim, scale):
    """Q = K = scale * e_track on each track's token, other tokens on their own unit directions.

    Returns q, k [2, F, h, w, H, d] and tracks [2, F, n, 2] inside each track's token.
    """
    hw = h * w
    eye = np.eye(dim)
    q = np.zeros((2, frames, hw, heads, dim))
    tracks = np.zeros((2, frames, n, 2))
    for v in range(2):
        for f in range(frames):
            slots = rng.permutation(hw)
            for token in range(hw):
                q[v, f, token] = eye[n + token]  # background: directions n .. n + hw - 1
            for track in range(n):
                token = slots[track]
                q[v, f, token] = eye[track]
                ty, tx = divmod(int(token), w)
                tracks[v, f, track] = ((tx + rng.random()) * STRIDE, (ty + rng.random()) * STRIDE)
    q = torch.from_numpy(q.reshape(2, frames, h, w, heads, dim) * scale).float()
    return q, q.clone(), torch.from_numpy(tracks)


def test_keys_equal_to_ground_truth_queries_give_perfect_scores():
    rng = np.random.default_rng(3)
    frames, h, w, heads, n = 3, 4, 4, 2, 5
    dim = n + h * w
    scale = math.sqrt(30.0) * dim**0.25  # logit of a match = scale^2 / sqrt(d) = 30
    q, k, tracks = planted_keys(rng, frames, h, w, n, heads, dim, scale)
    visible = torch.ones(2, frames, n, dtype=torch.bool)
    sums = correspondence_sums(q, k, tracks, visible, (h * STRIDE, w * STRIDE), delta_px=default_delta_px(STRIDE))
    means = sums.means()
    a = 30.0
    s_total = 2 * frames * h * w
    # Each query matches its track's token in all 2F (view, frame) slots, its own included.
    mass = math.exp(a) / (2 * frames * math.exp(a) + (s_total - 2 * frames))
    expected_attention = {"ref_temporal": (frames - 1) * mass, "tgt_temporal": (frames - 1) * mass, "cross_view": frames * mass}
    for name in CORRESPONDENCE_TYPES:
        m = means[name]
        assert m["pck"] == 1.0 and m["reliable"] == 1.0, (name, m)
        assert m["confidence"] == pytest.approx(math.exp(a) / (math.exp(a) + h * w - 1), rel=1e-6)
        assert m["attention"] == pytest.approx(expected_attention[name], rel=1e-5)
    assert means["ref_temporal"]["pairs"] == frames * (frames - 1) * n
    assert means["cross_view"]["pairs"] == frames * frames * n
    assert means["ref_temporal"]["queries"] == frames * n


def test_attention_score_near_one_when_only_the_match_is_attended():
    # Two latent frames of the reference view, one track: each frame's query vector equals the
    # key of its match in the other frame only (its own key points elsewhere, the target view is
    # unseen), so all of its attention lands on the correct match.
    frames, h, w, heads, dim = 2, 3, 3, 1, 16
    q = torch.zeros(2, frames, h, w, heads, dim)
    k = torch.zeros_like(q)
    e = torch.eye(dim)
    q[0, 0, 1, 1, 0], k[0, 1, 2, 0, 0] = 10.0 * e[0], 10.0 * e[0]  # frame 0 token (1, 1) -> frame 1 token (2, 0)
    q[0, 1, 2, 0, 0], k[0, 0, 1, 1, 0] = 10.0 * e[1], 10.0 * e[1]  # and back
    tracks = torch.tensor([[[[6.0, 6.0]], [[2.0, 10.0]]], [[[1.0, 1.0]], [[1.0, 1.0]]]], dtype=torch.float64)
    visible = torch.tensor([[[True], [True]], [[False], [False]]])
    m = correspondence_sums(q, k, tracks, visible, (12, 12), delta_px=STRIDE).means()["ref_temporal"]
    assert m["pairs"] == 2 and m["queries"] == 2
    # Match logit 100 / sqrt(16) = 25 against 17 zero logits.
    assert m["attention"] == pytest.approx(math.exp(25) / (math.exp(25) + 2 * frames * h * w - 1), abs=1e-9)
    assert m["attention"] > 0.999999
    assert m["pck"] == 1.0 and m["confidence"] > 0.999999


def test_random_keys_sit_at_chance():
    rng = np.random.default_rng(5)
    frames, h, w, heads, d, n = 3, 8, 8, 2, 16, 40
    hw, s_total = h * w, 2 * frames * h * w
    tracks, visible = random_tracks(rng, frames, n, h, w, p_visible=1.0)
    size = (h * STRIDE, w * STRIDE)
    # Nearly uniform attention: confidence -> 1/hw, attention -> (#frames of the type) / S.
    q = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d)) * 1e-3).float()
    k = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d)) * 1e-3).float()
    means = correspondence_sums(q, k, tracks, visible, size, delta_px=STRIDE).means()
    assert means["ref_temporal"]["confidence"] == pytest.approx(1 / hw, rel=1e-3)
    assert means["ref_temporal"]["attention"] == pytest.approx((frames - 1) / s_total, rel=1e-3)
    assert means["cross_view"]["attention"] == pytest.approx(frames / s_total, rel=1e-3)
    # Sharp but random attention: matches land anywhere, so PCK is near (pi / hw)^2 ~ 0.002.
    q = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d)) * 3).float()
    k = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d)) * 3).float()
    means = correspondence_sums(q, k, tracks, visible, size, delta_px=STRIDE).means()
    for name in CORRESPONDENCE_TYPES:
        assert means[name]["pck"] < 0.03, (name, means[name])
        assert means[name]["reliable"] < 0.25, (name, means[name])


def test_sums_pool_additively_over_tracks():
    rng = np.random.default_rng(7)
    frames, h, w, heads, d, n = 3, 4, 4, 2, 8, 10
    q = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d)) * 2).float()
    k = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d)) * 2).float()
    tracks, visible = random_tracks(rng, frames, n, h, w)
    size = (h * STRIDE, w * STRIDE)
    whole = correspondence_sums(q, k, tracks, visible, size, delta_px=STRIDE)
    parts = MetricSums()
    for sl in (slice(0, 3), slice(3, n)):
        parts.add(correspondence_sums(q, k, tracks[:, :, sl], visible[:, :, sl], size, delta_px=STRIDE, chunk_size=2))
    for name in CORRESPONDENCE_TYPES:
        a, b = whole.types[name], parts.types[name]
        assert (a.pairs, a.correct, a.reliable, a.queries) == (b.pairs, b.correct, b.reliable, b.queries)
        assert a.attention == pytest.approx(b.attention, rel=1e-6)
        assert a.confidence == pytest.approx(b.confidence, rel=1e-6)


class MaxNumel(TorchDispatchMode):
    """Largest tensor any op creates while active."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_never_builds_the_full_attention():
    rng = np.random.default_rng(0)
    frames, h, w, heads, d, n = 4, 8, 16, 2, 8, 64
    s_total = 2 * frames * h * w  # 1024 tokens
    q = torch.randn(2, frames, h, w, heads, d)
    k = torch.randn(2, frames, h, w, heads, d)
    tracks, visible = random_tracks(rng, frames, n, h, w, p_visible=1.0)
    chunk = 16
    with MaxNumel() as probe:
        correspondence_sums(q, k, tracks, visible, (h * STRIDE, w * STRIDE), delta_px=STRIDE, chunk_size=chunk)
    # The largest temporaries are a chunk's logits [H, chunk, S] or its gathered keys, far below S x S.
    assert probe.largest <= max(heads * chunk * s_total, chunk * h * w * heads * d, q.numel())
    assert probe.largest < s_total * s_total // 8
    # The automatic chunk respects its budget.
    budget_chunk = auto_chunk(heads, s_total, h * w * d, budget=1 << 14)
    assert heads * budget_chunk * (3 * s_total + h * w * d) <= 1 << 14 or budget_chunk == 1


def test_query_attention_rows_are_distributions():
    rng = np.random.default_rng(2)
    frames, h, w, heads, d = 3, 4, 4, 2, 8
    q = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d))).float()
    k = torch.from_numpy(rng.normal(size=(2, frames, h, w, heads, d))).float()
    maps = query_attention(q, k, 1, 2, (5.0, 9.0), (16, 16))
    assert maps["per_frame"].shape == (2, frames, h, w)
    np.testing.assert_allclose(maps["per_frame"].sum(axis=(2, 3)), 1.0, rtol=1e-5)
    assert maps["row"].sum() == pytest.approx(1.0, rel=1e-5)
    assert maps["token"] == (2, 1)
    with pytest.raises(InputError, match="outside"):
        query_attention(q, k, 1, 0, (40.0, 1.0), (16, 16))


def test_bad_shapes_and_heads_are_input_errors():
    q = torch.zeros(2, 2, 2, 2, 2, 4)
    tracks = torch.zeros(2, 2, 3, 2)
    visible = torch.ones(2, 2, 3, dtype=torch.bool)
    with pytest.raises(InputError, match="q and k"):
        correspondence_sums(q, q[:, :1], tracks, visible, (8, 8), delta_px=4)
    with pytest.raises(InputError, match="tracks must be"):
        correspondence_sums(q, q, tracks[:, :1], visible, (8, 8), delta_px=4)
    with pytest.raises(InputError, match="head"):
        correspondence_sums(q, q, tracks, visible, (8, 8), delta_px=4, heads=5)


def test_default_delta_is_sixteen_pixels_at_the_papers_token_size():
    assert default_delta_px(16) == 16.0
    assert default_delta_px(4) == 4.0


def test_pck_standard_error_matches_a_per_query_computation():
    # Three query points with (correct, pairs) = (2, 4), (0, 3), (3, 3): the ratio estimator's
    # delta-method standard error, written out from per-query values.
    per_query = [(2, 4), (0, 3), (3, 3)]
    sums = TypeSums(pairs=10, correct=5, queries=3, correct_sq=4 + 0 + 9, pairs_sq=16 + 9 + 9, correct_pairs=8 + 0 + 9)
    r, n, pbar = 0.5, 3, 10 / 3
    want = math.sqrt(sum((c - r * p) ** 2 for c, p in per_query) / (n * (n - 1) * pbar**2))
    assert sums.pck_se() == pytest.approx(want, rel=1e-12)
    assert math.isnan(TypeSums(pairs=2, correct=1, queries=1, correct_sq=1, pairs_sq=4, correct_pairs=2).pck_se())
