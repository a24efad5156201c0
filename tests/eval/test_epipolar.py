"""The epipolar geometric-consistency proxy: exact formulas, correct vs wrong cameras, homography fallback."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.scene import render_video
from scipy.optimize import minimize

from mvt4g.camera import Intrinsics, look_at, preset_trajectory
from mvt4g.errors import CameraError, InputError
from mvt4g.eval.epipolar import (
    epipolar_error,
    relative_geometry,
    sampson_distance,
    transfer_distance,
)
from mvt4g.eval.inputs import MetricUnavailable

FRAMES = 7
SCORED = [2, 4, 6]


@pytest.fixture(scope="module")
def views():
    """Reference along translate-left and generated along arc-left, same dynamic scene (moving box)."""
    ref_c2w = preset_trajectory("translate-left", FRAMES)
    gen_c2w = preset_trajectory("arc-left", FRAMES)
    ref, intr = render_video(ref_c2w, 200, 352, moving=True)
    gen, _ = render_video(gen_c2w, 200, 352, moving=True)
    return ref, gen, intr, ref_c2w, gen_c2w


def _project(K, c2w, X):
    w2c = np.linalg.inv(c2w)
    Xc = X @ w2c[:3, :3].T + w2c[:3, 3]
    return np.c_[K[0, 0] * Xc[:, 0] / Xc[:, 2] + K[0, 2], K[1, 1] * Xc[:, 1] / Xc[:, 2] + K[1, 2]]


def test_sampson_distance_is_zero_for_true_matches_and_matches_the_geometric_distance():
    rng = np.random.default_rng(0)
    K = Intrinsics.from_fov(60.0, 320, 240).K
    ref_c2w = np.eye(4)
    gen_c2w = look_at([0.8, -0.2, 0.3], [0.0, 0.0, 4.0])
    X = rng.uniform([-1.5, -1, 3], [1.5, 1, 6], (40, 3))
    xr, xg = _project(K, ref_c2w, X), _project(K, gen_c2w, X)
    model, F = relative_geometry(K, ref_c2w, K, gen_c2w)
    assert model == "fundamental"
    assert np.abs(sampson_distance(F, xr, xg)).max() < 1e-9
    # Perturb the matches; the Sampson distance is the first-order version of the smallest total
    # image displacement that makes them consistent: compare with that minimum found numerically.
    xg_noisy = xg + rng.normal(0, 1.5, xg.shape)
    got = sampson_distance(F, xr, xg_noisy)
    for i in range(8):

        def constraint(d, i=i):
            a = np.r_[xr[i] + d[:2], 1.0]
            b = np.r_[xg_noisy[i] + d[2:], 1.0]
            return b @ F @ a

        best = minimize(lambda d: d @ d, np.zeros(4), constraints=[{"type": "eq", "fun": constraint}], method="SLSQP",
                        options={"ftol": 1e-14, "maxiter": 200})  # fmt: skip
        assert got[i] == pytest.approx(np.sqrt(best.fun), rel=2e-3, abs=1e-6)


def test_transfer_distance_matches_a_direct_computation():
    rng = np.random.default_rng(1)
    H = np.array([[1.01, 0.02, 3.0], [-0.01, 0.99, -2.0], [1e-5, 2e-5, 1.0]])
    xr = rng.uniform(0, 300, (10, 2))
    xg = rng.uniform(0, 300, (10, 2))
    Hi = np.linalg.inv(H)
    want = []
    for a, b in zip(xr, xg):
        fa = H @ np.r_[a, 1.0]
        fb = Hi @ np.r_[b, 1.0]
        want.append((np.hypot(*(fa[:2] / fa[2] - b)) + np.hypot(*(fb[:2] / fb[2] - a))) / 2)
    np.testing.assert_allclose(transfer_distance(H, xr, xg), want, rtol=1e-12)


def test_correct_cameras_score_near_zero_and_wrong_ones_large(views):
    ref, gen, intr, ref_c2w, gen_c2w = views
    right = epipolar_error(ref, gen, intr, ref_c2w, intr, gen_c2w, frames=SCORED)
    wrong = epipolar_error(ref, gen, intr, ref_c2w, intr, preset_trajectory("arc-right", FRAMES), frames=SCORED)
    assert right.models[2] == "fundamental" and right.frames_scored == 3
    assert np.isnan(right.per_frame[[0, 1, 3, 5]]).all()
    # Measured ~0.15 px (SIFT localisation) vs several px.
    assert right.value < 0.5
    assert wrong.value > 5 * right.value and wrong.value > 1.5
    assert right.to_dict()["unit"] == "px"


def test_a_video_against_itself_scores_zero(views):
    ref, _, intr, ref_c2w, _ = views
    got = epipolar_error(ref, ref, intr, ref_c2w, intr, ref_c2w, frames=[3])
    assert got.models[3] == "homography"  # the same camera: zero baseline
    assert got.value == pytest.approx(0.0, abs=1e-6)


def test_zero_baseline_uses_the_rotation_homography():
    ref_c2w = preset_trajectory("static", 5)
    gen_c2w = preset_trajectory("pan-left", 5)
    ref, intr = render_video(ref_c2w, 160, 272)
    gen, _ = render_video(gen_c2w, 160, 272)
    right = epipolar_error(ref, gen, intr, ref_c2w, intr, gen_c2w, frames=[2, 4])
    wrong = epipolar_error(ref, gen, intr, ref_c2w, intr, preset_trajectory("pan-right", 5), frames=[2, 4])
    assert set(right.models) == {"", "homography"}
    assert right.value < 1.0 and wrong.value > 20.0


def test_static_mask_limits_matches_to_the_masked_reference_pixels(views):
    ref, gen, intr, ref_c2w, gen_c2w = views
    mask = np.zeros(ref.shape[:3], bool)
    mask[:, :, : ref.shape[2] // 2] = True
    full = epipolar_error(ref, gen, intr, ref_c2w, intr, gen_c2w, frames=[4])
    half = epipolar_error(ref, gen, intr, ref_c2w, intr, gen_c2w, frames=[4], static_mask=mask)
    assert 0 < half.matches[4] < full.matches[4]
    assert half.value < 0.5


def test_bad_inputs(views):
    ref, gen, intr, ref_c2w, gen_c2w = views
    with pytest.raises(InputError, match="reference video has 7 frames but the generated video has 6"):
        epipolar_error(ref, gen[:6], intr, ref_c2w, intr, gen_c2w)
    nan_cam = gen_c2w.copy()
    nan_cam[2, 1, 3] = np.nan
    with pytest.raises(CameraError, match="generated camera frame 2 contains NaN"):
        epipolar_error(ref, gen, intr, ref_c2w, intr, nan_cam)
    with pytest.raises(InputError, match=r"frames to score must be indices in \[0, 6\]"):
        epipolar_error(ref, gen, intr, ref_c2w, intr, gen_c2w, frames=[7])
    blank = np.full_like(gen, 90)
    with pytest.raises(MetricUnavailable, match="no frame has 20 SIFT matches"):
        epipolar_error(ref, blank, intr, ref_c2w, intr, gen_c2w, frames=[1])
