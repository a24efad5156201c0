"""PSNR, SSIM, masked variants and VBench flicker against scikit-image and float64 numpy derivations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mvt4g.errors import InputError
from mvt4g.eval import image_metrics as im
from mvt4g.eval.inputs import MetricUnavailable


def _pair(seed: int, frames: int = 3, h: int = 40, w: int = 56, noise: int = 25):
    rng = np.random.default_rng(seed)
    base = (rng.random((frames, h, w, 3)) * 255).astype(np.uint8)
    other = np.clip(base.astype(np.int64) + rng.integers(-noise, noise + 1, base.shape), 0, 255).astype(np.uint8)
    return base, other


def _sk_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1)  # fmt: skip


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(11, 40), w=st.integers(11, 40), noise=st.integers(1, 120))
def test_psnr_and_ssim_match_scikit_image(seed, h, w, noise):
    a, b = _pair(seed, 2, h, w, noise)
    want_psnr = [peak_signal_noise_ratio(b[t], a[t], data_range=255) for t in range(2)]
    want_ssim = [_sk_ssim(a[t], b[t]) for t in range(2)]
    np.testing.assert_allclose(im.psnr_per_frame(a, b), want_psnr, rtol=1e-12)
    np.testing.assert_allclose(im.ssim_per_frame(a, b), want_ssim, rtol=0, atol=1e-9)
    assert im.psnr(a, b) == pytest.approx(np.mean(want_psnr), rel=1e-12)
    assert im.ssim(a, b) == pytest.approx(np.mean(want_ssim), abs=1e-9)


def test_ground_truth_against_itself_scores_perfectly():
    a, _ = _pair(1)
    assert im.psnr(a, a) == math.inf
    assert np.all(np.isinf(im.psnr_per_frame(a, a)))
    assert im.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert im.psnr(a, a, mask=np.ones(a.shape[:3], bool)) == math.inf
    assert im.ssim(a, a, mask=np.ones(a.shape[1:3], bool)) == pytest.approx(1.0, abs=1e-12)


def test_one_identical_frame_makes_the_mean_infinite_not_capped():
    a, b = _pair(2)
    b[1] = a[1]
    per = im.psnr_per_frame(a, b)
    assert math.isinf(per[1]) and np.isfinite(per[[0, 2]]).all()
    assert im.psnr(a, b) == math.inf


def test_masked_psnr_is_the_mse_over_masked_pixels():
    a, b = _pair(3)
    rng = np.random.default_rng(3)
    mask = rng.random(a.shape[:3]) < 0.3
    want = []
    for t in range(a.shape[0]):
        d = (a[t].astype(np.float64) - b[t].astype(np.float64))[mask[t]]  # [N, 3]
        want.append(10 * np.log10(255.0**2 / np.mean(d**2)))
    np.testing.assert_allclose(im.psnr_per_frame(a, b, mask=mask), want, rtol=1e-12)
    # Pixels outside the mask do not matter at all.
    c = b.copy()
    c[~mask] = 0
    assert im.psnr(a, c, mask=mask) == pytest.approx(im.psnr(a, b, mask=mask), rel=1e-12)


def test_masked_ssim_averages_the_skimage_ssim_map_over_masked_interior_pixels():
    a, b = _pair(4, frames=2)
    mask = np.zeros(a.shape[:3], bool)
    mask[:, 3:30, 10:50] = True
    got = im.ssim_per_frame(a, b, mask=mask)
    for t in range(2):
        _, full = structural_similarity(a[t], b[t], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=255, channel_axis=-1, full=True)  # fmt: skip
        smap = full.mean(axis=-1)
        inner = np.zeros_like(mask[t])
        inner[5:-5, 5:-5] = True
        assert got[t] == pytest.approx(smap[mask[t] & inner].mean(), abs=1e-9)


def test_frames_with_an_empty_mask_are_left_out_and_all_empty_is_unavailable():
    a, b = _pair(5)
    mask = np.ones(a.shape[:3], bool)
    mask[1] = False
    per = im.psnr_per_frame(a, b, mask=mask)
    assert np.isnan(per[1])
    assert im.psnr(a, b, mask=mask) == pytest.approx(np.mean(per[[0, 2]]))
    assert np.isnan(im.ssim_per_frame(a, b, mask=mask)[1])
    with pytest.raises(MetricUnavailable, match="mask is empty"):
        im.psnr(a, b, mask=np.zeros(a.shape[:3], bool))


def test_temporal_flickering_matches_a_float64_derivation():
    rng = np.random.default_rng(6)
    v = (rng.random((6, 20, 30, 3)) * 255).astype(np.uint8)
    diffs = [np.abs(v[k + 1].astype(np.float64) - v[k].astype(np.float64)).mean() for k in range(5)]
    assert im.temporal_flickering(v) == pytest.approx((255.0 - np.mean(diffs)) / 255.0, rel=1e-12)
    still = np.repeat(v[:1], 4, axis=0)
    assert im.temporal_flickering(still) == 1.0
    blink = np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)] * 2)
    assert im.temporal_flickering(blink) == 0.0


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda a: im.psnr(a, a[:, :-1]), "is 56x40 but ground truth is 56x39"),
        (lambda a: im.ssim(a, a[:2]), "has 3 frames but ground truth has 2"),
        (lambda a: im.psnr(a.astype(np.float32), a), "must be uint8"),
        (lambda a: im.psnr(a[..., 0], a[..., 0]), "must be RGB frames"),
        (lambda a: im.ssim(a[:, :8, :8], a[:, :8, :8]), "at least 11x11"),
        (lambda a: im.psnr(a, a, mask=np.ones((5, 5), bool)), "mask must have shape"),
        (lambda a: im.temporal_flickering(a[:1]), "at least 2 frame"),
    ],
)
def test_bad_inputs_are_one_line_input_errors(call, needle):
    a, _ = _pair(7)
    with pytest.raises(InputError) as err:
        call(a)
    assert needle in str(err.value) and "\n" not in str(err.value)
