"""`mvt4g synth`: valid clips on disk, one-line errors with nothing written, identical output with workers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mvt4g.camera.rig import read_cameras_json
from mvt4g.cli.main import main
from mvt4g.io.clip import read_clip
from mvt4g.tracks.format import read_tracks

SMALL = ["--views", "2", "--frames", "5", "--size", "48x80", "--points", "300", "--seed", "7"]


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_writes_a_valid_clip(tmp_path, capsys):
    out = tmp_path / "synth"
    rc = main(["synth", "--out", str(out), "--scenes", "2", *SMALL, "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["scenes"] == [str(out / "scene_0000"), str(out / "scene_0001")]
    assert summary["views"] == 2 and summary["frames"] == 5 and summary["size"] == [48, 80]
    assert summary["seconds"] > 0
    clip_dir = out / "scene_0000"
    clip = read_clip(clip_dir)
    assert clip.views == ["cam01", "cam02"] and (clip.frames, clip.height, clip.width) == (5, 48, 80)
    cams = read_cameras_json(clip_dir / "cameras" / "cameras.json")
    assert cams["cam02"].c2w.shape == (5, 4, 4)
    video = clip.read_video("cam02")
    assert video.shape == (5, 48, 80, 3) and video.std() > 10  # a textured picture, not a blank
    depth = clip.read_depth("cam01")
    assert depth.dtype == np.float32 and np.isfinite(depth).all() and depth.min() > 0
    masks = clip.read_masks("cam01")
    assert masks.dtype == np.uint8 and masks.max() <= 5
    tracks = read_tracks(clip_dir / "tracks.npz")
    assert tracks.tracks.shape == (2, 5, 300, 2) and tracks.views == ["cam01", "cam02"]
    assert tracks.image_size == (48, 80) and tracks.method == "synth"
    meta = json.loads((clip_dir / "meta.json").read_text())
    assert meta["fps"] == 15.0 and meta["frames"] == 5 and meta["size"] == [48, 80]
    assert meta["provenance"]["generator"] == "mvt4g synth" and meta["provenance"]["seed"] == 7
    assert " move" in meta["caption"] and "ground" in meta["caption"]
    assert not list(out.glob(".*"))  # no temporary leftovers


@pytest.mark.slow
def test_same_seed_gives_identical_files_with_any_number_of_workers(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "a"), "--scenes", "2", *SMALL]) == 0
    assert main(["synth", "--out", str(tmp_path / "b"), "--scenes", "2", "--workers", "2", *SMALL]) == 0
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == 2 * 9  # 2 videos, 2 depth, 2 masks, cameras, tracks, meta
    assert all(a[k] == b[k] for k in a)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "96by160"], "size must be HxW"),
        (["--size", "95x160"], "even"),
        (["--views", "0"], "views"),
        (["--frames", "0"], "frames"),
        (["--scenes", "0"], "scenes"),
        (["--points", "0"], "points"),
        (["--workers", "0"], "workers"),
    ],
)
def test_bad_options_fail_with_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "synth"
    rc = main(["synth", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unwritable_output_fails_with_one_line_and_missing_parents_are_created(tmp_path, capsys):
    rc = main(["synth", "--out", "/proc/mvt4g-missing/synth", *SMALL])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write in '/proc'" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "file").write_text("")
    rc = main(["synth", "--out", str(tmp_path / "file" / "synth"), *SMALL])
    err = capsys.readouterr().err
    assert rc == 2 and "is not a folder" in err and len(err.strip().splitlines()) == 1
    rc = main(["synth", "--out", str(tmp_path / "missing" / "deeper" / "synth"), *SMALL])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "missing" / "deeper" / "synth" / "scene_0000" / "meta.json").is_file()


def test_existing_scene_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--scenes", "1", *SMALL]) == 0
    capsys.readouterr()
    before = _files(out)
    rc = main(["synth", "--out", str(out), "--scenes", "2", *SMALL, "--seed", "8"])
    err = capsys.readouterr().err
    assert rc == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert _files(out) == before  # scene_0000 untouched, scene_0001 not written
    assert main(["synth", "--out", str(out), "--scenes", "1", *SMALL, "--seed", "8", "--overwrite"]) == 0
    assert _files(out) != before


@pytest.mark.slow
def test_skip_existing_keeps_same_scenes_and_refuses_others(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--scenes", "1", *SMALL]) == 0
    capsys.readouterr()
    kept = _files(out)

    # The same settings with one more scene: scene_0000 is kept as it is, scene_0001 rendered.
    assert main(["synth", "--out", str(out), "--scenes", "2", *SMALL, "--skip-existing", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == [str(out / "scene_0000")]
    assert report["scenes"] == [str(out / "scene_0000"), str(out / "scene_0001")]
    now = _files(out)
    assert {k: v for k, v in now.items() if k.parts[0] == "scene_0000"} == kept
    # ... and scene_0001 is the one a fresh two-scene run writes.
    fresh = tmp_path / "fresh"
    assert main(["synth", "--out", str(fresh), "--scenes", "2", *SMALL]) == 0
    assert {k: v for k, v in _files(fresh).items() if k.parts[0] == "scene_0001"} == {
        k: v for k, v in now.items() if k.parts[0] == "scene_0001"
    }
    capsys.readouterr()
    assert main(["synth", "--out", str(out), "--scenes", "2", *SMALL, "--skip-existing"]) == 0
    assert "2 already written and kept" in " ".join(capsys.readouterr().err.split())  # rich wraps lines
    assert _files(out) == now

    # Other settings: refused with one line naming the difference, nothing written...
    rc = main(["synth", "--out", str(out), "--scenes", "3", *SMALL, "--seed", "8", "--skip-existing"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "scene_0000" in err and "seed 7" in err and "(and 1 more)" in err and "--overwrite" in err
    assert _files(out) == now
    rc = main(["synth", "--out", str(out), "--scenes", "1", *SMALL, "--points", "9", "--skip-existing"])
    err = capsys.readouterr().err
    assert rc == 2 and "other settings (points 300, now 9)" in err, err
    # ... unless --overwrite; a folder without synth's meta.json is not mistaken for a scene.
    assert main(["synth", "--out", str(out), "--scenes", "1", *SMALL, "--points", "9", "--skip-existing", "--overwrite"]) == 0
    tracks = Path("scene_0000", "tracks.npz")
    assert _files(out)[tracks] != now[tracks]
    (out / "scene_0001" / "meta.json").unlink()
    rc = main(["synth", "--out", str(out), "--scenes", "2", *SMALL, "--points", "9", "--skip-existing"])
    err = capsys.readouterr().err
    assert rc == 2 and "no readable meta.json" in err, err
