import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error

from mvt4g.camera import plucker_rays, relative_to
from mvt4g.io.plucker_cache import read_plucker


def test_writes_latent_maps_and_reuses_current_cache(cli, make_clip):
    root = make_clip(frames=9)
    r = cli("plucker", root, "--json")
    assert r.code == 0, r.stderr
    out = r.json()["outputs"]
    assert [o["status"] for o in out] == ["written", "written"]
    rays, meta = read_plucker(root / "plucker" / "cam01.safetensors")
    assert rays.shape == (3, 6, 48, 64) and rays.dtype == np.float16
    assert json.loads(meta["frame_indices"]) == [0, 4, 8]
    from mvt4g.io.clip import read_clip

    cams = read_clip(root).cameras["cam01"]
    expected = plucker_rays(cams.K[[0, 4, 8]], cams.c2w[[0, 4, 8]], 48, 64)
    np.testing.assert_allclose(rays.astype(np.float32), expected, atol=2e-3)
    # Second run: nothing to do.
    mtime = os.stat(root / "plucker" / "cam01.safetensors").st_mtime_ns
    r = cli("plucker", root, "--json")
    assert [o["status"] for o in r.json()["outputs"]] == ["current", "current"]
    assert os.stat(root / "plucker" / "cam01.safetensors").st_mtime_ns == mtime


def test_stale_cache_is_recomputed_when_inputs_change(cli, make_clip):
    root = make_clip(frames=9)
    assert cli("plucker", root).code == 0
    r = cli("plucker", root, "--relative-to", "cam02", "--dtype", "float32", "--frames", "all", "--json")
    assert [o["status"] for o in r.json()["outputs"]] == ["written", "written"]
    rays, meta = read_plucker(root / "plucker" / "cam01.safetensors")
    assert rays.shape == (9, 6, 48, 64) and meta["relative_to"] == "cam02"
    from mvt4g.io.clip import read_clip

    cams = read_clip(root).cameras
    rel = relative_to(cams["cam01"].c2w, cams["cam02"].c2w[0])
    np.testing.assert_allclose(rays, plucker_rays(cams["cam01"].K, rel, 48, 64), atol=1e-6)
    # Moving cam01 makes its map stale; cam02's inputs (its cameras, relative to itself) did not change.
    cam_file = root / "cameras" / "cameras.json"
    data = json.loads(cam_file.read_text())
    data["views"]["cam01"]["c2w"][0][0][3] += 0.5
    cam_file.write_text(json.dumps(data))
    r = cli("plucker", root, "--relative-to", "cam02", "--dtype", "float32", "--frames", "all", "--json")
    assert [o["status"] for o in r.json()["outputs"]] == ["written", "current"]
    # Moving the reference view's first pose changes every map.
    data["views"]["cam02"]["c2w"][0][1][3] += 0.5
    cam_file.write_text(json.dumps(data))
    r = cli("plucker", root, "--relative-to", "cam02", "--dtype", "float32", "--frames", "all", "--json")
    assert [o["status"] for o in r.json()["outputs"]] == ["written", "written"]


def test_cameras_file_source_and_size(cli, make_clip, tmp_path):
    root = make_clip(frames=5)
    out = tmp_path / "maps"
    r = cli("plucker", root / "cameras" / "cameras.json", "--frames", "all", "--size", "24x24", "--out", out, "--json")
    assert r.code == 0, r.stderr
    rays, _ = read_plucker(out / "cam02.safetensors")
    assert rays.shape == (5, 6, 24, 24)


