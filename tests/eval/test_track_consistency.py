"""Track consistency (mvt4g.eval.track_consistency) on exact renders: rotations and a plane seen while translating.

Ground truth is analytic: a camera turning in place sees the image move by the rotation
homography ``K R^T K^-1``; a plane ``z = d`` seen from a translated camera moves by the plane
homography ``K (R + t n^T / d) K^-1``. Renders by these maps are exactly consistent with
their cameras; shifting frames, claiming the wrong cameras or copying the reference are not.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.scene import make_texture

from mvt4g.camera import Intrinsics, invert_pose, preset_trajectory
from mvt4g.errors import InputError
from mvt4g.eval.inputs import MetricUnavailable
from mvt4g.eval.track_consistency import track_consistency

H, W, T = 120, 176, 7
INTR = Intrinsics.from_fov(60.0, W, H)
#: mvt4g pixels have centres at +0.5, OpenCV's at integers: conjugate homographies by this shift.
SHIFT = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    tex = make_texture(3, size=512)
    return (tex[100 : 100 + H, 50 : 50 + W] * 255).astype(np.uint8)


def warp(img: np.ndarray, Hm: np.ndarray) -> np.ndarray:
    return cv2.warpPerspective(img, SHIFT @ Hm @ np.linalg.inv(SHIFT), (W, H), flags=cv2.INTER_LINEAR)


def rotation_render(img: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """What a camera at the origin turned by c2w sees of an image at infinity (reference = identity)."""
    K = INTR.K
    return np.stack([warp(img, K @ p[:3, :3].T @ np.linalg.inv(K)) for p in c2w])


def plane_render(img: np.ndarray, c2w: np.ndarray, depth: float = 4.0) -> np.ndarray:
    """The reference image painted on the plane z = depth, seen from cameras c2w (reference = identity)."""
    K, n = INTR.K, np.array([0.0, 0.0, 1.0])
    out = []
    for p in c2w:
        w2c = invert_pose(p)
        R, t = w2c[:3, :3], w2c[:3, 3]
        out.append(warp(img, K @ (R + np.outer(t, n) / depth) @ np.linalg.inv(K)))
    return np.stack(out)


def still(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[None], T, axis=0)


IDENTITY = np.tile(np.eye(4), (T, 1, 1))


@pytest.mark.slow
def test_exact_rotation_render_is_fully_consistent_and_wrong_cameras_are_not(image):
    pan = preset_trajectory("pan-right", T)
    gen = rotation_render(image, pan)
    res = track_consistency(still(image), gen, INTR, IDENTITY, INTR, pan)
    assert res.linked >= 20 and res.anchor == 0
    assert res.consistency > 0.98 and res.error < 0.5
    assert res.threshold_px == pytest.approx(0.01 * np.hypot(H, W))
    assert np.isnan(res.per_frame_error[0]) and res.per_frame_checked[0] == 0
    assert 0 < res.tracked_fraction <= 1
    wrong = track_consistency(still(image), gen, INTR, IDENTITY, INTR, preset_trajectory("pan-left", T))
    assert wrong.consistency < 0.05 and wrong.error > 10 * res.error + 5


def test_content_that_drifts_halfway_is_caught(image):
    pan = preset_trajectory("tilt-up", T)
    gen = rotation_render(image, pan)
    gen[4:] = np.roll(gen[4:], 8, axis=2)  # the last 3 of 6 checked frames slide 8 px sideways
    res = track_consistency(still(image), gen, INTR, IDENTITY, INTR, pan)
    assert res.threshold_px < 8
    assert res.consistency == pytest.approx(0.5, abs=0.08)
    # Frames 1-3 agree (~0 px), frames 4-6 are off by the 8 px shift.
    assert np.nanmax(res.per_frame_error[1:4]) < 1.0
    np.testing.assert_allclose(res.per_frame_error[4:], 8.0, atol=1.0)
    assert res.error == pytest.approx(np.nanmean(res.per_frame_error), rel=1e-12)


@pytest.mark.slow
def test_translating_camera_uses_the_epipolar_geometry(image):
    move = preset_trajectory("arc-left", T)  # orbits (0, 0, 4), the plane's depth: rotation and translation
    gen = plane_render(image, move)
    res = track_consistency(still(image), gen, INTR, IDENTITY, INTR, move)
    assert res.consistency > 0.98 and res.error < 0.3
    copy = track_consistency(still(image), still(image), INTR, IDENTITY, INTR, move)
    assert copy.consistency < 0.8 and copy.error > 10 * res.error


def test_documented_blind_spot_pure_translation(image):
    """Under a pure translation every pixel lies on its own epipolar line (x^T [t]x x = 0), so a
    copy of the reference passes: the module docstring says so, and the camera metrics catch it."""
    move = preset_trajectory("zoom-in", T)
    copy = track_consistency(still(image), still(image), INTR, IDENTITY, INTR, move)
    assert copy.consistency == 1.0 and copy.error < 1e-6


def test_bad_inputs_and_unavailable(image):
    pan = preset_trajectory("pan-right", T)
    gen = rotation_render(image, pan)
    with pytest.raises(InputError, match="7 frames but the generated video has 6"):
        track_consistency(still(image), gen[:6], INTR, IDENTITY, INTR, pan)
    with pytest.raises(InputError, match="generated cameras have 5 frames"):
        track_consistency(still(image), gen, INTR, IDENTITY, INTR, pan[:5])
    with pytest.raises(InputError, match="anchor frame must be in"):
        track_consistency(still(image), gen, INTR, IDENTITY, INTR, pan, anchor=7)
    blank = np.zeros_like(gen)
    with pytest.raises(MetricUnavailable, match="0 of 0 SIFT matches at frame 0"):
        track_consistency(still(image), blank, INTR, IDENTITY, INTR, pan)
