"""`mvt4g tracks` (compute, score, show), plug-in trackers and bad input (mvt4g.cli.tracks)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error

from mvt4g.tracks.format import TrackSet, read_tracks, write_tracks


@pytest.fixture(scope="module")
def planar_clip(tmp_path_factory) -> Path:
    """A two-view clip of a real image on a plane, with depth and exact tracks (method 'planar')."""
    from mvt4g.io.video import read_video
    from mvt4g.tracks.planar import planar_scene, write_planar_clip
    from mvt4g.tracks.queries import grid_queries

    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "bear.mp4"
    if not data.is_file():
        pytest.skip("../shared/data is not available")
    scene = planar_scene(read_video(data, max_frames=1).frames[0], views=2, frames=5, height=48, width=80, seed=4)
    root = tmp_path_factory.mktemp("clips") / "planar"
    return write_planar_clip(scene, root, grid_queries(48, 80, [0, 1], [0, 2], (4, 6)))


@pytest.fixture
def clip(planar_clip, tmp_path) -> Path:
    """A fresh copy per test (tests write into it)."""
    return Path(shutil.copytree(planar_clip, tmp_path / "clip"))


def test_auto_leaves_exact_tracks_alone(cli, clip):
    before = (clip / "tracks.npz").read_bytes()
    r = cli("tracks", clip, "--json")
    assert r.code == 0, r.stderr
    row = r.json()["clips"][0]
    assert row["status"] == "exact" and "nothing to do" in row["reason"]
    assert (clip / "tracks.npz").read_bytes() == before


def test_geometry_then_score_is_exact_and_resumable(cli, clip, tmp_path):
    out = tmp_path / "geo.npz"
    args = ("tracks", "--method", "geometry", clip, "--queries-from", clip / "tracks.npz", "--out", out, "--json")
    r = cli(*args)  # options before the clip: still the default compute command
    assert r.code == 0, r.stderr
    assert r.json()["clips"][0]["status"] == "written"
    s = cli("tracks", "score", out, clip / "tracks.npz", "--json")
    assert s.code == 0, s.stderr
    scores = s.json()["scores"]
    assert scores["all"]["delta_avg"] == 1.0 and scores["all"]["occlusion_accuracy"] == 1.0
    again = cli(*args)
    assert again.json()["clips"][0]["status"] == "current"
    human = cli("tracks", "score", out, clip / "tracks.npz", "--mode", "strided")
    assert "cross_view" in human.stderr and human.stdout == ""


@pytest.mark.slow
def test_auto_picks_geometry_with_depth_and_flow_without(cli, clip, tmp_path):
    r = cli("tracks", "compute", clip, "--grid", "3x4", "--out", tmp_path / "a.npz", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["clips"][0]["method"] == "geometry"
    shutil.rmtree(clip / "depth")
    r = cli("tracks", clip, "--queries", "20", "--query-frames", "all", "--out", tmp_path / "b.npz", "--json")
    assert r.code == 0, r.stderr
    row = r.json()["clips"][0]
    assert row["method"] == "flow" and row["tracks"] == 20
    ts = read_tracks(tmp_path / "b.npz")
    assert ts.method == "flow" and ts.views == ["cam01", "cam02"] and set(ts.query_frames) <= set(range(5))


def test_existing_output_is_refused_without_overwrite(cli, clip):
    r = cli("tracks", clip, "--method", "geometry")
    assert_one_line_error(r, "tracks.npz", "--overwrite")
    r = cli("tracks", clip, "--method", "geometry", "--overwrite", "--grid", "2x3", "--json")
    assert r.code == 0 and read_tracks(clip / "tracks.npz").method == "geometry"


def test_score_refuses_other_queries_clearly(cli, clip, tmp_path):
    cli("tracks", clip, "--method", "geometry", "--grid", "2x2", "--out", tmp_path / "p.npz")
    r = cli("tracks", "score", tmp_path / "p.npz", clip / "tracks.npz")
    assert_one_line_error(r, "--queries-from")


def test_show_draws_views_side_by_side(cli, clip, tmp_path):
    from mvt4g.io.video import probe_video

    out = tmp_path / "overlay.mp4"
    r = cli("tracks", "show", clip, "--out", out, "--json")
    assert r.code == 0, r.stderr
    info = probe_video(out)
    assert (info.frames, info.height, info.width) == (5, 48, 160)
    assert_one_line_error(cli("tracks", "show", clip, "--out", out), "--overwrite")


_PLUGIN = '''
import numpy as np

def still(videos, cameras, queries):
    """Every point stays where it was asked, visible in its own view only."""
    V = len(videos)
    T = next(iter(videos.values())).shape[0]
    N = len(queries)
    tracks = np.zeros((V, T, N, 2), np.float32)
    visible = np.zeros((V, T, N), bool)
    for n, (v, t, x, y) in enumerate(queries):
        tracks[int(v), :, n] = (x, y)
        visible[int(v), :, n] = True
    return tracks, visible

def wrong_shape(videos, cameras, queries):
    return np.zeros((1, 1, 1, 2)), np.zeros((1, 1, 1), bool)

def broken(videos, cameras, queries):
    raise RuntimeError("model weights not found")
'''


def test_plugin_tracker(cli, clip, tmp_path):
    plugin = tmp_path / "my_tracker.py"
    plugin.write_text(_PLUGIN)
    out = tmp_path / "plug.npz"
    r = cli("tracks", clip, "--tracker", f"{plugin}:still", "--queries-from", clip / "tracks.npz", "--out", out, "--json")
    assert r.code == 0, r.stderr
    ts = read_tracks(out)
    assert ts.method == f"plugin:{plugin}:still"
    q = ts.queries
    np.testing.assert_array_equal(ts.tracks[q[:, 0].astype(int), 3, np.arange(len(q))], q[:, 2:4])
    assert not ts.visible[1 - q[:, 0].astype(int), 3, np.arange(len(q))].any()
    assert_one_line_error(cli("tracks", clip, "--tracker", f"{plugin}:wrong_shape", "--out", tmp_path / "w.npz"), "shape")
    broken = cli("tracks", clip, "--tracker", f"{plugin}:broken", "--out", tmp_path / "b.npz")
    assert broken.code == 1 and "model weights not found" in broken.stderr
    assert not (tmp_path / "w.npz").exists() and not (tmp_path / "b.npz").exists()


def test_plugin_that_does_not_import(cli, clip, tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("import a_module_that_is_not_installed\n")
    assert_one_line_error(cli("tracks", clip, "--tracker", f"{bad}:track", "--out", tmp_path / "x.npz"), "cannot import")
    assert_one_line_error(cli("tracks", clip, "--tracker", "no_such_module_xyz:track"), "no_such_module_xyz")
    assert_one_line_error(cli("tracks", clip, "--tracker", "justaname"), "MODULE:CALLABLE")
    assert not (tmp_path / "x.npz").exists()


def test_bad_clips_write_nothing(cli, clip, tmp_path):
    no_cams = Path(shutil.copytree(clip, tmp_path / "no_cams"))
    shutil.rmtree(no_cams / "cameras")
    assert_one_line_error(cli("tracks", no_cams, "--method", "flow", "--out", tmp_path / "o.npz"), "no cameras")

    short = Path(shutil.copytree(clip, tmp_path / "short"))
    from mvt4g.io.video import read_video, write_video

    frames = read_video(short / "videos" / "cam02.mp4").frames
    write_video(short / "videos" / "cam02.mp4", frames[:3], 10.0, overwrite=True)
    assert_one_line_error(cli("tracks", short, "--method", "flow", "--out", tmp_path / "o.npz"), "views differ")

    bad_depth = Path(shutil.copytree(clip, tmp_path / "bad_depth"))
    np.savez(bad_depth / "depth" / "cam01.npz", depth=np.ones((5, 48, 81), np.float32))
    assert_one_line_error(cli("tracks", bad_depth, "--method", "geometry", "--out", tmp_path / "o.npz"), "depth has shape")
    assert not (tmp_path / "o.npz").exists()

    # Two clips, the second bad: nothing is written for the first either.
    good_out = clip / "tracks.npz"
    before = good_out.stat().st_mtime_ns
    r = cli("tracks", clip, no_cams, "--method", "geometry", "--overwrite")
    assert_one_line_error(r, "no cameras")
    assert good_out.stat().st_mtime_ns == before


def test_bad_track_files(cli, clip, tmp_path):
    with open(tmp_path / "keys.npz", "wb") as fh:
        np.savez(fh, tracks=np.zeros((2, 5, 3, 2), np.float32))
    assert_one_line_error(cli("tracks", "score", tmp_path / "keys.npz", clip / "tracks.npz"), "missing")
    ts = read_tracks(clip / "tracks.npz")
    with open(tmp_path / "nan.npz", "wb") as fh:
        np.savez(fh, tracks=np.full_like(ts.tracks, np.nan), visible=ts.visible, queries=ts.queries,
                 image_size=np.array(ts.image_size), method=np.array("x"), format_version=np.array("1"))
    assert_one_line_error(cli("tracks", "score", tmp_path / "nan.npz", clip / "tracks.npz"), "NaN")
    assert_one_line_error(cli("tracks", clip, "--queries-from", tmp_path / "nan.npz", "--out", tmp_path / "o.npz"), "NaN")
    in_view0 = ts.query_views == 0
    one_view = TrackSet(ts.tracks[:1, :, in_view0], ts.visible[:1, :, in_view0], ts.queries[in_view0], ts.image_size, "x")
    write_tracks(tmp_path / "one_view.npz", one_view)
    assert_one_line_error(cli("tracks", clip, "--queries-from", tmp_path / "one_view.npz", "--out", tmp_path / "o.npz"), "views")


def test_options_are_checked(cli, clip):
    assert_one_line_error(cli("tracks", clip, "--grid", "3x4", "--queries", "5"), "at most one")
    assert_one_line_error(cli("tracks", clip, "--method", "plugin"), "--tracker")
    assert_one_line_error(cli("tracks", clip, "--query-views", "cam09", "--method", "flow", "--out", "/tmp/none.npz"), "cam09")
    assert_one_line_error(cli("tracks", clip, clip, "--out", "x.npz"), "--out takes one clip")


@pytest.mark.slow
def test_subprocess_end_to_end(clip, tmp_path):
    """The console entry point: compute with flow on the ground truth's queries, then score, as the README does."""
    out = tmp_path / "flow.npz"
    run = subprocess.run([sys.executable, "-m", "mvt4g", "tracks", str(clip), "--method", "flow", "--queries-from",
                          str(clip / "tracks.npz"), "--out", str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    score = subprocess.run([sys.executable, "-m", "mvt4g", "tracks", "score", str(out), str(clip / "tracks.npz"), "--json"],
                           capture_output=True, text=True, check=False)
    assert score.returncode == 0, score.stderr
    result = json.loads(score.stdout)
    assert result["scores"]["temporal"]["delta_avg"] > 0.9


# ---- the core behind `tracks compute`: plan_track_jobs / run_track_job ------------------------


def test_core_jobs_check_everything_first_then_write_and_resume(cli, clip, tmp_path):
    from mvt4g.errors import InputError, OutputExistsError
    from mvt4g.tracks import TrackOptions, plan_track_jobs, run_track_job, score_tracks

    exact = read_tracks(clip / "tracks.npz")
    before = (clip / "tracks.npz").read_bytes()
    options = TrackOptions(method="geometry", queries_from=clip / "tracks.npz")
    # A bad second clip stops the plan before the first clip's tracks are touched.
    with pytest.raises(InputError, match="missing"):
        plan_track_jobs([clip, tmp_path / "missing"], options, overwrite=True)
    with pytest.raises(OutputExistsError):  # the clip's exact tracks are not replaced silently
        plan_track_jobs([clip], options)
    with pytest.raises(InputError, match="--out takes one clip"):
        plan_track_jobs([clip, clip], options, out=tmp_path / "x.npz")
    assert (clip / "tracks.npz").read_bytes() == before

    out = tmp_path / "geo.npz"
    [job] = plan_track_jobs([clip], options, out=out)
    assert (job.status, job.plan.method, job.out) == ("todo", "geometry", out) and not out.exists()
    row = run_track_job(job)
    assert row["status"] == "written" and row["out"] == str(out)
    assert (row["views"], row["frames"], row["tracks"]) == exact.tracks.shape[:3]
    assert score_tracks(read_tracks(out), exact)["all"]["delta_avg"] == 1.0  # geometry is exact on a plane

    # The same plan again: current, not rewritten; the CLI prints the same row.
    mtime = out.stat().st_mtime_ns
    [again] = plan_track_jobs([clip], options, out=out)
    assert again.status == "current"
    kept = {k: row[k] for k in ("clip", "out", "method", "reason", "views", "frames", "tracks", "quality")}
    assert run_track_job(again) == {**kept, "status": "current", "notes": []}  # quality read back from the file
    r = cli("tracks", clip, "--method", "geometry", "--queries-from", clip / "tracks.npz", "--out", out, "--json")
    assert r.code == 0 and r.json()["clips"] == [run_track_job(again)]
    assert out.stat().st_mtime_ns == mtime

    # auto on the clip's own exact tracks: nothing to do.
    [auto] = plan_track_jobs([clip], TrackOptions())
    assert auto.status == "exact" and run_track_job(auto)["status"] == "exact"


# ---- a whole dataset: `mvt4g tracks DATASET_DIR` (more in tests/tracks/test_dataset.py) ------------


def test_help_teaches_the_dataset_run(cli):
    r = cli("tracks", "compute", "--help")
    assert r.code == 0
    text = " ".join(r.stdout.split())
    assert "mvt4g tracks MultiCamVideo-Dataset/train --method flow --grid 30x52 --workers 2" in text
    assert "--workers" in text and "dataset folders" in text


def test_a_dataset_folder_of_clips_is_tracked(cli, clip, tmp_path):
    data = tmp_path / "data" / "group"
    data.mkdir(parents=True)
    for name in ("a", "b"):
        shutil.copytree(clip, data / name)
    r = cli("tracks", tmp_path / "data", "--method", "geometry", "--grid", "2x2", "--overwrite", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert [row["status"] for row in out["clips"]] == ["written", "written"]
    assert out["summary"]["written"] == 2 and out["summary"]["mean"]["visible"] > 0.5
    assert all(read_tracks(data / name / "tracks.npz").method == "geometry" for name in ("a", "b"))


def test_named_clips_one_failing_at_run_time_the_other_is_written(cli, clip, tmp_path):
    """Planning checks headers and presence; a depth file whose content is wrong is found while
    working: that clip is reported, the next one still done, exit 1 naming it."""
    bad = Path(shutil.copytree(clip, tmp_path / "bad_depth"))
    np.savez(bad / "depth" / "cam01.npz", depth=np.ones((5, 48, 81), np.float32))
    r = cli("tracks", bad, clip, "--method", "geometry", "--grid", "2x2", "--overwrite")
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    assert any(str(bad) in ln and "depth has shape" in ln for ln in lines[:-1])
    assert lines[-1] == f"mvt4g: error: 1 of 2 clip(s) failed: {bad}"
    assert read_tracks(clip / "tracks.npz").method == "geometry"
    assert read_tracks(bad / "tracks.npz").method == "planar"  # the bad clip's exact tracks untouched
