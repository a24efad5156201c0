"""L_track against a float64 numpy reference; total-loss combination."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.losses import TotalLossConfig, TrackLossConfig, total_loss, track_loss


def fake_prediction(seed, iterations=3, shape=(2, 2, 3, 4), spread=15.0):
    g = torch.Generator().manual_seed(seed)
    tracks = torch.rand(*shape, 2, generator=g, dtype=torch.float64) * 64
    coords = [tracks + torch.randn(*shape, 2, generator=g, dtype=torch.float64) * spread / (i + 1) for i in range(iterations)]
    vis = [torch.randn(shape, generator=g, dtype=torch.float64) * 2 for _ in range(iterations)]
    conf = [torch.randn(shape, generator=g, dtype=torch.float64) * 2 for _ in range(iterations)]
    visible = torch.rand(shape, generator=g) > 0.3
    pred = {"coords": coords, "vis_logits_iters": vis, "conf_logits_iters": conf, "vis_logits": vis[-1], "conf_logits": conf[-1]}
    return pred, tracks, visible


def np_huber(e, delta):
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e ** 2, delta * (a - 0.5 * delta))


def np_bce(x, y):
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def reference(pred, tracks, visible, cfg, valid=None):
    """Straight from Eq. 18-19 and the module docstring, in numpy."""
    tr, vis_gt = tracks.numpy(), visible.numpy()
    ok = np.ones_like(vis_gt) if valid is None else valid.numpy()
    seen = vis_gt & ok
    n = len(pred["coords"])
    w = [cfg.gamma ** (n - i - 1) for i in range(n)]
    seq = 0.0
    for wi, p in zip(w, pred["coords"]):
        h = np_huber(p.detach().numpy() - tr, cfg.huber_delta).mean(-1)
        seq += wi * h[seen].sum() / max(seen.sum(), 1)

    def conf_of(c, p):
        err = np.linalg.norm(p.detach().numpy() - tr, axis=-1)
        target = (err <= cfg.conf_threshold_px).astype(float)
        return np_bce(c.detach().numpy(), target)[seen].sum() / max(seen.sum(), 1)

    def vis_of(v):
        return np_bce(v.detach().numpy(), vis_gt.astype(float))[ok].sum() / max(ok.sum(), 1)

    if cfg.vis_conf_all_iterations:
        vis = sum(wi * vis_of(v) for wi, v in zip(w, pred["vis_logits_iters"]))
        conf = sum(wi * conf_of(c, p) for wi, c, p in zip(w, pred["conf_logits_iters"], pred["coords"]))
    else:
        vis, conf = vis_of(pred["vis_logits"]), conf_of(pred["conf_logits"], pred["coords"][-1])
    return cfg.seq_weight * seq + cfg.conf_weight * conf + cfg.vis_weight * vis, seq, conf, vis


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), iterations=st.integers(1, 4), all_iters=st.booleans(),
       delta=st.floats(0.5, 10), gamma=st.floats(0.3, 1.0), threshold=st.floats(1, 30), use_valid=st.booleans())
def test_matches_numpy_reference(seed, iterations, all_iters, delta, gamma, threshold, use_valid):
    pred, tracks, visible = fake_prediction(seed, iterations)
    cfg = TrackLossConfig(huber_delta=delta, gamma=gamma, conf_threshold_px=threshold, vis_conf_all_iterations=all_iters,
                          seq_weight=0.05, conf_weight=0.7, vis_weight=1.3)
    valid = torch.rand(visible.shape, generator=torch.Generator().manual_seed(seed + 1)) > 0.2 if use_valid else None
    out = track_loss(pred, tracks, visible, cfg, valid=valid)
    ref = reference(pred, tracks, visible, cfg, valid)
    for key, value in zip(("loss", "seq", "conf", "vis"), ref):
        assert out[key].item() == pytest.approx(value, rel=1e-10, abs=1e-12), key


def test_hand_computed_single_point():
    tracks = torch.tensor([10.0, 20.0]).view(1, 1, 1, 1, 2)
    visible = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    coords = [tracks + torch.tensor([8.0, 0.0]), tracks + torch.tensor([3.0, -4.0])]  # errors 8 px, then 5 px
    zeros = torch.zeros(1, 1, 1, 1)
    pred = {"coords": coords, "vis_logits": zeros, "conf_logits": zeros, "vis_logits_iters": [zeros] * 2, "conf_logits_iters": [zeros] * 2}
    out = track_loss(pred, tracks, visible)
    huber_first = (6 * (8 - 3) + 0) / 2  # x beyond delta, y exact; mean over x, y
    huber_last = (0.5 * 9 + 0.5 * 16) / 2
    assert out["seq"].item() == pytest.approx(0.8 * huber_first + huber_last)
    assert out["vis"].item() == pytest.approx(np.log(2))  # logit 0 against visible
    assert out["conf"].item() == pytest.approx(np.log(2))  # 5 px <= 12 px: target 1, logit 0
    assert out["loss"].item() == pytest.approx(0.05 * out["seq"].item() + 2 * np.log(2))


def test_confidence_does_not_move_positions_and_nan_tracks_are_safe():
    pred, tracks, visible = fake_prediction(3, iterations=2)
    tracks = tracks.clone()
    tracks[~visible] = float("nan")  # occluded ground truth is often NaN in datasets
    coords = [c.clone().requires_grad_() for c in pred["coords"]]
    conf = pred["conf_logits"].clone().requires_grad_()
    pred = dict(pred, coords=coords, conf_logits=conf)
    out = track_loss(pred, tracks, visible, TrackLossConfig(seq_weight=0.0, vis_weight=0.0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(c.grad is None or c.grad.abs().sum() == 0 for c in coords)
    assert conf.grad.abs().sum() > 0
    full = track_loss(pred, tracks, visible)
    assert all(torch.isfinite(v) for v in full.values())


def test_total_loss_combination():
    d, t, c = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0)
    out = total_loss(d, t, c)
    assert out["loss"].item() == pytest.approx(2 + 0.01 * 3 + 0.01 * 5)
    assert out["track"] is t and out["corr"] is c
    only = total_loss(d, config=TotalLossConfig(lambda_track=1.0, lambda_corr=2.0))
    assert only["loss"].item() == 2.0 and only["corr"].item() == 0.0
    assert total_loss(d, None, c, TotalLossConfig(lambda_corr=2.0))["loss"].item() == pytest.approx(12.0)


def test_configs_validate_and_round_trip():
    with pytest.raises(ConfigError):
        TrackLossConfig(huber_delta=0)
    with pytest.raises(ConfigError):
        TrackLossConfig(gamma=1.5)
    with pytest.raises(ConfigError):
        TotalLossConfig(lambda_corr=-1)
    with pytest.raises(ConfigError):
        TrackLossConfig.from_dict({"delta": 6})
    cfg = TrackLossConfig(seq_weight=0.1, vis_conf_all_iterations=True)
    assert TrackLossConfig.from_dict(cfg.to_dict()) == cfg
    assert TotalLossConfig.from_dict({"lambda_track": 0.02}).lambda_track == 0.02
    pred, tracks, visible = fake_prediction(0)
    with pytest.raises(InputError):
        track_loss(pred, tracks[:, :1], visible)


def test_track_loss_accepts_bf16_predictions_with_fp32_tracks():
    """Under bf16 autocast the head's outputs are bf16 while the tracks stay fp32."""
    torch.manual_seed(0)
    shape = (1, 2, 3, 4)
    coords = [(torch.rand(*shape, 2) * 50).bfloat16().requires_grad_() for _ in range(2)]
    pred = {"coords": coords, "vis_logits": torch.randn(shape).bfloat16(), "conf_logits": torch.randn(shape).bfloat16()}
    out = track_loss(pred, torch.rand(*shape, 2) * 50, torch.ones(shape, dtype=torch.bool))
    assert out["loss"].dtype == torch.float32
    out["loss"].backward()
    assert coords[-1].grad is not None and coords[-1].grad.dtype == torch.bfloat16
