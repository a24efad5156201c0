"""Weight-free pixel metrics: PSNR, SSIM (plain and masked) and VBench temporal flickering.

All functions take uint8 RGB videos ``[T, H, W, 3]`` (a single ``[H, W, 3]`` image is a
one-frame video) and compute in float64.

PSNR
    Per frame ``10 log10(255^2 / MSE)`` with the MSE over all pixels and channels; the video
    value is the mean of the per-frame values (the usual novel-view-synthesis convention).
    Identical frames have ``MSE = 0`` and PSNR ``math.inf``, so a video with an identical frame
    averages to ``inf``: the true value (reports print it as ``inf``, never a capped number). Masked PSNR takes the MSE over the
    masked pixels (all three channels) of each frame, as DyCheck's mPSNR does; a frame whose
    mask is empty has no value and is left out of the mean.

SSIM
    Wang et al. 2004 with a Gaussian window of 11x11 taps, sigma 1.5 (``cv2.getGaussianKernel``,
    the same weights as ``scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5)``), K1 = 0.01,
    K2 = 0.03, L = 255, population (not sample) covariances, each RGB channel separately. The
    frame value is the mean of the SSIM map over the channels and over the pixels at least 5
    pixels from the border (where the window lies inside the image), exactly what
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)`` returns. The video value is
    the mean over frames. Masked SSIM averages the same map over the masked interior pixels.

Temporal flickering (VBench)
    ``(255 - mean_k mean|frame_{k+1} - frame_k|) / 255`` over all consecutive frame pairs of
    the decoded video (the mean absolute difference is over pixels and channels). 1 means no
    change between frames at all.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from mvt4g.errors import InputError
from mvt4g.eval.inputs import (
    MetricUnavailable,
    check_mask,
    check_video,
    check_video_pair,
)

DATA_RANGE = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Pixels at the border that the SSIM mean leaves out (half the window).
SSIM_BORDER = (SSIM_WINDOW - 1) // 2

METRIC_INFO: dict[str, dict[str, str]] = {
    "psnr": {
        "source": "standard; per-frame 10*log10(255^2/MSE), mean over frames",
        "settings": "data range 255, MSE over all pixels and RGB channels; identical frames give inf",
    },
    "ssim": {
        "source": "Wang et al. 2004; matches skimage structural_similarity(gaussian_weights=True)",
        "settings": "Gaussian window 11x11 sigma 1.5, K1 0.01, K2 0.03, L 255, population covariance, "
        "per RGB channel, mean over the interior (5 px border left out), mean over frames",
    },
    "masked_psnr": {
        "source": "DyCheck (Gao et al. 2022) mPSNR convention",
        "settings": "MSE over masked pixels only; frames with an empty mask left out",
    },
    "masked_ssim": {
        "source": "DyCheck (Gao et al. 2022) mSSIM convention",
        "settings": "SSIM map as for ssim, averaged over masked interior pixels",
    },
    "temporal_flickering": {
        "source": "VBench (Huang et al. 2024), temporal flickering dimension",
        "settings": "(255 - mean over consecutive pairs of mean |f[k+1] - f[k]|) / 255, all decoded frames",
    },
}


# ----------------------------------------------------------------------------- PSNR


def psnr_per_frame(pred: object, target: object, mask: object | None = None) -> np.ndarray:
    """PSNR of every frame, float64 ``[T]`` (``inf`` for identical frames).

    With ``mask`` (``[T, H, W]`` or ``[H, W]``, nonzero = scored) the MSE is over the masked
    pixels; frames with an empty mask get ``nan`` (no value).
    """
    a, b = check_video_pair(pred, target)
    out = np.empty(a.shape[0])
    m = None if mask is None else check_mask(mask, *a.shape[:3])
    for t in range(a.shape[0]):
        sq = (a[t].astype(np.float64) - b[t].astype(np.float64)) ** 2
        if m is None:
            mse = sq.mean()
        else:
            count = int(m[t].sum())
            if count == 0:
                out[t] = math.nan
                continue
            mse = sq[m[t]].mean()
        out[t] = math.inf if mse == 0 else 10.0 * math.log10(DATA_RANGE**2 / mse)
    return out


def psnr(pred: object, target: object, mask: object | None = None) -> float:
    """Video PSNR: the mean of :func:`psnr_per_frame` over frames that have a value."""
    return _mean_of_valid(psnr_per_frame(pred, target, mask), "PSNR")


# ----------------------------------------------------------------------------- SSIM


def _gaussian_blur(img: np.ndarray) -> np.ndarray:
    # The border mode never reaches the pixels SSIM keeps (they are >= 5 px inside).
    return cv2.GaussianBlur(img, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, sigmaY=SSIM_SIGMA,
                            borderType=cv2.BORDER_REFLECT)  # fmt: skip


def ssim_map(pred_frame: np.ndarray, target_frame: np.ndarray) -> np.ndarray:
    """SSIM map of one frame pair ``[H, W, 3]`` uint8 -> float64 ``[H, W, 3]`` (per channel).

    Values within :data:`SSIM_BORDER` pixels of the border use reflected pixels; the frame
    scores below leave them out.
    """
    x = pred_frame.astype(np.float64)
    y = target_frame.astype(np.float64)
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)
    var_x = _gaussian_blur(x * x) - mu_x * mu_x
    var_y = _gaussian_blur(y * y) - mu_y * mu_y
    cov = _gaussian_blur(x * y) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim_per_frame(pred: object, target: object, mask: object | None = None) -> np.ndarray:
    """SSIM of every frame, float64 ``[T]`` (1 for identical frames).

    With ``mask`` the SSIM map is averaged over masked pixels inside the border; frames with
    no such pixel get ``nan``.
    """
    a, b = check_video_pair(pred, target)
    if min(a.shape[1:3]) < SSIM_WINDOW:
        raise InputError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {a.shape[2]}x{a.shape[1]}")
    m = None if mask is None else check_mask(mask, *a.shape[:3])
    inner = np.s_[SSIM_BORDER : a.shape[1] - SSIM_BORDER, SSIM_BORDER : a.shape[2] - SSIM_BORDER]
    out = np.empty(a.shape[0])
    for t in range(a.shape[0]):
        smap = ssim_map(a[t], b[t]).mean(axis=-1)[inner]
        if m is None:
            out[t] = smap.mean()
        else:
            keep = m[t][inner]
            out[t] = smap[keep].mean() if keep.any() else math.nan
    return out


def ssim(pred: object, target: object, mask: object | None = None) -> float:
    """Video SSIM: the mean of :func:`ssim_per_frame` over frames that have a value."""
    return _mean_of_valid(ssim_per_frame(pred, target, mask), "SSIM")


# ----------------------------------------------------------------------------- flicker


def frame_differences(video: object) -> np.ndarray:
    """Mean absolute difference of each consecutive frame pair, float64 ``[T - 1]`` (0-255 scale)."""
    v = check_video(video, min_frames=2)
    out = np.empty(v.shape[0] - 1)
    for k in range(v.shape[0] - 1):
        out[k] = cv2.absdiff(v[k + 1], v[k]).mean(dtype=np.float64)
    return out


def temporal_flickering(video: object) -> float:
    """VBench temporal flickering score in ``[0, 1]`` (1 = no change between frames)."""
    return float((DATA_RANGE - frame_differences(video).mean()) / DATA_RANGE)


def _mean_of_valid(values: np.ndarray, name: str) -> float:
    valid = values[~np.isnan(values)]
    if valid.size == 0:
        raise MetricUnavailable(f"{name}: the mask is empty in every frame, nothing to score")
    return float(valid.mean())
