"""`--pose-estimator`: builtin, colmap (pycolmap) and plug-ins, on videos rendered along known trajectories."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_one_line_error
from helpers.scene import render_preset

from mvt4g.camera import preset_trajectory
from mvt4g.errors import InputError
from mvt4g.eval import pose_estimators
from mvt4g.eval.camera_metrics import camera_errors
from mvt4g.eval.inputs import MetricUnavailable

FRAMES = 13


@pytest.fixture(scope="module")
def arc_small():
    return render_preset("arc-left", FRAMES, moving=True, height=96, width=160)


def test_default_estimator_rotation_error_on_a_clip_with_exact_cameras(arc_small):
    # Threshold from benchmarks/camera.py: the default (builtin) scores 0.010-0.063 rad (summed over
    # 12 frames) on the 96x160 preset clips (0.062 on this one), so 0.1 leaves room for platform noise
    # while a wrong trajectory (arc-right) scores over 1 rad.
    video, intr, c2w = arc_small
    est = pose_estimators.resolve(pose_estimators.DEFAULT)(video, intr.K)
    assert est.complete
    assert camera_errors(est.c2w, c2w, "camctrl").rot_err < 0.1
    assert camera_errors(est.c2w, preset_trajectory("arc-right", FRAMES), "camctrl").rot_err > 1.0


@pytest.mark.slow
def test_colmap_registers_a_parallax_clip_and_follows_its_trajectory(arc_small, capfd):
    pytest.importorskip("pycolmap")
    video, intr, c2w = arc_small
    est = pose_estimators.resolve("colmap")(video, intr.K)
    assert capfd.readouterr() == ("", "")  # COLMAP's log is silenced: the core prints nothing
    assert est.mode == "colmap" and est.complete and est.points > 0
    np.testing.assert_allclose(est.c2w[0], np.eye(4), atol=1e-9)
    assert camera_errors(est.c2w, c2w, "camctrl").rot_err < 0.3  # benchmark: 0.126 on this clip
    assert camera_errors(est.c2w, preset_trajectory("arc-right", FRAMES), "camctrl").rot_err > 1.0


def _write_plugin(tmp_path, body: str):
    path = tmp_path / "estimator.py"
    path.write_text("import numpy as np\n\n" + body)
    return path


def test_plugin_poses_in_another_world_and_scale_are_re_expressed_from_frame_zero(tmp_path):
    # A stand-in "learned" estimator: the exact cameras, moved into another world and scaled by 7.
    c2w = preset_trajectory("arc-left", 6)
    np.save(tmp_path / "c2w.npy", c2w)
    path = _write_plugin(tmp_path, f"""
def estimate(video, K):
    c2w = np.load({str(tmp_path / "c2w.npy")!r})
    assert video.dtype == np.uint8 and K.shape == (3, 3)
    world = np.eye(4); world[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]; world[:3, 3] = [5, -2, 1]
    out = world @ c2w
    out[:, :3, 3] *= 7.0
    return out
""")
    video = np.random.default_rng(0).integers(0, 255, (6, 24, 32, 3), dtype=np.uint8)
    K = np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]])
    est = pose_estimators.resolve(f"{path}:estimate")(video, K)
    assert est.complete and est.mode == "plugin"
    errs = camera_errors(est.c2w, c2w, "camctrl")
    assert errs.rot_err < 1e-9 and errs.trans_err < 1e-9


def test_plugin_unregistered_frames_failures_and_bad_outputs(tmp_path):
    video = np.zeros((4, 24, 32, 3), np.uint8)
    K = np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]])
    path = _write_plugin(tmp_path, """
def partial(video, K):
    c2w = np.tile(np.eye(4), (len(video), 1, 1)); c2w[2] = np.nan
    return c2w
def flagged(video, K):
    return np.tile(np.eye(4), (len(video), 1, 1)), np.array([True, True, False, True])
def no_frame0(video, K):
    return np.tile(np.eye(4), (len(video), 1, 1)), np.array([False, True, True, True])
def wrong_shape(video, K):
    return np.eye(4)
def boom(video, K):
    raise RuntimeError("weights missing")
""")
    for name in ("partial", "flagged"):
        est = pose_estimators.resolve(f"{path}:{name}")(video, K)
        assert est.registered.tolist() == [True, True, False, True]
        with pytest.raises(MetricUnavailable, match="1 of 4 frames"):
            est.require_complete()
    with pytest.raises(MetricUnavailable, match="did not register frame 0"):
        pose_estimators.resolve(f"{path}:no_frame0")(video, K)
    with pytest.raises(InputError, match=r"shape \[4, 4\], expected \[4, 4, 4\]"):
        pose_estimators.resolve(f"{path}:wrong_shape")(video, K)
    with pytest.raises(MetricUnavailable, match="RuntimeError: weights missing"):
        pose_estimators.resolve(f"{path}:boom")(video, K)


def test_unknown_estimators_and_missing_plugins_are_refused(tmp_path):
    with pytest.raises(InputError, match="--pose-estimator must be builtin, colmap or MODULE:CALLABLE"):
        pose_estimators.resolve("sift")
    with pytest.raises(InputError, match="pose estimator plug-in file not found"):
        pose_estimators.resolve(f"{tmp_path / 'nope.py'}:estimate")
    path = _write_plugin(tmp_path, "x = 1\n")
    with pytest.raises(InputError, match="has no attribute 'estimate'"):
        pose_estimators.resolve(f"{path}:estimate")


def test_cli_refuses_a_bad_pose_estimator_before_any_work(cli, tmp_path):
    r = cli("eval", "--bench", "synthetic", "--data-root", tmp_path, "--copy-reference", "--pose-estimator", "nope")
    assert_one_line_error(r, "--pose-estimator must be")
