"""Fault tests: SIGTERM, SIGINT and kill -9 in the middle of synth, tracks, generate and demo.

Whatever stops a command, the outputs are complete or absent: SIGTERM and SIGINT remove the
temporaries (exit 143 / 130); kill -9 leaves them, hidden and named as temporaries, where no
reader takes them for outputs (a scan of a dataset folder sees no clip in them), and the next
run removes or replaces them and finishes the work.

To stop a command at the worst moment every time, a small wrapper sends the signal to its own
process right before the N-th ``os.replace`` (the rename that finishes an atomic write): the
temporary is whole but not yet in place. ``demo`` writes its scenes in worker processes, so it
gets a real signal from outside once a scene is written.
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

from mvt4g.fs.atomic import is_temp_name

WRAPPER = """
import os, sys
SIG, AT = int(sys.argv[1]), int(sys.argv[2])
real, calls = os.replace, [0]

def replace(src, dst, *args, **kwargs):
    calls[0] += 1
    if calls[0] == AT:
        os.kill(os.getpid(), SIG)  # SIGKILL dies here; SIGTERM/SIGINT raise here, before the rename
    return real(src, dst, *args, **kwargs)

if __name__ == "__main__":
    os.replace = replace
    from mvt4g.cli.main import main
    sys.exit(main(sys.argv[3:]))
"""

SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)]
IDS = ["SIGTERM", "SIGINT", "kill-9"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MVT4G_DEBUG": "0"}


def stop_at_replace(args: list, sig: signal.Signals, at: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``mvt4g ARGS`` in a subprocess that gets ``sig`` right before its ``at``-th rename."""
    script = cwd / "stop_at_replace.py"
    script.write_text(WRAPPER)
    cmd = [sys.executable, str(script), str(int(sig)), str(at), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120, check=False)


def temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_temp_name(p.name))


def check_stopped(proc: subprocess.CompletedProcess, sig: signal.Signals, code: int, root: Path) -> list[Path]:
    """The exit status the signal gives; no temporaries unless kill -9; returns what is left."""
    assert proc.returncode == code, proc.stderr
    left = temporaries(root)
    if sig == signal.SIGKILL:
        assert left, "the wrapper kills mid-write: a temporary must be left"
        assert all(p.name.startswith(".") for p in left)
    else:
        assert left == [], left
        assert "Traceback" not in proc.stderr
    if sig == signal.SIGTERM:
        assert proc.stderr.strip().splitlines()[-1] == "mvt4g: error: stopped by SIGTERM"
    return left


# ---- synth ----------------------------------------------------------------------------------

