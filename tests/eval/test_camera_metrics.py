"""RotErr / TransErr / CamMC against a float64 derivation written independently here, plus invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from mvt4g.camera import preset_trajectory
from mvt4g.errors import CameraError, InputError
from mvt4g.eval.camera_metrics import camera_errors, rotation_angles


def _random_trajectory(rng: np.random.Generator, frames: int, spread: float = 2.0) -> np.ndarray:
    poses = np.tile(np.eye(4), (frames, 1, 1))
    poses[:, :3, :3] = Rotation.random(frames, random_state=int(rng.integers(1 << 31))).as_matrix()
    poses[:, :3, 3] = rng.normal(0.0, spread, (frames, 3))
    return poses


def _reference(est: np.ndarray, gt: np.ndarray, convention: str) -> tuple[float, float, float]:
    """Loop-by-loop derivation: relative to frame 0 with a general inverse, scale, compare."""
    e0, g0 = np.linalg.inv(est[0]), np.linalg.inv(gt[0])
    rel_e = [e0 @ p for p in est]
    rel_g = [g0 @ p for p in gt]
    ce = np.array([p[:3, 3] for p in rel_e])
    cg = np.array([p[:3, 3] for p in rel_g])
    cg_n = cg / max(np.linalg.norm(c) for c in cg)
    if convention == "camctrl":
        ce_s = ce / max(np.linalg.norm(c) for c in ce)
    else:
        s = float(np.dot(cg_n.ravel(), ce.ravel()) / np.dot(ce.ravel(), ce.ravel()))
        ce_s = ce * max(s, 0.0)
    rot, trans, mc = [], [], []
    for pe, pg, te, tg in zip(rel_e, rel_g, ce_s, cg_n):
        angle = Rotation.from_matrix(pg[:3, :3].T @ pe[:3, :3]).magnitude()
        rot.append(angle if convention == "camctrl" else np.degrees(angle))
        trans.append(np.sqrt(np.sum((te - tg) ** 2)))
        diff = np.hstack([pe[:3, :3] - pg[:3, :3], (te - tg)[:, None]])
        mc.append(np.sqrt(np.sum(diff**2)))
    if convention == "camctrl":
        return float(np.sum(rot)), float(np.sum(trans)), float(np.sum(mc))
    return float(np.mean(rot[1:])), float(np.mean(trans[1:])), float(np.mean(mc[1:]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000), frames=st.integers(2, 30), convention=st.sampled_from(["camctrl", "mean"]))
def test_matches_the_independent_derivation(seed, frames, convention):
    rng = np.random.default_rng(seed)
    est, gt = _random_trajectory(rng, frames), _random_trajectory(rng, frames)
    got = camera_errors(est, gt, convention)
    want = _reference(est, gt, convention)
    np.testing.assert_allclose([got.rot_err, got.trans_err, got.cam_mc], want, rtol=1e-9, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), scale=st.floats(0.01, 100.0), convention=st.sampled_from(["camctrl", "mean"]))
def test_world_frame_and_estimate_scale_do_not_matter(seed, scale, convention):
    rng = np.random.default_rng(seed)
    est, gt = _random_trajectory(rng, 8), _random_trajectory(rng, 8)
    base = camera_errors(est, gt, convention)
    world_a, world_b = _random_trajectory(rng, 2)
    moved_est = world_a[None] @ est
    moved_est[:, :3, 3] *= scale  # a different world and a different SfM scale
    moved_gt = world_b[None] @ gt
    again = camera_errors(moved_est, moved_gt, convention)
    np.testing.assert_allclose([again.rot_err, again.trans_err, again.cam_mc],
                               [base.rot_err, base.trans_err, base.cam_mc], rtol=1e-7, atol=1e-9)  # fmt: skip


@pytest.mark.parametrize("convention", ["camctrl", "mean"])
@pytest.mark.parametrize("preset", ["arc-left", "pan-left", "static"])
def test_a_trajectory_against_itself_scores_zero(preset, convention):
    c2w = preset_trajectory(preset, 21)
    got = camera_errors(c2w, c2w, convention)
    assert got.rot_err == pytest.approx(0.0, abs=1e-12)
    assert got.trans_err == pytest.approx(0.0, abs=1e-12)
    assert got.cam_mc == pytest.approx(0.0, abs=1e-12)


def test_arc_left_against_arc_right_is_large_and_has_the_right_units():
    left, right = preset_trajectory("arc-left", 21), preset_trajectory("arc-right", 21)
    mean = camera_errors(left, right, "mean")
    camctrl = camera_errors(left, right, "camctrl")
    # Each arc turns the camera by 30 deg in opposite directions: 60 deg apart at the end, 30 on average.
    assert mean.rot_err_per_frame[-1] == pytest.approx(60.0, abs=1e-6)
    assert mean.rot_err == pytest.approx(np.mean(np.linspace(0, 60, 21)[1:]), rel=1e-6)
    assert camctrl.rot_err == pytest.approx(np.radians(np.linspace(0, 60, 21)).sum(), rel=1e-6)
    assert mean.to_dict()["rot_unit"] == "deg" and camctrl.to_dict()["rot_unit"] == "rad"


def test_reversed_translation_is_not_flipped_into_agreement():
    gt = preset_trajectory("translate-left", 11)
    est = gt.copy()
    est[:, :3, 3] *= -1.0
    got = camera_errors(est, gt, "mean")
    assert got.scale_estimate == 0.0
    assert got.trans_err == pytest.approx(np.mean(np.linalg.norm(gt[1:, :3, 3], axis=1) / 1.0), rel=1e-9)


def test_pure_rotation_targets_are_documented_in_notes():
    gt = preset_trajectory("pan-left", 11)
    est = gt.copy()
    est[:, 0, 3] = np.linspace(0, 0.1, 11)  # a spurious sideways drift
    assert camera_errors(est, gt, "mean").trans_err == 0.0
    spurious = camera_errors(est, gt, "camctrl")
    assert spurious.trans_err > 1.0
    assert any("does not translate" in n for n in spurious.notes)


def test_rotation_angles_are_exact_near_zero_and_pi():
    small = Rotation.from_rotvec([[1e-9, 0, 0], [0, np.pi - 1e-7, 0]]).as_matrix()
    got = rotation_angles(np.tile(np.eye(3), (2, 1, 1)), small)
    np.testing.assert_allclose(got, [1e-9, np.pi - 1e-7], rtol=1e-6)


def test_bad_cameras_are_one_line_errors():
    gt = preset_trajectory("arc-left", 5)
    bad = gt.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(CameraError, match="estimated camera frame 3 contains NaN") as err:
        camera_errors(bad, gt)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="5 frames but the target trajectory has 4"):
        camera_errors(gt, gt[:4])
    with pytest.raises(InputError, match="unknown camera-metric convention"):
        camera_errors(gt, gt, "colmap")
    sheared = gt.copy()
    sheared[2, :3, :3] *= 1.5
    with pytest.raises(CameraError, match="not orthonormal"):
        camera_errors(gt, sheared)
