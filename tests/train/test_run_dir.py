"""train.trainer.delete_run_dir: what `mvt4g train --overwrite` deletes, and what it refuses to."""

from __future__ import annotations

import pytest

from mvt4g.errors import InputError
from mvt4g.fs.lock import LOCK_NAME, DirectoryLock
from mvt4g.train.trainer import delete_run_dir


def _run_dir(path):
    (path / "checkpoints" / "step_1").mkdir(parents=True)
    (path / "config.toml").write_text("[train]\nsteps = 1\n")
    (path / "metrics.jsonl").write_text("{}\n")
    return path


def test_a_run_directory_is_deleted(tmp_path):
    run = _run_dir(tmp_path / "run")
    assert delete_run_dir(run) is True and not run.exists()


def test_missing_or_empty_folders_are_left_alone(tmp_path):
    assert delete_run_dir(tmp_path / "missing") is False and not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / LOCK_NAME).write_text("")  # a lock file alone: still empty
    assert delete_run_dir(tmp_path / "empty") is False and (tmp_path / "empty" / LOCK_NAME).exists()


def test_a_folder_that_is_not_a_run_is_refused_and_kept(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="only deletes run directories"):
        delete_run_dir(tmp_path / "photos")
    assert (tmp_path / "photos" / "a.jpg").exists()


def test_a_run_in_use_is_refused_and_kept(tmp_path):
    run = _run_dir(tmp_path / "run")
    lock = DirectoryLock(run).acquire()
    try:
        with pytest.raises(InputError, match="in use by pid"):
            delete_run_dir(run)
    finally:
        lock.release()
    assert (run / "config.toml").exists()
