"""TAP-Vid metrics per pair type (mvt4g.tracks.metrics): hand-computed cases and a naive reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import InputError
from mvt4g.tracks.format import TrackSet
from mvt4g.tracks.metrics import (
    THRESHOLDS,
    check_comparable,
    evaluation_masks,
    mean_scores,
    score_tracks,
)

H, W = 128, 512  # metric scale: x * 0.5, y * 2


def _hand_case() -> tuple[TrackSet, TrackSet]:
    """Two views, three frames, two tracks with errors chosen so 256x256 distances are round numbers."""
    rng = np.random.default_rng(1)
    gt = rng.uniform(20, 100, (2, 3, 2, 2))
    queries = np.array([[0, 0, *gt[0, 0, 0]], [1, 1, *gt[1, 1, 1]]])
    gt_vis = np.ones((2, 3, 2), bool)
    gt_vis[1, 2, 0] = False
    off = np.zeros_like(gt)
    off[0, 1, 0] = (3, 0)  # 1.5 at 256 scale
    off[0, 2, 0] = (0, 0.25)  # 0.5
    off[1, 0, 0] = (40, 0)  # 20
    off[1, 1, 0] = (0, 3)  # 6
    off[1, 2, 1] = (2, 0)  # 1: not within 1 (strict)
    off[0, 1, 1] = (0, 1)  # 2: not within 2
    pred_vis = np.ones((2, 3, 2), bool)
    pred_vis[0, 0, 1] = False
    return (
        TrackSet(gt + off, pred_vis, queries, (H, W), "pred"),
        TrackSet(gt, gt_vis, queries, (H, W), "gt"),
    )


def test_hand_computed_first_mode():
    pred, gt = _hand_case()
    s = score_tracks(pred, gt, "first")
    t, c = s["temporal"], s["cross_view"]
    assert (t["points"], t["visible"]) == (3, 3)
    assert t["pts_within_1"] == pytest.approx(1 / 3) and t["pts_within_2"] == 1.0
    assert t["delta_avg"] == pytest.approx(13 / 15)
    assert t["occlusion_accuracy"] == 1.0
    assert t["jaccard_1"] == pytest.approx(0.2) and t["average_jaccard"] == pytest.approx(0.84)
    assert (c["points"], c["visible"]) == (5, 4)
    assert [c[f"pts_within_{d}"] for d in THRESHOLDS] == pytest.approx([0.25, 0.25, 0.5, 0.75, 0.75])
    assert c["delta_avg"] == pytest.approx(0.5)
    assert c["occlusion_accuracy"] == pytest.approx(0.8)
    assert [c[f"jaccard_{d}"] for d in THRESHOLDS] == pytest.approx([1 / 8, 1 / 8, 2 / 7, 0.5, 0.5])
    assert s["all"]["points"] == 8


def test_hand_computed_strided_mode():
    pred, gt = _hand_case()
    s = score_tracks(pred, gt, "strided")
    t, c = s["temporal"], s["cross_view"]
    assert t["points"] == 4 and t["delta_avg"] == pytest.approx(0.9)
    assert t["average_jaccard"] == pytest.approx((1 / 3 + 4) / 5)
    assert (c["points"], c["visible"]) == (6, 5)
    assert c["delta_avg"] == pytest.approx(0.6)
    assert c["occlusion_accuracy"] == pytest.approx(4 / 6)
    assert c["average_jaccard"] == pytest.approx((1 / 9 + 1 / 9 + 1 / 4 + 3 / 7 + 3 / 7) / 5)


def test_query_itself_is_never_scored():
    q = np.array([[1, 2, 5.5, 5.5]])
    for mode in ("first", "strided"):
        m = evaluation_masks(q, 3, 4, mode)
        assert not m["all"][1, 2, 0]
        assert m["cross_view"][0, 2, 0] and not m["temporal"][0, 3, 0]
    assert not evaluation_masks(q, 3, 4, "first")["temporal"][1, 1, 0]
    assert evaluation_masks(q, 3, 4, "strided")["temporal"][1, 1, 0]


def _naive(pred: TrackSet, gt: TrackSet, mode: str) -> dict:
    """Loop-by-loop TAP-Vid numbers, independent of the vectorised code."""
    V, T, N = gt.visible.shape
    h, w = gt.image_size
    out = {}
    for pair in ("temporal", "cross_view"):
        rows = []
        for n in range(N):
            qv, qt = int(gt.queries[n, 0]), int(gt.queries[n, 1])
            for v in range(V):
                for t in range(T):
                    if (v, t) == (qv, qt):
                        continue
                    if pair == "temporal" and v != qv or pair == "cross_view" and v == qv:
                        continue
                    if mode == "first" and (t < qt or (pair == "temporal" and t == qt)):
                        continue
                    dx = (pred.tracks[v, t, n, 0] - gt.tracks[v, t, n, 0]) * 256.0 / w
                    dy = (pred.tracks[v, t, n, 1] - gt.tracks[v, t, n, 1]) * 256.0 / h
                    rows.append((float(np.hypot(dx, dy)), bool(gt.visible[v, t, n]), bool(pred.visible[v, t, n])))
        vis = [r for r in rows if r[1]]
        deltas, jacs = [], []
        for d in THRESHOLDS:
            correct = sum(1 for dist, g, _ in rows if g and dist < d)
            tp = sum(1 for dist, g, p in rows if g and p and dist < d)
            fp = sum(1 for dist, g, p in rows if p and not (g and dist < d))
            deltas.append(correct / len(vis) if vis else None)
            jacs.append(tp / (len(vis) + fp) if vis or fp else None)
        out[pair] = {
            "delta_avg": float(np.mean(deltas)) if vis else None,
            "average_jaccard": float(np.mean(jacs)) if vis else None,
            "occlusion_accuracy": sum(1 for _, g, p in rows if g == p) / len(rows) if rows else None,
        }
    return out


@settings(max_examples=30, deadline=None)
@given(V=st.integers(1, 3), T=st.integers(1, 5), N=st.integers(1, 6), seed=st.integers(0, 10_000),
       mode=st.sampled_from(["first", "strided"]))
def test_matches_naive_loops(V, T, N, seed, mode):
    rng = np.random.default_rng(seed)
    q = np.stack([rng.integers(0, V, N), rng.integers(0, T, N), rng.uniform(0, W, N), rng.uniform(0, H, N)], 1)
    gt = TrackSet(rng.uniform(0, 100, (V, T, N, 2)), rng.random((V, T, N)) < 0.7, q, (H, W), "gt")
    noise = rng.normal(0, rng.choice([1.0, 5.0, 20.0]), (V, T, N, 2))
    pred = TrackSet(gt.tracks + noise, rng.random((V, T, N)) < 0.7, q, (H, W), "pred")
    got, want = score_tracks(pred, gt, mode), _naive(pred, gt, mode)
    for pair in ("temporal", "cross_view"):
        for key, value in want[pair].items():
            if value is None:
                assert got[pair][key] is None
            else:
                assert got[pair][key] == pytest.approx(value, abs=1e-12), (pair, key)


@settings(max_examples=20, deadline=None)
@given(V=st.integers(1, 3), T=st.integers(1, 5), N=st.integers(1, 8), seed=st.integers(0, 10_000),
       mode=st.sampled_from(["first", "strided"]))
def test_subset_scores_like_the_tracks_cut_out(V, T, N, seed, mode):
    """subset=...: the same numbers as the naive loops over a TrackSet holding only those tracks."""
    rng = np.random.default_rng(seed)
    q = np.stack([rng.integers(0, V, N), rng.integers(0, T, N), rng.uniform(0, W, N), rng.uniform(0, H, N)], 1)
    gt = TrackSet(rng.uniform(0, 100, (V, T, N, 2)), rng.random((V, T, N)) < 0.7, q, (H, W), "gt")
    pred = TrackSet(gt.tracks + rng.normal(0, 4.0, (V, T, N, 2)), rng.random((V, T, N)) < 0.7, q, (H, W), "pred")
    keep = rng.random(N) < 0.5
    cut = [TrackSet(ts.tracks[:, :, keep], ts.visible[:, :, keep], q[keep], (H, W), ts.method) for ts in (pred, gt)]
    got = score_tracks(pred, gt, mode, subset=keep)
    want = _naive(*cut, mode)
    for pair in ("temporal", "cross_view"):
        for key, value in want[pair].items():
            assert got[pair][key] == (None if value is None else pytest.approx(value, abs=1e-12)), (pair, key)


def test_subset_of_the_wrong_length_is_refused():
    pred, gt = _hand_case()
    with pytest.raises(InputError, match="one per query"):
        score_tracks(pred, gt, subset=np.ones(3, bool))


def test_perfect_prediction_scores_one():
    _, gt = _hand_case()
    s = score_tracks(gt, gt, "strided")
    assert all(s[p]["delta_avg"] == 1.0 and s[p]["average_jaccard"] == 1.0 for p in s)
    assert mean_scores([s, s])["all"]["points"] == 2 * s["all"]["points"]


def test_different_queries_are_refused_clearly():
    pred, gt = _hand_case()
    moved = TrackSet(pred.tracks, pred.visible, pred.queries + [0, 0, 3, 0], pred.image_size, "pred")
    with pytest.raises(InputError, match="not the same queries"):
        check_comparable(moved, gt)
    fewer = TrackSet(pred.tracks[:, :, :1], pred.visible[:, :, :1], pred.queries[:1], pred.image_size, "pred")
    with pytest.raises(InputError, match="--queries-from"):
        score_tracks(fewer, gt)
    with pytest.raises(InputError, match="query mode"):
        score_tracks(gt, gt, "sometimes")