SYNTH = ["synth", "--scenes", "3", "--size", "32x32", "--frames", "5", "--views", "2", "--json"]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_synth_stopped_leaves_complete_scenes_and_a_rerun_finishes(cli, tmp_path, sig, code):
    from mvt4g.io.clip import read_clip
    from mvt4g.train.data import find_clip_dirs

    out = tmp_path / "data"
    # Renames 1-6 write scene_0000; 12 puts scene_0001 in place: stop with all of it written in its temporary.
    proc = stop_at_replace([*SYNTH, "--out", out], sig, 12, tmp_path)
    left = check_stopped(proc, sig, code, tmp_path)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["scene_0000"]
    read_clip(out / "scene_0000")
    # A dataset scan sees only the finished scene: a killed writer's folder is one level down.
    assert [p.name for p in find_clip_dirs([out])] == ["scene_0000"]
    if sig == signal.SIGKILL:
        assert [p.parent.name for p in left if p.parent == out] and not any((p / "videos").is_dir() for p in left)
    result = cli(*SYNTH, "--out", out, "--skip-existing")
    assert result.code == 0, result.stderr
    assert result.json()["skipped"] == [str(out / "scene_0000")]
    assert [p.name for p in find_clip_dirs([out])] == ["scene_0000", "scene_0001", "scene_0002"]
    assert temporaries(tmp_path) == []  # the rerun removed the killed writer's


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["process", "process-group"])
def test_synth_with_workers_sigterm_from_outside_leaves_complete_scenes(tmp_path, group):
    """A real SIGTERM at whatever moment it lands, to the command or (like timeout or a job
    scheduler) to its whole process group, scene workers included."""
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "mvt4g", "synth", "--out", str(out), "--scenes", "40", "--size", "32x32",
           "--frames", "5", "--views", "2", "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        _wait_for(lambda: any(out.glob("scene_*")), proc)
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "mvt4g: error: stopped by SIGTERM" and "Traceback" not in stderr
    time.sleep(0.5)
    assert temporaries(tmp_path) == []
    scenes = sorted(out.iterdir())
    assert 0 < len(scenes) < 40
    from mvt4g.io.clip import read_clip

    for scene in scenes:
        read_clip(scene)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- tracks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Three tiny synthetic clips without their exact tracks (so tracks has work to do)."""
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    root = tmp_path_factory.mktemp("fault_clips")
    paths = synthesize(SynthSettings(views=2, frames=5, height=32, width=32), root / "data", 3)
    for p in paths:
        (p / "tracks.npz").unlink()
    return paths


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_tracks_stopped_leaves_complete_track_files_and_a_rerun_finishes(cli, clips, tmp_path, sig, code):
    from mvt4g.tracks.format import read_tracks

    data = tmp_path / "data"
    shutil.copytree(clips[0].parent, data)
    args = ["tracks", *sorted(data.iterdir()), "--method", "geometry", "--grid", "3x3", "--json"]
    proc = stop_at_replace(args, sig, 2, tmp_path)  # rename 1 is scene_0000's, 2 would be scene_0001's
    check_stopped(proc, sig, code, tmp_path)
    assert [p.parent.name for p in sorted(data.glob("*/tracks.npz"))] == ["scene_0000"]
    read_tracks(data / "scene_0000" / "tracks.npz")
    result = cli(*args)
    assert result.code == 0, result.stderr
    assert [r["status"] for r in result.json()["clips"]] == ["current", "written", "written"]
    assert temporaries(tmp_path) == []


# ---- generate -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_and_video(tmp_path_factory) -> tuple[Path, Path]:
    import torch

    from mvt4g.io.video import write_video
    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("fault_model")
    save_pretrained(MVT4GModel(preset("tiny")), root / "tiny")
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    return root / "tiny", write_video(root / "walk.mp4", frames, fps=10)


def _item_files(folder: Path) -> dict[str, list[str]]:
    """Item -> its files (names without the item's stem), temporaries left out."""
    items: dict[str, list[str]] = {}
    for p in sorted(folder.iterdir()):
        if not p.name.startswith("."):
            stem, _, rest = p.name.partition(".")
            items.setdefault(stem, []).append(rest)
    return items


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_generate_stopped_leaves_complete_items_and_a_rerun_finishes(cli, model_and_video, tmp_path, sig, code):
    from mvt4g.io.video import probe_video

    model, video = model_and_video
    out = tmp_path / "gen"
    args = ["generate", video, "--model", model, "--steps", "1", "--frames", "9", "--out-dir", out]
    # Per item: trajectory.json, meta.json, then the video. Rename 5 is zoom-in's meta.json.
    proc = stop_at_replace([*args, "--traj", "arc-left,zoom-in,pan-right"], sig, 5, tmp_path)
    check_stopped(proc, sig, code, tmp_path)
    items = _item_files(out / "walk")
    assert items["arc-left"] == ["meta.json", "mp4", "trajectory.json"]
    assert probe_video(out / "walk" / "arc-left.mp4").frames == 9
    assert not (out / "walk" / "zoom-in.mp4").exists() and "pan-right" not in items
    if sig != signal.SIGKILL:
        assert "zoom-in" not in items  # the item's finished files went with it
    # A rerun of the batch keeps the finished item and does the rest (what kill -9 left of the
    # interrupted item is no finished output: it is replaced).
    batch = [*args, "--traj", "arc-left,zoom-in,pan-right", "--skip-existing", "--json"]
    result = cli(*batch)
    assert result.code == 0, result.stderr
    assert [i["status"] for i in result.json()["items"]] == ["skipped", "ok", "ok"]
    items = _item_files(out / "walk")
    assert all(items[name] == ["meta.json", "mp4", "trajectory.json"] for name in ("arc-left", "zoom-in", "pan-right"))
    assert temporaries(tmp_path) == []
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "walk").iterdir()}
    again = cli(*batch)  # all finished: nothing to do, nothing touched (not even the lock)
    assert again.code == 0 and again.json()["skipped"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in (out / "walk").iterdir()} == stamps
    # Items made with other settings are not the ones asked for: refused, as without --skip-existing.
    assert cli(*batch, "--seed", "1").code == 2


# ---- demo -----------------------------------------------------------------------------------

# Fixed, tiny fine-tunes of a tiny random base: what is tested is where a stopped demo leaves its
# folder, not what it learns (the shipped base at 32x32 would cost minutes here).
DEMO = ["demo", "--size", "16x16", "--frames", "5", "--train-scenes", "4", "--heldout-scenes", "1",
        "--steps", "2", "--sample-steps", "1", "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def demo_base(tmp_path_factory) -> Path:
    """A random ``tiny`` model saved like a trained base."""
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("demo_base") / "base"
    save_pretrained(MVT4GModel(preset("tiny")), folder)
    return folder


def _stop_demo_in_its_data_stage(out: Path, base: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mvt4g", *DEMO, "--base", str(base), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=out.parent, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: any((out / "data" / "train").glob("scene_*")), proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _check_demo_folder(out: Path) -> None:
    from mvt4g.io.clip import read_clip

    json.loads((out / "demo.json").read_text())  # the state file is whole
    for scene in (out / "data").glob("*/scene_*"):
        read_clip(scene)  # every scene in place is a whole clip


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_demo_stopped_in_a_stage_leaves_only_complete_files(tmp_path, demo_base, sig, code):
    out = tmp_path / "demo"
    proc = _stop_demo_in_its_data_stage(out, demo_base, sig)
    assert proc.returncode == code, proc.stderr
    if sig != signal.SIGKILL:
        time.sleep(0.5)  # scene workers that were rendering finish or drop their scene
        assert temporaries(tmp_path) == []
    _check_demo_folder(out)


@pytest.mark.slow
def test_demo_killed_then_rerun_finishes(cli, tmp_path, demo_base, monkeypatch):
    from mvt4g.demo import stages

    out = tmp_path / "demo"
    assert _stop_demo_in_its_data_stage(out, demo_base, signal.SIGKILL).returncode == -9
    time.sleep(1.0)  # orphaned scene workers notice their parent is gone
    # The rerun finishes in-process; its tracks stage renders a small scene (as tests/demo does).
    monkeypatch.setattr(stages, "TRACKS_SCENE", {"views": 2, "frames": 5, "height": 48, "width": 64, "points": 64})
    result = cli(*DEMO, "--base", demo_base, "--out", out)
    assert result.code == 0, result.stderr
    assert temporaries(tmp_path) == []
    _check_demo_folder(out)