def test_bad_inputs(cli, make_clip, tmp_path):
    root = make_clip(frames=6)
    assert_one_line_error(cli("plucker", tmp_path / "nope"), "no such file")
    assert_one_line_error(cli("plucker", root), "4k+1")
    assert not (root / "plucker").exists()
    good = make_clip("good", frames=5)
    assert_one_line_error(cli("plucker", good, "--relative-to", "cam07"), "cam07", "cam01")
    assert_one_line_error(cli("plucker", good, "--out", "/proc/mvt4g-missing/maps"), "cannot write in")
    assert_one_line_error(cli("plucker", good, "--dtype", "int8"), "int8")
    cam_file = good / "cameras" / "cameras.json"
    data = json.loads(cam_file.read_text())
    data["views"]["cam02"]["c2w"][1][0][0] = float("nan")
    cam_file.write_text(json.dumps(data))
    assert_one_line_error(cli("plucker", good), "cameras.json", "NaN")
    assert not (good / "plucker").exists()
    # Nothing half-written: no temporary files are left behind either.
    assert not list(tmp_path.rglob("*.tmp*"))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_human_output_names_outputs(cli, make_clip, dtype):
    root = make_clip(frames=5)
    r = cli("plucker", root, "--dtype", dtype)
    assert r.code == 0 and "written" in r.stderr and r.stdout == ""


def test_bad_videos_in_a_clip(cli, make_clip, shared_data):
    root = make_clip(frames=5)
    video = root / "videos" / "cam01.mp4"
    data = (shared_data / "real" / "bear.mp4").read_bytes()
    video.write_bytes(data[: len(data) // 2])  # the real bear.mp4 cut in half
    assert_one_line_error(cli("plucker", root), "cam01.mp4", "truncated")
    video.write_text("this is not a video\n")
    assert_one_line_error(cli("plucker", root), "cam01.mp4", "not a readable video")
    assert not (root / "plucker").exists()


def test_one_frame_videos_are_refused(cli, make_clip):
    root = make_clip(frames=1)
    assert_one_line_error(cli("plucker", root), "1 frame")
    assert not (root / "plucker").exists()


def test_core_jobs_match_the_cli_and_create_the_plucker_folder(cli, make_clip, tmp_path):
    from mvt4g.errors import InputError
    from mvt4g.io.clip import read_clip
    from mvt4g.io.plucker_cache import (
        plan_plucker_jobs,
        plan_requests,
        run_plucker_job,
        write_plucker,
    )

    root = make_clip(frames=5)
    # Every source is checked before anything is written.
    with pytest.raises(InputError, match="no such file or clip directory"):
        plan_plucker_jobs([root, tmp_path / "missing"])
    assert not (root / "plucker").exists()

    jobs = plan_plucker_jobs([root], relative_to_view="cam01")
    assert [(j.request.view, j.status) for j in jobs] == [("cam01", "todo"), ("cam02", "todo")]
    rows = [run_plucker_job(j) for j in jobs]  # creates CLIP/plucker/
    assert [r["status"] for r in rows] == ["written", "written"] and rows[1]["shape"] == [2, 6, 48, 64]
    cams = read_clip(root).cameras
    rays, _ = read_plucker(root / "plucker" / "cam02.safetensors")
    expected = plucker_rays(cams["cam02"].K[[0, 4]], relative_to(cams["cam02"].c2w[[0, 4]], cams["cam01"].c2w[0]), 48, 64)
    np.testing.assert_allclose(rays.astype(np.float32), expected, atol=2e-3)
    # The CLI plans the same jobs: all current, rows as the core's.
    r = cli("plucker", root, "--relative-to", "cam01", "--json")
    assert r.code == 0 and r.json()["outputs"] == [run_plucker_job(j) for j in plan_plucker_jobs([root], relative_to_view="cam01")]
    assert {o["status"] for o in r.json()["outputs"]} == {"current"}

    # write_plucker alone: a missing plucker/ folder is made; a missing clip is one InputError.
    request = plan_requests(cams)[0]
    other = make_clip("other", frames=5)
    assert write_plucker(other / "plucker" / "cam01.safetensors", request) == (2, 6, 48, 64)
    with pytest.raises(InputError, match="cannot write in"):
        write_plucker(Path("/proc/mvt4g-nowhere/plucker/cam01.safetensors"), request)
