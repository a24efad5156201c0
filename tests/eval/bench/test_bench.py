"""Benchmark definitions of `mvt4g eval` (davis, iphone, synthetic) on tiny layouts built in tmp_path.

The layout builders here are shared with tests/test_eval_cli.py. Real frames come from
../shared/data/real (tests skip cleanly when it is absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.eval_data import (
    DY_H,
    DY_W,
    bear_frames,
    dycheck_camera,
    write_davis,
    write_dycheck,
)

from mvt4g.camera import (
    Intrinsics,
    look_at,
    preset_trajectory,
    write_cameras_json,
)
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import RECAMMASTER_CAMERAS
from mvt4g.errors import InputError
from mvt4g.eval.bench import BenchItem, open_bench, parse_names
from mvt4g.eval.bench.davis import ASSUMED_STATIC_NOTE
from mvt4g.io.video import read_video, write_video
from mvt4g.sample.reference import ReferenceOptions, source_intrinsics

# ----------------------------------------------------------------------------- layout builders












def write_clip(root: Path, views: dict[str, np.ndarray], cameras: dict[str, ViewCameras], reference: str | None = None) -> Path:
    """A clip directory (videos/, cameras/cameras.json, meta.json)."""
    (root / "videos").mkdir(parents=True)
    (root / "cameras").mkdir()
    for name, video in views.items():
        write_video(root / "videos" / f"{name}.mp4", video, fps=10, crf=0)
    write_cameras_json(root / "cameras" / "cameras.json", cameras)
    meta = {"fps": 10, "frames": len(next(iter(views.values())))}
    if reference:
        meta["reference_view"] = reference
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def noise_video(seed: int, frames: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 4, width // 4, 3)).astype(np.float32), (width, height))
    return np.stack([(np.roll(base, 2 * t, axis=1) * 255).astype(np.uint8) for t in range(frames)])


# ----------------------------------------------------------------------------- DAVIS


@pytest.fixture
def davis_root(tmp_path, shared_data):
    frames = bear_frames(shared_data, 7, 96, 160)
    ids = np.zeros(frames.shape[:3], np.uint8)
    ids[:, 30:70, 40:90] = 1
    return write_davis(tmp_path / "DAVIS", {"bear": frames, "cows": frames[:5]}, masks={"bear": ids}, val=["bear"])


def test_davis_items_are_sequences_times_recammaster_presets(davis_root):
    bench = open_bench("davis", davis_root)
    presets = [RECAMMASTER_CAMERAS[f"cam{i:02d}"] for i in range(1, 11)]
    assert bench.keys() == [("bear", p) for p in presets]  # the val split only
    items = bench.load("bear")
    assert [it.trajectory for it in items] == presets
    item = items[presets.index("arc-left")]
    assert item.reference.shape == (7, 96, 160, 3) and item.ground_truth is None and item.reference_cameras is None
    assert ASSUMED_STATIC_NOTE in item.notes
    # Background (object id 0) is what the epipolar proxy may use.
    assert item.static_mask.shape == (7, 96, 160) and not item.static_mask[:, 40, 50].any() and item.static_mask[:, 5, 5].all()
    intr, _ = source_intrinsics(160, 96, ReferenceOptions(frames=1, height=1, width=1))
    np.testing.assert_allclose(item.target_cameras.K, np.repeat(intr.K[None], 7, 0))
    np.testing.assert_allclose(item.target_cameras.c2w, preset_trajectory("arc-left", 7))
    static = item.reference_cameras_or_static()
    np.testing.assert_allclose(static.c2w, np.tile(np.eye(4), (7, 1, 1)))
    np.testing.assert_allclose(static.K[0], intr.K)


def test_davis_fit_rebuilds_the_preset_for_the_scored_length(davis_root):
    item = open_bench("davis", davis_root, trajectories=["pan-right"]).load("bear")[0]
    fitted = item.fit(5)
    # The whole 20-degree pan over 5 frames, not the first 5 poses of a 7-frame pan.
    np.testing.assert_allclose(fitted.target_cameras.c2w, preset_trajectory("pan-right", 5), atol=1e-12)
    assert not np.allclose(fitted.target_cameras.c2w, item.target_cameras.c2w[:5])
    np.testing.assert_array_equal(fitted.reference, item.reference[:5])
    resized = item.fit(5, (48, 64))
    assert resized.reference.shape == (5, 48, 64, 3) and resized.static_mask.shape == (5, 48, 64)
    assert resized.target_cameras.width == 64 and resized.target_cameras.height == 48
    assert any("cover-resized from 160x96 to 64x48" in n for n in resized.notes)
    with pytest.raises(InputError, match="needs 8 frames but the reference has 7"):
        item.fit(8)


def test_davis_sequences_and_trajectory_files(davis_root, tmp_path):
    from mvt4g.camera import trajectory_json

    path = tmp_path / "my path.json"
    path.write_text(json.dumps(trajectory_json("mine", preset_trajectory("zoom-in", 11))))
    bench = open_bench("davis", davis_root, sequences=["cows", "bear"], trajectories=["tilt-up", str(path)])
    assert bench.keys() == [("cows", "tilt-up"), ("cows", "my_path"), ("bear", "tilt-up"), ("bear", "my_path")]
    cows = bench.load("cows")
    assert cows[0].static_mask is None and any("no background mask" in n for n in cows[0].notes)
    # A file's poses are resampled to the scored length.
    np.testing.assert_allclose(cows[1].fit(5).target_cameras.c2w[-1], preset_trajectory("zoom-in", 11)[-1], atol=1e-9)
    assert bench.load("bear", max_frames=3)[0].reference.shape[0] == 3


def test_davis_bad_layouts_say_what_is_missing(davis_root, tmp_path):
    with pytest.raises(InputError, match="JPEGImages/480p is missing"):
        open_bench("davis", tmp_path)
    with pytest.raises(InputError, match="no DAVIS sequence 'dog'"):
        open_bench("davis", davis_root, sequences=["dog"])
    with pytest.raises(InputError, match="unknown trajectory preset 'spin'"):
        open_bench("davis", davis_root, trajectories=["spin"])
    (davis_root / "ImageSets" / "2017" / "val.txt").write_text("bear\nhorse\n")
    with pytest.raises(InputError, match="sequence 'horse' has no frame folder JPEGImages/480p/horse"):
        open_bench("davis", davis_root)
    (davis_root / "ImageSets" / "2017" / "val.txt").unlink()
    with pytest.raises(InputError, match="ImageSets/2017/val.txt is missing"):
        open_bench("davis", davis_root)
    with pytest.raises(InputError, match="--fov is for the davis benchmark"):
        open_bench("synthetic", davis_root, fov_deg=60.0)
    with pytest.raises(InputError, match="unknown benchmark 'kitti'"):
        open_bench("kitti", davis_root)


# ----------------------------------------------------------------------------- iPhone


def test_iphone_items_reference_camera_0_targets_1_and_2(tmp_path, shared_data):
    frames = write_dycheck(tmp_path / "iphone" / "teddy", shared_data)
    for root in (tmp_path / "iphone", tmp_path / "iphone" / "teddy"):  # a folder of sequences, or one sequence
        bench = open_bench("iphone", root)
        assert bench.keys() == [("teddy", "cam1"), ("teddy", "cam2")]
    cam1, cam2 = bench.load("teddy")
    np.testing.assert_array_equal(cam1.reference, frames[0][:4])  # longest run of camera 1: times 0..3
    np.testing.assert_array_equal(cam1.ground_truth, frames[1][:4])
    np.testing.assert_array_equal(cam2.reference, frames[0][1:6])
    np.testing.assert_array_equal(cam2.ground_truth, frames[2][1:6])
    assert cam2.masks.shape == (5, DY_H, DY_W) and cam2.masks[:, : DY_H // 2].all() and not cam2.masks[:, DY_H // 2 :].any()
    for t, time_id in enumerate(range(1, 6)):
        intr, c2w = dycheck_camera(2, time_id)
        np.testing.assert_allclose(cam2.target_cameras.K[t], intr.resized(DY_W, DY_H).K, atol=1e-9)
        np.testing.assert_allclose(cam2.target_cameras.c2w[t], c2w, atol=1e-9)
        np.testing.assert_allclose(cam2.reference_cameras.c2w[t], dycheck_camera(0, time_id)[1], atol=1e-9)
    assert cam2.target_size == (DY_H, DY_W) and cam2.frames == 5
    assert any("time ids 1-5 at 2x" in n for n in cam2.notes)
    only = open_bench("iphone", tmp_path / "iphone", trajectories=["cam2"])
    assert only.keys() == [("teddy", "cam2")] and [it.trajectory for it in only.load("teddy", 3)] == ["cam2"]


def test_iphone_without_covisible_scores_without_masks_and_bad_layouts(tmp_path, shared_data):
    write_dycheck(tmp_path / "seq", shared_data, covisible=False)
    item = open_bench("iphone", tmp_path / "seq").load("seq")[0]
    assert item.masks is None and any("no covisible/ folder" in n for n in item.notes)
    with pytest.raises(InputError, match="no iPhone target camera 'cam7'"):
        open_bench("iphone", tmp_path / "seq", trajectories=["cam7"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DyCheck sequence here"):
        open_bench("iphone", tmp_path / "empty")
    (tmp_path / "seq" / "camera" / "1_00002.json").unlink()
    with pytest.raises(InputError, match="1_00002.json"):
        open_bench("iphone", tmp_path / "seq").load("seq")
    for f in (tmp_path / "seq" / "splits").iterdir():
        f.unlink()
    with pytest.raises(InputError, match="neither splits/val.json nor dataset.json is present"):
        open_bench("iphone", tmp_path / "seq")


# ----------------------------------------------------------------------------- synthetic


def _orbit(frames: int, phase: float, width: int = 64, height: int = 48) -> ViewCameras:
    angles = phase + np.linspace(0.0, 0.3, frames)
    c2w = np.stack([look_at([3 * np.sin(a), -0.5, -3 * np.cos(a)], [0.0, 0.0, 0.0]) for a in angles])
    return ViewCameras(width, height, Intrinsics.from_fov(60.0, width, height).K, c2w)


def test_synthetic_items_reference_view_vs_every_other_view(tmp_path):
    views = {f"cam0{i}": noise_video(i, 5, 48, 64) for i in (1, 2, 3)}
    cams = {name: _orbit(5, 0.4 * i) for i, name in enumerate(views)}
    write_clip(tmp_path / "clips" / "a", views, cams, reference="cam02")
    write_clip(tmp_path / "clips" / "b", views, cams)
    bench = open_bench("synthetic", tmp_path / "clips")
    assert bench.keys() == [("a", "cam01"), ("a", "cam03"), ("b", "cam02"), ("b", "cam03")]
    a1, a3 = bench.load("a")
    clip = tmp_path / "clips" / "a" / "videos"
    np.testing.assert_array_equal(a1.reference, read_video(clip / "cam02.mp4").frames)
    np.testing.assert_array_equal(a3.ground_truth, read_video(clip / "cam03.mp4").frames)
    np.testing.assert_allclose(a3.target_cameras.c2w, cams["cam03"].c2w)
    np.testing.assert_allclose(a3.reference_cameras.c2w, cams["cam02"].c2w)
    assert a3.masks is None and a3.static_mask is None
    assert open_bench("synthetic", tmp_path / "clips" / "b").keys() == [("b", "cam02"), ("b", "cam03")]
    # Cover-resizing keeps cameras and pixels consistent (Intrinsics.cover_crop, as generate does).
    small = a3.fit(4, (24, 24))
    assert small.ground_truth.shape == (4, 24, 24, 3)
    want = cams["cam03"].intrinsics(0).cover_crop(24, 24).K
    np.testing.assert_allclose(small.target_cameras.K[0], want)
    with pytest.raises(InputError, match="no clip 'c'"):
        open_bench("synthetic", tmp_path / "clips", sequences=["c"])
    with pytest.raises(InputError, match="no clip directory here"):
        open_bench("synthetic", tmp_path)


def test_bench_item_fit_refuses_short_ground_truth():
    cams = _orbit(4, 0.0)
    item = BenchItem("s", "t", noise_video(0, 4, 48, 64), cams, cams, ground_truth=noise_video(1, 3, 48, 64))
    assert item.frames == 3
    with pytest.raises(InputError, match="needs 4 frames but the ground truth has 3"):
        item.fit(4)
    with pytest.raises(InputError, match="at least 2 frames"):
        item.fit(1)


def test_parse_names():
    assert parse_names("a, b", "sequences") == ["a", "b"]
    assert parse_names(None, "traj") is None
    with pytest.raises(InputError, match="without empty entries"):
        parse_names("a,,b", "traj")
    with pytest.raises(InputError, match="lists a more than once"):
        parse_names("a,b,a", "sequences")
