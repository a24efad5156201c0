"""Covisibility from exact depth against a per-pixel float64 loop, and the region metrics on synth clips."""

from __future__ import annotations

import numpy as np
import pytest

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.pose import look_at
from mvt4g.camera.rig import ViewCameras
from mvt4g.eval.covisibility import covisible_mask, synthetic_regions


def _naive(td, tgt, rd, ref, tol):
    T, H, W = td.shape
    out = np.zeros((T, H, W), bool)
    for t in range(T):
        for v in range(H):
            for u in range(W):
                x = np.linalg.inv(tgt.K[t]) @ np.array([u + 0.5, v + 0.5, 1.0]) * td[t, v, u]
                X = tgt.c2w[t, :3, :3] @ x + tgt.c2w[t, :3, 3]
                y = ref.c2w[t, :3, :3].T @ (X - ref.c2w[t, :3, 3])
                if y[2] <= 1e-9:
                    continue
                p = ref.K[t] @ y
                ur, vr = p[0] / y[2], p[1] / y[2]
                if not (0 <= ur < rd.shape[2] and 0 <= vr < rd.shape[1]):
                    continue
                out[t, v, u] = abs(rd[t, int(np.floor(vr)), int(np.floor(ur))] - y[2]) <= tol * y[2]
    return out


def _plane_depth(cams: ViewCameras, height: float) -> np.ndarray:
    """z-depth of the world plane z = height seen by each camera (sky: far)."""
    T = len(cams.c2w)
    u, v = np.meshgrid(np.arange(cams.width) + 0.5, np.arange(cams.height) + 0.5)
    pix = np.stack([u, v, np.ones_like(u)], -1)
    out = np.full((T, cams.height, cams.width), 100.0)
    for t in range(T):
        d = pix @ np.linalg.inv(cams.K[t]).T @ cams.c2w[t, :3, :3].T  # world direction per unit z
        o = cams.c2w[t, :3, 3]
        with np.errstate(divide="ignore"):
            s = (height - o[2]) / d[..., 2]
        out[t] = np.where((s > 0) & np.isfinite(s), np.minimum(s, 100.0), 100.0)
    return out


@pytest.fixture
def two_views():
    K = Intrinsics.from_fov(60.0, 24, 16).K
    ref = ViewCameras(24, 16, K, np.stack([look_at([0, -6, 2.0], [0, 0, 0], [0, 0, 1])] * 2))
    tgt = ViewCameras(24, 16, K, np.stack([look_at([x, -5, 2.5], [0, 0, 0], [0, 0, 1]) for x in (2.0, 3.0)]))
    return ref, tgt


def test_matches_a_per_pixel_float64_loop(two_views):
    ref, tgt = two_views
    td, rd = _plane_depth(tgt, 0.0), _plane_depth(ref, 0.0)
    rd[:, :5, :8] *= 0.5  # something in front of the ground in part of the reference: occlusion
    got = covisible_mask(td, tgt, rd, ref)
    want = _naive(td, tgt, rd, ref, 0.03)
    assert got.shape == (2, 16, 24)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.mean() < 1  # both outcomes occur, so the comparison says something


def test_a_view_sees_itself_but_not_through_a_wall(two_views):
    ref, _ = two_views
    d = _plane_depth(ref, 0.0)
    assert covisible_mask(d, ref, d, ref).all()
    assert not covisible_mask(d, ref, 0.5 * d, ref).any()  # everything hidden behind nearer surfaces


def test_regions_split_static_and_moving():
    masks = np.array([[[0, 1], [2, 0]]])
    covis = np.array([[[True, True], [False, False]]])
    r = synthetic_regions(masks, covis)
    assert r["moving"].tolist() == [[[False, True], [True, False]]]
    assert r["covisible_static"].tolist() == [[[True, False], [False, False]]]
    assert r["covisible_moving"].tolist() == [[[False, True], [False, False]]]
