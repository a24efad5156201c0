"""Weight-free pose estimation on videos rendered along known trajectories (tests/test_eval_scene.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.scene import render_preset, render_video

from mvt4g.camera import Intrinsics, preset_trajectory
from mvt4g.errors import CameraError
from mvt4g.eval.bundle_adjust import bundle_adjust
from mvt4g.eval.camera_metrics import camera_errors
from mvt4g.eval.inputs import MetricUnavailable
from mvt4g.eval.pose_estimation import estimate_poses
from mvt4g.eval.two_view import rotation_ransac, triangulate

FRAMES = 25


@pytest.fixture(scope="module")
def arc_left():
    """An arc-left video with a moving (rising) box, and its poses estimated once."""
    video, intr, c2w = render_preset("arc-left", FRAMES, moving=True)
    return video, intr, c2w, estimate_poses(video, intr)


@pytest.mark.slow
def test_arc_left_video_scores_near_zero_against_arc_left_and_large_against_arc_right(arc_left):
    _, _, _, est = arc_left
    assert est.complete and est.mode == "sfm"
    assert est.reprojection_px < 0.5
    left = camera_errors(est.c2w, preset_trajectory("arc-left", FRAMES), "mean")
    right = camera_errors(est.c2w, preset_trajectory("arc-right", FRAMES), "mean")
    # Measured: ~0.17 deg vs ~30 deg (the arcs end 60 deg apart).
    assert left.rot_err < 0.6
    assert right.rot_err > 25.0
    assert left.trans_err < 0.06
    assert right.trans_err > 0.4
    cc_left = camera_errors(est.c2w, preset_trajectory("arc-left", FRAMES), "camctrl")
    cc_right = camera_errors(est.c2w, preset_trajectory("arc-right", FRAMES), "camctrl")
    assert cc_left.cam_mc * 10 < cc_right.cam_mc


def test_frame_zero_is_the_identity_and_the_scale_convention_holds(arc_left):
    _, _, _, est = arc_left
    np.testing.assert_allclose(est.c2w[0], np.eye(4), atol=1e-12)
    assert np.linalg.norm(est.c2w[est.start_frame, :3, 3]) == pytest.approx(1.0, rel=1e-9)
    R = est.c2w[:, :3, :3]
    np.testing.assert_allclose(np.swapaxes(R, 1, 2) @ R, np.tile(np.eye(3), (FRAMES, 1, 1)), atol=1e-9)


@pytest.mark.slow
def test_pure_rotation_is_detected_and_measured():
    video, intr, c2w = render_preset("pan-left", 13)
    est = estimate_poses(video, intr)
    assert est.mode == "rotation-only" and est.complete
    assert np.all(est.c2w[:, :3, 3] == 0.0)
    assert camera_errors(est.c2w, c2w, "mean").rot_err < 0.2
    assert camera_errors(est.c2w, preset_trajectory("pan-right", 13), "mean").rot_err > 5.0


def test_a_still_camera_gets_identity_poses():
    video, intr = render_video(np.tile(np.eye(4), (4, 1, 1)), 120, 208)
    est = estimate_poses(video, intr)
    assert est.mode == "rotation-only" and est.complete
    np.testing.assert_allclose(est.c2w, np.tile(np.eye(4), (4, 1, 1)), atol=1e-9)


def test_featureless_frames_are_not_registered_and_metrics_refuse_them():
    video, intr = render_video(preset_trajectory("arc-left", 7), 160, 272)
    video[3] = 128  # a blank frame: nothing to match
    est = estimate_poses(video, intr)
    assert not est.registered[3]
    assert np.isnan(est.c2w[3]).all()
    assert est.registered[4:].all()  # tracks skip the blank frame
    with pytest.raises(MetricUnavailable, match=r"frames could not be estimated \(frames 3"):
        est.require_complete()
    with pytest.raises(CameraError, match="contains NaN"):
        camera_errors(est.c2w, preset_trajectory("arc-left", 7))


def test_intrinsics_of_another_size_are_refused():
    video = np.zeros((2, 48, 64, 3), np.uint8)
    with pytest.raises(CameraError, match="intrinsics are for 80x48 but the video is 64x48"):
        estimate_poses(video, Intrinsics.from_fov(60.0, 80, 48))


def test_bundle_adjustment_recovers_perturbed_cameras_exactly():
    """Noise-free synthetic observations: BA from perturbed cameras returns the truth (up to scale)."""
    rng = np.random.default_rng(0)
    K = Intrinsics.from_fov(60.0, 320, 240).K
    c2w = preset_trajectory("arc-left", 6)
    w2c = np.linalg.inv(c2w)[:, :3, :]
    pts = rng.uniform([-2, -1, 3], [2, 1, 6], (150, 3))
    f, p, xy = [], [], []
    for t in range(6):
        Xc = pts @ w2c[t, :, :3].T + w2c[t, :, 3]
        f.append(np.full(150, t))
        p.append(np.arange(150))
        xy.append(np.c_[K[0, 0] * Xc[:, 0] / Xc[:, 2] + K[0, 2], K[1, 1] * Xc[:, 1] / Xc[:, 2] + K[1, 2]])
    noisy = w2c.copy()
    noisy[1:, :, 3] += rng.normal(0, 0.02, (5, 3))
    from scipy.spatial.transform import Rotation

    noisy[1:, :, :3] = Rotation.from_rotvec(rng.normal(0, 0.01, (5, 3))).as_matrix() @ noisy[1:, :, :3]
    out, X = bundle_adjust(noisy, pts + rng.normal(0, 0.02, pts.shape), np.concatenate(f), np.concatenate(p),
                           np.concatenate(xy), K, iterations=30)  # fmt: skip
    scale = np.linalg.norm(w2c[5, :, 3]) / np.linalg.norm(out[5, :, 3])
    np.testing.assert_allclose(out[:, :, :3], w2c[:, :, :3], atol=1e-6)
    np.testing.assert_allclose(out[:, :, 3] * scale, w2c[:, :, 3], atol=1e-6)
    np.testing.assert_allclose(X * scale, pts, atol=1e-5)


def test_rotation_ransac_ignores_outliers_and_triangulation_is_exact():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(1)
    K = Intrinsics.from_fov(60.0, 320, 240).K
    R = Rotation.from_rotvec([0.02, -0.1, 0.03]).as_matrix()
    rays = np.c_[rng.uniform(-0.4, 0.4, (200, 2)), np.ones(200)]
    xa = rays[:, :2] * K[0, 0] + K[:2, 2]
    rb = rays @ R.T
    xb = rb[:, :2] / rb[:, 2:] * K[0, 0] + K[:2, 2]
    xb[:60] += rng.uniform(5, 30, (60, 2))  # 30 % moved points
    got, inliers = rotation_ransac(xa, xb, K, 1.0)
    np.testing.assert_allclose(got, R, atol=1e-9)
    assert not inliers[:60].any() and inliers[60:].all()
    X = rng.uniform([-1, -1, 3], [1, 1, 6], (20, 3))
    Pb = np.c_[R, [0.5, 0.1, -0.2]]
    na = X[:, :2] / X[:, 2:]
    xc = X @ R.T + Pb[:, 3]
    nb = xc[:, :2] / xc[:, 2:]
    np.testing.assert_allclose(triangulate(np.c_[np.eye(3), np.zeros(3)], Pb, na, nb), X, atol=1e-9)
