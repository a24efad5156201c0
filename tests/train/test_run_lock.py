"""Run directories are owned by one process at a time (advisory flock on FOLDER/.mvt4g.lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import assert_one_line_error
from helpers.train import CONFIG, synth_clips

from mvt4g.errors import InputError
from mvt4g.fs.lock import LOCK_NAME, DirectoryLock, directory_lock

HOLD = """
import sys, time
from mvt4g.fs.lock import DirectoryLock
DirectoryLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process that holds the lock of tmp_path/run until the test ends."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield run, proc
    proc.kill()
    proc.wait()


def test_a_second_lock_is_refused_with_the_owner_pid(tmp_path):
    lock = DirectoryLock(tmp_path / "a" / "run").acquire()
    with pytest.raises(InputError, match=rf"run directory is in use by pid {__import__('os').getpid()}$"):
        DirectoryLock(tmp_path / "a" / "run").acquire()
    lock.release()
    DirectoryLock(tmp_path / "a" / "run").acquire().release()  # free again
    assert (tmp_path / "a" / "run" / LOCK_NAME).is_file()


def test_a_failed_start_removes_the_folders_the_lock_created(tmp_path):
    with pytest.raises(RuntimeError), directory_lock(tmp_path / "a" / "b"):
        raise RuntimeError("start failed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), directory_lock(tmp_path / "c") as lock:
        (lock.folder / "written.txt").write_text("kept")
        raise RuntimeError("failed after writing")
    assert (tmp_path / "c" / "written.txt").is_file()


def test_the_lock_is_released_when_its_owner_is_killed(holder):
    run, proc = holder
    with pytest.raises(InputError, match=f"in use by pid {proc.pid}"):
        DirectoryLock(run).acquire()
    proc.kill()  # kill -9: the kernel drops the flock
    proc.wait()
    DirectoryLock(run).acquire().release()


@pytest.mark.slow
def test_two_trainers_on_one_run_directory_exactly_one_runs(cli, holder, tmp_path_factory, tmp_path):
    run, proc = holder
    data = synth_clips(tmp_path_factory)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    args = ["train", "--config", config, "--data", data, "--out", run, "--steps", "1"]
    for extra in ([], ["--resume"], ["--overwrite"]):
        assert_one_line_error(cli(*args, *extra), f"run directory is in use by pid {proc.pid}")
        assert [p.name for p in run.iterdir()] == [LOCK_NAME]  # nothing written by the refused run
    proc.kill()
    proc.wait()
    result = cli(*args, "--json")
    assert result.code == 0, result.stderr
    assert (run / "config.toml").is_file() and (run / "metrics.jsonl").is_file()
    assert_one_line_error(cli(*args), "run directory exists and is not empty")  # the lock file alone is not content


def test_the_trainer_holds_the_lock_while_it_runs(cli, tmp_path_factory, tmp_path):
    data = synth_clips(tmp_path_factory)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    run = tmp_path / "run"
    seen = []

    import mvt4g.train.trainer as trainer

    original = trainer.write_run_config

    def probe(cfg, run_dir):
        try:
            DirectoryLock(run_dir).acquire().release()
            seen.append("free")
        except InputError as exc:
            seen.append(str(exc))
        return original(cfg, run_dir)

    mp = pytest.MonkeyPatch()
    mp.setattr(trainer, "write_run_config", probe)
    try:
        assert cli("train", "--config", config, "--data", data, "--out", run, "--steps", "1").code == 0
    finally:
        mp.undo()
    assert len(seen) == 1 and "in use by pid" in seen[0]
    time.sleep(0)
    DirectoryLock(run).acquire().release()  # released at the end


def test_a_second_demo_on_one_folder_is_refused(cli, holder):
    run, proc = holder
    result = cli("demo", "--out", run, "--budget-minutes", "1")
    assert_one_line_error(result, f"demo folder is in use by pid {proc.pid}")
    assert [p.name for p in run.iterdir()] == [LOCK_NAME]


def one_step_run(cli, tmp_path_factory, tmp_path):
    """(data, run): a run directory trained for one step on the shared synth clips."""
    data = synth_clips(tmp_path_factory)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    run = tmp_path / "run"
    assert cli("train", "--config", config, "--data", data, "--out", run, "--steps", "1").code == 0
    return data, run


@pytest.mark.slow
def test_resume_refuses_an_edited_config_toml(cli, tmp_path_factory, tmp_path):
    data, run = one_step_run(cli, tmp_path_factory, tmp_path)
    saved = run / "config.toml"
    # a resume that changes only what a resume may change (--steps) is fine, and re-stamps the file
    assert cli("train", "--data", data, "--out", run, "--steps", "2", "--resume").code == 0, "resume failed"
    saved.write_text(saved.read_text().replace("lr = 0.001", "lr = 0.5"))
    before = sorted(p.name for p in run.rglob("*"))
    result = cli("train", "--data", data, "--out", run, "--steps", "3", "--resume")
    assert_one_line_error(result, "config.toml was edited after the run wrote it (optim.lr: 0.001 -> 0.5)",
                          "optim.lr cannot change on a resume")  # fmt: skip
    assert sorted(p.name for p in run.rglob("*")) == before
    # Repeating a change a resume may not make does not accept it either.
    result = cli("train", "--data", data, "--out", run, "--steps", "3", "--resume", "--set", "optim.lr=0.5")
    assert_one_line_error(result, "optim.lr cannot change on a resume")
    assert sorted(p.name for p in run.rglob("*")) == before


@pytest.mark.slow
def test_resume_accepts_an_edit_that_the_command_repeats(cli, tmp_path_factory, tmp_path):
    data, run = one_step_run(cli, tmp_path_factory, tmp_path)
    saved = run / "config.toml"
    text = saved.read_text()
    saved.write_text("# checked by hand\n" + text)  # no key changed: nothing to accept
    assert cli("train", "--out", run, "--steps", "2", "--resume").code == 0
    saved.write_text(saved.read_text().replace("keep_last = 1", "keep_last = 2").replace("log_every = 1", "log_every = 3"))
    resume = ["train", "--out", run, "--steps", "3", "--resume", "--json"]
    result = cli(*resume)
    assert_one_line_error(result, "(train.log_every: 1 -> 3, train.keep_last: 1 -> 2)",
                          "repeat it: --set train.log_every=3 --set train.keep_last=2")  # fmt: skip
    assert_one_line_error(cli(*resume, "--set", "train.keep_last=2"), "repeat it: --set train.log_every=3 (")
    assert_one_line_error(cli(*resume, "--set", "train.keep_last=2", "--set", "train.log_every=4"), "--set train.log_every=3")
    result = cli(*resume, "--set", "train.keep_last=2", "--set", "train.log_every=3")
    assert result.code == 0, result.stderr
    assert result.json()["start_step"] == 2 and "keep_last = 2" in saved.read_text()
    assert cli("train", "--out", run, "--steps", "4", "--resume").code == 0  # accepted: the run's config now


def test_train_help_lists_the_keys_a_resume_may_change(cli):
    from mvt4g.train.trainer import RESUMABLE_KEYS

    text = " ".join(cli("train", "--help").stdout.split())
    assert all(key in text for key in RESUMABLE_KEYS - {"train.out"}), text


def _hold(folder):
    """Another process that holds the lock of ``folder`` (kill it to release)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc):
    proc.kill()
    proc.wait()


def test_tracks_over_several_clips_are_refused_while_one_clip_is_in_use(cli, make_clip):
    clips = [make_clip("a", views=1, frames=5), make_clip("b", views=1, frames=5)]
    args = ["tracks", *clips, "--method", "flow", "--grid", "2x2", "--json"]
    proc = _hold(clips[1])
    try:
        assert_one_line_error(cli(*args), f"clip folder is in use by pid {proc.pid}", str(clips[1]))
        assert not any((c / "tracks.npz").exists() for c in clips)  # all or none: clip a was not started either
    finally:
        _release(proc)
    result = cli(*args)
    assert result.code == 0, result.stderr
    assert [r["status"] for r in result.json()["clips"]] == ["written", "written"]
    proc = _hold(clips[0])
    try:  # a rerun with nothing to do takes no lock, so a held one does not stop it
        assert [r["status"] for r in cli(*args).json()["clips"]] == ["current", "current"]
    finally:
        _release(proc)


def test_tracks_under_the_lock_skip_what_another_run_finished_meanwhile(cli, make_clip, monkeypatch):
    from mvt4g.tracks import compute

    clip = make_clip("a", views=1, frames=5)
    args = ["tracks", clip, "--method", "flow", "--grid", "2x2", "--json"]
    assert cli(*args).code == 0
    stamp = (clip / "tracks.npz").stat().st_mtime_ns
    plan = compute.plan_track_jobs

    def plan_before_the_other_run_wrote(*a, **k):  # as if planned just before another run finished
        return [compute.replace(j, status="todo") for j in plan(*a, **k)]

    monkeypatch.setattr(compute, "plan_track_jobs", plan_before_the_other_run_wrote)
    assert cli(*args).json()["clips"][0]["status"] == "current"
    assert (clip / "tracks.npz").stat().st_mtime_ns == stamp


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("lock_model")
    save_pretrained(MVT4GModel(preset("tiny")), root / "tiny")
    return root / "tiny"


def test_a_generate_batch_is_refused_while_its_output_folder_is_in_use(cli, tiny_model, tmp_path):
    import numpy as np

    from mvt4g.io.video import write_video

    ref = write_video(tmp_path / "walk.mp4", np.zeros((9, 32, 32, 3), np.uint8), fps=10)
    out = tmp_path / "gen"
    args = ["generate", ref, "--traj", "arc-left,zoom-in", "--model", tiny_model, "--steps", "1", "--frames", "9",
            "--out-dir", out]  # fmt: skip
    proc = _hold(out / "walk")
    try:
        assert_one_line_error(cli(*args), f"output folder is in use by pid {proc.pid}", str(out / "walk"))
        assert [p.name for p in (out / "walk").iterdir()] == [LOCK_NAME]
    finally:
        _release(proc)
    result = cli(*args)
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (out / "walk").glob("*.mp4")) == ["arc-left.mp4", "zoom-in.mp4"]


def test_a_generate_batch_whose_items_all_fail_leaves_no_folder(cli, tiny_model, tmp_path, monkeypatch):
    import numpy as np

    from mvt4g.io.video import write_video
    from mvt4g.sample import batch

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(batch, "write_item", fail)
    ref = write_video(tmp_path / "walk.mp4", np.zeros((9, 32, 32, 3), np.uint8), fps=10)
    result = cli("generate", ref, "--traj", "arc-left", "--model", tiny_model, "--steps", "1", "--frames", "9",
                 "--out-dir", tmp_path / "gen" / "deeper")  # fmt: skip
    assert result.code == 1
    assert not (tmp_path / "gen").exists()  # the lock made the folders, and took them back


def test_another_users_lock_file_still_locks(tmp_path, monkeypatch):
    """A lock file this process may not write (another user's): the flock works on a read-only descriptor."""
    real_open = os.open

    def open_as_another_user(path, flags, *args):
        if str(path).endswith(LOCK_NAME) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("4242\n")
    monkeypatch.setattr(os, "open", open_as_another_user)
    lock = DirectoryLock(folder, "clip folder").acquire()
    with pytest.raises(InputError, match="clip folder is in use by pid 4242"):  # the last writer's pid
        DirectoryLock(folder, "clip folder").acquire()
    lock.release()
    DirectoryLock(folder).acquire().release()
