"""Tracks for a whole dataset (mvt4g.tracks.dataset, mvt4g.tracks.quality, ``mvt4g tracks DATASET``).

The dataset: three tiny synthetic clips (2 views, 5 frames, 32x32) in MultiCamVideo-like nested
folders (``train/f24_aperture5/sceneN``), without their exact tracks so there is work to do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error

from mvt4g.errors import InputError
from mvt4g.fs.atomic import is_temp_name
from mvt4g.tracks.format import read_tracks

SCENES = ("scene1", "scene2", "scene3")
GEOMETRY = ("--method", "geometry", "--grid", "3x3")


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory) -> Path:
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    root = tmp_path_factory.mktemp("tracks_dataset")
    paths = synthesize(SynthSettings(views=2, frames=5, height=32, width=32), root / "synth", len(SCENES))
    group = root / "dataset" / "train" / "f24_aperture5"
    group.mkdir(parents=True)
    for path, name in zip(paths, SCENES, strict=True):
        (path / "tracks.npz").unlink()
        shutil.move(path, group / name)
    # scene3's cameras as MultiCamVideo ships them: poses only, the focal length from f24_aperture5.
    from mvt4g.camera.converters import recammaster_extrinsics_dict
    from mvt4g.camera.rig import read_cameras_json

    cams = group / "scene3" / "cameras"
    poses = {view: c.c2w for view, c in read_cameras_json(cams / "cameras.json").items()}
    (cams / "camera_extrinsics.json").write_text(json.dumps(recammaster_extrinsics_dict(poses)))
    (cams / "cameras.json").unlink()
    return root / "dataset"


@pytest.fixture
def dataset(synth_dataset, tmp_path) -> Path:
    """A fresh copy per test (tests write into it)."""
    return Path(shutil.copytree(synth_dataset, tmp_path / "dataset"))


def clip_dir(dataset: Path, name: str) -> Path:
    return dataset / "train" / "f24_aperture5" / name


def truncate_view(clip: Path, view: str = "cam02", frames: int = 3) -> None:
    from mvt4g.io.video import read_video, write_video

    path = clip / "videos" / f"{view}.mp4"
    write_video(path, read_video(path).frames[:frames], 10.0, overwrite=True)


# ---- finding clips --------------------------------------------------------------------------


def test_find_clips_searches_any_depth_and_skips_hidden_names(dataset, tmp_path):
    from mvt4g.tracks.dataset import dataset_clips, find_clips

    group = dataset / "train" / "f24_aperture5"
    # A killed writer's temporary and a hidden folder hold clip-like folders: never clips.
    shutil.copytree(group / "scene1", group / ".scene9.abc123-4242-x.tmp")
    shutil.copytree(group / "scene1", dataset / ".cache" / "scene1")
    # A clip is not searched further (its own sub-folders are never clips).
    (group / "scene1" / "videos" / "nested" / "videos").mkdir(parents=True)
    assert find_clips(dataset) == [group / name for name in SCENES]
    assert find_clips(group / "scene2") == [group / "scene2"]  # a clip is its own dataset
    # Clips and datasets mixed: each clip once, in order; named clips are marked as such.
    found = dataset_clips([group / "scene3", dataset])
    assert found == [(group / "scene3", False), (group / "scene1", True), (group / "scene2", True)]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="no clip folders"):
        find_clips(tmp_path / "empty")
    with pytest.raises(InputError, match="no such"):
        find_clips(tmp_path / "missing")


# ---- quality signals ------------------------------------------------------------------------


def test_quality_signals_by_hand():
    from mvt4g.tracks.quality import format_quality_table, quality_of, summarize

    V, T, N = 2, 4, 2
    visible = np.zeros((V, T, N), bool)
    queries = np.array([[0, 0, 5, 5], [1, 2, 5, 5]], np.float32)
    visible[0, :, 0] = [True, True, True, False]  # track 0: 2 of its 3 other frames in its own view
    visible[1, 3, 0] = True  # ... and seen in view 1 once
    visible[1, 2, 1] = True  # track 1: its query only, never in view 0
    q = quality_of(visible, queries)
    assert q == {"visible": 5 / 16, "own_view": 0.3333, "cross_view": 0.125, "associated": 0.5}
    assert quality_of(np.ones((1, 3, 2), bool), np.zeros((2, 4)))["cross_view"] is None  # one view: nothing to say

    rows = [{"clip": "a", "method": "flow", "status": "written", "tracks": 2, "quality": q,
             "flow": {"association_rate": 0.25}},
            {"clip": "b", "status": "failed", "error": "b: no cameras"}]  # fmt: skip
    summary = summarize(rows)
    assert (summary["clips"], summary["written"], summary["failed"]) == (2, 1, 1)
    assert summary["mean"]["associated"] == 0.5 and summary["mean"]["association_rate"] == 0.25
    table = format_quality_table(rows).splitlines()
    assert table[0].split() == ["clip", "method", "status", "tracks", "visible", "own", "view", "cross", "view", "associated"]
    assert table[2].split() == ["a", "flow", "written", "2", "31.2%", "33.3%", "12.5%", "50.0%"]
    assert table[3].split()[:3] == ["b", "-", "failed"] and table[-1].split()[:3] == ["mean", "1", "ok"]


# ---- the command ----------------------------------------------------------------------------


def test_dataset_is_tracked_then_a_rerun_skips_every_clip(cli, dataset):
    r = cli("tracks", dataset, *GEOMETRY)
    assert r.code == 0, r.stderr
    assert (clip_dir(dataset, "scene3") / "cameras" / "camera_extrinsics.json").is_file()  # MultiCamVideo cameras
    for name in SCENES:
        ts = read_tracks(clip_dir(dataset, name) / "tracks.npz")
        assert ts.method == "geometry" and ts.tracks.shape[:3] == (2, 5, 18)
    lines = r.stderr.splitlines()
    assert lines[0].startswith("3 track file(s) written, 0 skipped")
    assert lines[1].split()[:4] == ["clip", "method", "status", "tracks"]
    assert [ln.split()[0] for ln in lines[3:6]] == list(SCENES)  # named from the folder the clips share
    assert lines[-1].split()[:3] == ["mean", "3", "ok"]

    again = cli("tracks", dataset, *GEOMETRY, "--json")
    assert again.code == 0, again.stderr
    out = again.json()
    assert set(out) == {"clips", "summary", "failed", "workers", "seconds"}
    assert [row["status"] for row in out["clips"]] == ["current"] * 3 and out["failed"] == []
    summary = out["summary"]
    assert {k: summary[k] for k in ("clips", "written", "current", "exact", "failed")} == {
        "clips": 3, "written": 0, "current": 3, "exact": 0, "failed": 0}  # fmt: skip
    assert set(summary["mean"]) == {"visible", "own_view", "cross_view", "associated"}
    row = out["clips"][0]
    assert set(row["quality"]) == {"visible", "own_view", "cross_view", "associated"}
    assert (row["views"], row["frames"], row["tracks"]) == (2, 5, 18)
    assert 0 < row["quality"]["visible"] <= 1


def test_auto_on_a_synth_dataset_keeps_its_exact_tracks_and_reports_them(cli, tmp_path):
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    synthesize(SynthSettings(views=2, frames=5, height=32, width=32, points=20), tmp_path / "synth", 2)
    r = cli("tracks", tmp_path / "synth", "--json")
    assert r.code == 0, r.stderr
    rows = r.json()["clips"]
    assert [row["status"] for row in rows] == ["exact", "exact"]
    assert all(row["tracks"] == 20 and row["quality"]["visible"] > 0 for row in rows)


def test_bad_clips_are_reported_and_skipped_the_others_done(cli, dataset):
    no_cams = clip_dir(dataset, "scene2")
    shutil.rmtree(no_cams / "cameras")
    short = clip_dir(dataset, "scene3")
    truncate_view(short)
    r = cli("tracks", dataset, *GEOMETRY, "--json")
    assert r.code == 1, r.stderr
    out = r.json()
    assert [row["status"] for row in out["clips"]] == ["written", "failed", "failed"]
    assert out["failed"] == [str(no_cams), str(short)] and out["summary"]["failed"] == 2
    assert (clip_dir(dataset, "scene1") / "tracks.npz").is_file()
    assert not (no_cams / "tracks.npz").exists() and not (short / "tracks.npz").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3, r.stderr  # one line per bad clip, then the run's
    assert str(no_cams) in lines[0] and "no cameras" in lines[0]
    assert str(short) in lines[1] and "views differ" in lines[1]
    assert lines[2].startswith("mvt4g: error: 2 of 3 clip(s) failed:")
    assert str(no_cams) in lines[2] and str(short) in lines[2]
    # The bad clips are found while planning, before any work: the good clip's row says so.
    assert out["clips"][1]["stage"] == "plan" and out["clips"][2]["stage"] == "plan"

    # Named directly, a bad clip still stops the run before any work (exit 2, one line).
    assert_one_line_error(cli("tracks", no_cams, *GEOMETRY), "no cameras")


def test_options_of_a_dataset_run_are_checked(cli, dataset, tmp_path):
    assert_one_line_error(cli("tracks", dataset, "--out", tmp_path / "x.npz"), "--out takes one clip")
    assert_one_line_error(cli("tracks", dataset, "--workers", "0"), "--workers")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("tracks", tmp_path / "empty"), "no clip folders")
    assert not (tmp_path / "x.npz").exists()


def test_core_failures_at_run_time_become_rows(dataset):
    from mvt4g.tracks import TrackOptions, plan_dataset, run_track_jobs

    plan = plan_dataset([dataset], TrackOptions(method="geometry", grid=(2, 2)))
    assert [j.status for j in plan.jobs] == ["todo"] * 3 and plan.bad == [] and plan.scanned
    # A depth file that the plan does not read (it checks presence only) breaks one clip's run.
    np.savez(clip_dir(dataset, "scene2") / "depth" / "cam01.npz", depth=np.ones((5, 32, 33), np.float32))
    seen = []
    rows = plan.rows(run_track_jobs(plan.jobs, on_done=lambda row: seen.append(row["clip"])))
    assert [r["status"] for r in rows] == ["written", "failed", "written"]
    assert rows[1]["stage"] == "run" and "depth has shape" in rows[1]["error"] and rows[1]["exit_code"] == 2
    assert sorted(seen) == sorted(r["clip"] for r in rows)
    with pytest.raises(InputError, match="depth has shape"):  # without keep_going, the error itself
        run_track_jobs(plan_dataset([clip_dir(dataset, "scene2")], plan.jobs[0].options).jobs, keep_going=False)


# ---- worker processes -----------------------------------------------------------------------


@pytest.mark.slow
def test_workers_give_the_same_tracks_as_one(cli, dataset, tmp_path):
    other = Path(shutil.copytree(dataset, tmp_path / "other"))
    args = ("--method", "flow", "--grid", "3x3")
    one = cli("tracks", dataset, *args, "--json")
    two = cli("tracks", other, *args, "--workers", "2", "--json")
    assert one.code == 0 and two.code == 0, (one.stderr, two.stderr)
    assert two.json()["workers"] == 2
    for name in SCENES:
        a, b = read_tracks(clip_dir(dataset, name) / "tracks.npz"), read_tracks(clip_dir(other, name) / "tracks.npz")
        np.testing.assert_array_equal(a.tracks, b.tracks)
        np.testing.assert_array_equal(a.visible, b.visible)
    drop = ("clip", "out", "seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in one.json()["clips"]] == [
        {k: v for k, v in r.items() if k not in drop} for r in two.json()["clips"]
    ]
    # A broken clip in a worker is reported like any other.
    np.savez(clip_dir(other, "scene2") / "depth" / "cam01.npz", depth=np.ones((5, 32, 33), np.float32))
    r = cli("tracks", other, "--method", "geometry", "--grid", "2x2", "--workers", "2", "--overwrite", "--json")
    assert r.code == 1 and [row["status"] for row in r.json()["clips"]] == ["written", "failed", "written"]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MVT4G_DEBUG": "0"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["SIGTERM-process", "SIGTERM-process-group", "ctrl-c"],
)
def test_stopped_with_workers_leaves_complete_track_files(synth_dataset, tmp_path, sig, group):
    """A real signal once a clip is written: SIGTERM to the command or (like timeout or a job
    scheduler) to its whole process group, or Ctrl-C (SIGINT to the group)."""
    group_dir = tmp_path / "dataset" / "train" / "f24_aperture5"
    for i in range(8):  # enough clips that the run is still going when the signal lands
        shutil.copytree(synth_dataset / "train" / "f24_aperture5" / SCENES[i % 3], group_dir / f"scene{i:02d}")
    cmd = [sys.executable, "-m", "mvt4g", "tracks", str(tmp_path / "dataset"), "--method", "flow", "--grid", "3x3",
           "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(group_dir.glob("*/tracks.npz")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), stderr
    assert "Traceback" not in stderr
    if sig == signal.SIGTERM:
        assert stderr.strip().splitlines()[-1] == "mvt4g: error: stopped by SIGTERM"
    time.sleep(0.5)
    assert [p for p in tmp_path.rglob("*") if is_temp_name(p.name)] == []
    written = sorted(group_dir.glob("*/tracks.npz"))
    assert 0 < len(written) < 8
    for path in written:
        read_tracks(path)
