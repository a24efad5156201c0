"""Inputs of a generation: reference frame/size policy and cameras, trajectories, query points."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory
from mvt4g.camera.trajectory_files import trajectory_json
from mvt4g.errors import InputError
from mvt4g.io.video import write_video
from mvt4g.sample.queries import (
    grid_queries,
    latent_tracks_to_video,
    load_query_points,
    to_latent_queries,
)
from mvt4g.sample.reference import ReferenceOptions, plan_reference, read_reference
from mvt4g.sample.targets import target_cameras, trajectory_targets


@pytest.fixture
def short_video(tmp_path):
    """A 10-frame 64x48 video whose frame t is filled with value 20 t (frame order is visible)."""
    frames = np.zeros((10, 48, 64, 3), np.uint8) + (np.arange(10) * 20).astype(np.uint8)[:, None, None, None]
    return write_video(tmp_path / "short.mp4", frames, fps=12)


def test_frame_policy_trim_pad_error(short_video):
    opts = ReferenceOptions(frames=9, height=32, width=32)
    plan = plan_reference(short_video, opts)
    assert plan.frames == 9 and plan.frame_message == "trimmed 10 -> 9 frames (kept the first 9)"
    ref = read_reference(plan, opts)
    assert ref.frames.shape == (9, 32, 32, 3) and ref.fps == pytest.approx(12)
    assert np.abs(ref.frames[:, 16, 16, 0].astype(int) - np.arange(9) * 20).max() <= 3  # first 9, in order
    assert ref.report["size"]["message"] == "resized 64x48 -> 43x32, centre-cropped to 32x32 at x=5, y=0"
    with pytest.raises(InputError, match="reference too short: 10 frames, fewer than the 13 requested"):
        plan_reference(short_video, ReferenceOptions(frames=13, height=32, width=32))
    pad = ReferenceOptions(13, 32, 32, frame_policy="pad")
    padded = read_reference(plan_reference(short_video, pad), pad)
    assert padded.num_frames == 13 and np.array_equal(padded.frames[9:], np.repeat(padded.frames[9:10], 4, 0))
    assert padded.report["frames"]["action"] == "padded"
    trim = ReferenceOptions(17, 32, 32, frame_policy="trim")
    assert plan_reference(short_video, trim).frames == 9
    assert np.array_equal(read_reference(plan_reference(short_video, trim), trim).cameras.c2w, np.tile(np.eye(4), (9, 1, 1)))


def test_too_short_and_unreadable_references(tmp_path):
    write_video(tmp_path / "four.mp4", np.zeros((4, 16, 16, 3), np.uint8), fps=5)
    with pytest.raises(InputError, match="at least 5 frames"):
        plan_reference(tmp_path / "four.mp4", ReferenceOptions(9, 16, 16, frame_policy="pad"))
    (tmp_path / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(InputError, match="fake.mp4"):
        plan_reference(tmp_path / "fake.mp4", ReferenceOptions(9, 16, 16))


def test_intrinsics_default_fov_focal_follow_the_crop(short_video):
    # Default: 24 mm on a 23.76 mm sensor across the INPUT's 64 px, then the cover crop to 32x32.
    ref = read_reference(plan_reference(short_video, o := ReferenceOptions(9, 32, 32)), o)
    expected = Intrinsics.from_focal_mm(24.0, 64, 48).cover_crop(32, 32)
    assert np.allclose(ref.cameras.K[0], expected.K)
    assert "default focal 24 mm" in ref.report["camera"]["intrinsics_source"]
    ref = read_reference(plan_reference(short_video, o := ReferenceOptions(9, 32, 32, fov_deg=90.0)), o)
    # 90 deg across 64 px: fx = 32 px at the input; the crop scales by 32/48.
    assert ref.cameras.K[0, 0, 0] == pytest.approx(32 * 43 / 64)
    with pytest.raises(InputError, match="not both"):
        ReferenceOptions(9, 32, 32, fov_deg=60, focal_mm=24)


def test_reference_camera_file_is_indexed_like_the_frames(short_video, tmp_path):
    moving = preset_trajectory("pan-left", 10)  # one pose per INPUT frame
    path = tmp_path / "refcam.json"
    path.write_text(json.dumps(trajectory_json("refcam", moving)))
    opts = ReferenceOptions(9, 32, 32, camera_file=str(path))
    ref = read_reference(plan_reference(short_video, opts), opts)
    assert np.allclose(ref.cameras.c2w, moving[:9])
    assert ref.report["camera"]["motion"] == f"from {path}"
    # Target trajectories start at the reference's first pose.
    tgt = target_cameras(ref.cameras, preset_trajectory("zoom-in", 9))
    assert np.allclose(tgt.c2w, moving[0] @ preset_trajectory("zoom-in", 9))
    with pytest.raises(InputError, match="no such reference camera file"):
        plan_reference(short_video, ReferenceOptions(9, 32, 32, camera_file=str(tmp_path / "missing.json")))


def test_trajectory_targets(tmp_path, shared_data):
    trajs = trajectory_targets(["arc-left,zoom-in", "pan-right"])
    assert [t.name for t in trajs] == ["arc-left", "zoom-in", "pan-right"]
    assert np.allclose(trajs[0].poses(17)[0], preset_trajectory("arc-left", 17))
    with pytest.raises(InputError) as err:
        trajectory_targets(["arc-lft"])
    assert all(name in str(err.value) for name in PRESET_NAMES)
    with pytest.raises(InputError, match="share output names"):
        trajectory_targets(["arc-left", "arc-left"])
    with pytest.raises(InputError, match="no such trajectory file"):
        trajectory_targets(["missing.json"])
    f = tmp_path / "my path.json"
    f.write_text(json.dumps(trajectory_json("x", preset_trajectory("tilt-up", 81))))
    (t,) = trajectory_targets([str(f)])
    poses, note = t.poses(17)
    assert t.name == "my_path" and poses.shape == (17, 4, 4) and "resampled to 17" in note
    assert np.allclose(poses[-1], preset_trajectory("tilt-up", 81)[-1])
    ext = shared_data / "recammaster_example" / "camera_extrinsics.json"
    (t,) = trajectory_targets([str(ext)], camera="cam09")
    assert t.name == "camera_extrinsics-cam09" and t.file_poses.shape == (81, 4, 4)
    with pytest.raises(InputError, match="--camera"):
        trajectory_targets(["arc-left"], camera="cam09")


def test_query_points(tmp_path):
    q = load_query_points("grid", height=32, width=48, frames=9, token_stride=4)
    assert q.shape == (8 * 12, 4) and np.allclose(q[0], [0, 0, 2, 2]) and np.allclose(q[-1], [0, 0, 46, 30])
    assert np.allclose(load_query_points("grid:2x3", height=32, width=48, frames=9, token_stride=4), grid_queries(2, 3, 32, 48))
    (tmp_path / "q.txt").write_text("# view frame x y\n1, 4, 10, 11\n0 8 1.5 2.5\n")
    assert np.allclose(load_query_points(str(tmp_path / "q.txt"), height=32, width=48, frames=9, token_stride=4),
                       [[1, 4, 10, 11], [0, 8, 1.5, 2.5]])  # fmt: skip
    np.save(tmp_path / "q.npy", np.array([[3.0, 4.0]]))
    assert np.allclose(load_query_points(str(tmp_path / "q.npy"), height=32, width=48, frames=9, token_stride=4), [[0, 0, 3, 4]])
    (tmp_path / "q.json").write_text("[[2, 5, 6]]")
    assert np.allclose(load_query_points(str(tmp_path / "q.json"), height=32, width=48, frames=9, token_stride=4), [[0, 2, 5, 6]])
    for text, needle in (("0 9 1 1", "frame outside"), ("2 0 1 1", "view must be"), ("0 0 49 1", "outside the 48x32"), ("1 2 3 4 5", "N rows")):
        (tmp_path / "bad.txt").write_text(text)
        with pytest.raises(InputError, match=needle):
            load_query_points(str(tmp_path / "bad.txt"), height=32, width=48, frames=9, token_stride=4)
    with pytest.raises(InputError, match="no such query-point file"):
        load_query_points("gird:3x3", height=32, width=48, frames=9, token_stride=4)


def test_latent_query_snapping():
    q = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 2, 1, 1], [1, 3, 1, 1], [1, 6, 1, 1], [0, 16, 1, 1]], np.float32)
    latent, snapped = to_latent_queries(q, 4)
    assert latent[:, 1].tolist() == [0, 0, 1, 1, 2, 4]
    assert snapped[:, 1].tolist() == [0, 0, 4, 4, 8, 16]
    assert np.array_equal(latent[:, [0, 2, 3]], q[:, [0, 2, 3]])


@settings(max_examples=25, deadline=None)
@given(latent=st.integers(1, 6), n=st.integers(1, 5), tf=st.sampled_from([1, 2, 4]), seed=st.integers(0, 99))
def test_latent_tracks_to_video_matches_a_naive_loop(latent, n, tf, seed):
    rng = np.random.default_rng(seed)
    coords = rng.normal(size=(2, latent, n, 2)) * 10
    vis = rng.random((2, latent, n)) > 0.5
    frames = tf * (latent - 1) + 1
    tracks, visible = latent_tracks_to_video(coords, vis, frames, tf)
    for t in range(frames):
        j, r = divmod(t, tf)
        nxt = min(j + 1, latent - 1)
        w = r / tf
        assert np.allclose(tracks[:, t], (1 - w) * coords[:, j] + w * coords[:, nxt], atol=1e-4)
        assert np.array_equal(visible[:, t], vis[:, nxt] if w > 0.5 else vis[:, j])


@pytest.fixture(scope="module")
def synth_clip(tmp_path_factory):
    from mvt4g.synth import SynthSettings, synthesize

    out = tmp_path_factory.mktemp("synth_targets")
    return synthesize(SynthSettings(views=3, frames=5, height=16, width=24, points=8), out, 1)[0]


def test_target_cameras_are_absolute_in_the_reference_world(synth_clip, tmp_path):
    """--target-cameras FILE:VIEW places the target exactly where the clip has it relative to the
    reference: the pair the model sees equals the clip's own (reference, target) cameras."""
    from mvt4g.camera.converters import recammaster_extrinsics_dict
    from mvt4g.camera.pose import relative_to
    from mvt4g.io.clip import read_clip
    from mvt4g.model.conditioning import pair_cameras
    from mvt4g.sample.reference import PreparedReference
    from mvt4g.sample.targets import camera_targets

    clip = read_clip(synth_clip)
    cams = synth_clip / "cameras" / "cameras.json"
    opts = ReferenceOptions(5, 16, 24, camera_file=f"{cams}:cam01")
    ref = read_reference(plan_reference(clip.videos["cam01"], opts), opts)
    targets = camera_targets([f"{cams}:cam02", f"{cams}:cam03"])
    assert [t.name for t in targets] == ["cam02", "cam03"]
    for view, target in zip(("cam02", "cam03"), targets, strict=True):
        cameras, c2w, note = target.cameras_for(ref)
        assert note is None
        expected = relative_to(clip.cameras[view].c2w, clip.cameras["cam01"].c2w[0])  # float64, independent
        np.testing.assert_allclose(c2w, expected, atol=1e-9)
        np.testing.assert_allclose(cameras.K, clip.cameras[view].K, atol=1e-9)
        got = pair_cameras(ref.cameras, cameras, (16, 24))
        want = pair_cameras(clip.cameras["cam01"], clip.cameras[view], (16, 24))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.c2w, w.c2w, atol=1e-9)
            np.testing.assert_allclose(g.K, w.K, atol=1e-9)
        # A trajectory file of the same view (re-based to its own frame 0) is a different camera.
        assert not np.allclose(relative_to(clip.cameras[view].c2w, clip.cameras[view].c2w[0]), expected, atol=1e-3)
    # The same from a PreparedReference of the clip itself (absolute cameras, world = identity).
    direct, _, _ = targets[0].cameras_for(PreparedReference.from_clip(clip, "cam01"))
    np.testing.assert_allclose(direct.c2w, clip.cameras["cam02"].c2w, atol=1e-9)

    # camera_extrinsics.json (no intrinsics): poses in that file's world, the reference's K.
    extr = tmp_path / "camera_extrinsics.json"
    extr.write_text(json.dumps(recammaster_extrinsics_dict({v: clip.cameras[v].c2w for v in ("cam01", "cam02")})))
    opts = ReferenceOptions(5, 16, 24, camera_file=f"{extr}:cam01")
    ref = read_reference(plan_reference(clip.videos["cam01"], opts), opts)
    [target] = camera_targets([f"{extr}:cam02"])
    cameras, c2w, _ = target.cameras_for(ref)
    np.testing.assert_allclose(c2w, relative_to(clip.cameras["cam02"].c2w, clip.cameras["cam01"].c2w[0]), atol=2e-4)
    np.testing.assert_allclose(cameras.K, np.repeat(ref.cameras.K[:1], 5, axis=0))

    # Bad input: an unknown view, a repeated name, no reference world.
    with pytest.raises(InputError, match="no view 'cam09'"):
        camera_targets([f"{cams}:cam09"])
    with pytest.raises(InputError, match="share output names: cam02"):
        camera_targets([f"{cams}:cam02", f"{extr}:cam02"])
    static = ReferenceOptions(5, 16, 24)
    with pytest.raises(InputError, match="needs --ref-cameras"):
        target.cameras_for(read_reference(plan_reference(clip.videos["cam01"], static), static))
