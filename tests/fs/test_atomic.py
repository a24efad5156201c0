import os
import stat

import pytest

from mvt4g.errors import InputError, OutputExistsError
from mvt4g.fs.atomic import atomic_dir, atomic_path, check_output_path


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == tmp_path
        tmp.write_text("done")
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "fail.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_outputs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.bin") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_atomic_dir_refuses_existing_unless_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputExistsError):
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    with atomic_dir(tmp_path / "d", overwrite=True) as tmp:
        (tmp / "x").write_text("2")
    assert (tmp_path / "d" / "x").read_text() == "2"


def test_check_output_path(tmp_path):
    # missing parent folders are fine (created when the output is written) and nothing is created now
    assert check_output_path(tmp_path / "missing" / "deeper" / "x.json") == tmp_path / "missing" / "deeper" / "x.json"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="cannot write in '/proc'"):
        check_output_path("/proc/mvt4g-test/x.json")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is not a folder"):
        check_output_path(tmp_path / "file" / "sub" / "x.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output_path(tmp_path / "x.json")
    assert check_output_path(tmp_path / "x.json", overwrite=True) == tmp_path / "x.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "x.json"]  # the write test left nothing


def test_writers_create_missing_parent_folders(tmp_path):
    from mvt4g.fs.atomic import write_text_atomic

    write_text_atomic(tmp_path / "a" / "b" / "x.txt", "1")
    assert (tmp_path / "a" / "b" / "x.txt").read_text() == "1"
    with atomic_dir(tmp_path / "c" / "d") as tmp:
        (tmp / "x").write_text("2")
    assert (tmp_path / "c" / "d" / "x").read_text() == "2"


KILLED = """
import os, sys
from mvt4g.fs.atomic import atomic_dir, atomic_path
with atomic_path(sys.argv[1] + "/out.mp4") as tmp:
    tmp.write_bytes(b"half a video")
    with atomic_dir(sys.argv[1] + "/scene_0000") as d:
        (d / "videos").mkdir()
        (d / "videos" / "cam01.mp4").write_bytes(b"half")
        os.kill(os.getpid(), 9)
"""


def _killed_writer(folder):
    """Temporaries as kill -9 leaves them (a real process, killed in the middle of both writes)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", KILLED, str(folder)], check=False)
    assert proc.returncode == -9
    return sorted(p.name for p in folder.iterdir())


def test_temporaries_of_a_killed_writer_are_hidden_and_never_look_like_outputs(tmp_path):
    from mvt4g.fs.atomic import is_temp_name

    left = _killed_writer(tmp_path)
    assert len(left) == 2 and all(n.startswith(".") and is_temp_name(n) for n in left), left
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "scene_0000").exists()
    # A half-written clip folder sits one level down: a dataset scan (FOLDER/*/videos) does not see a clip.
    assert not any((p / "videos").is_dir() for p in tmp_path.iterdir())
    assert not is_temp_name("out.mp4") and not is_temp_name(".out.mp4") and not is_temp_name("scene_0000")


def test_the_next_write_removes_a_dead_writers_temporaries(tmp_path):
    from mvt4g.fs.atomic import remove_stale_temps

    _killed_writer(tmp_path)
    with atomic_path(tmp_path / "out.mp4") as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".mp4")) == ["out.mp4"]
    with atomic_dir(tmp_path / "scene_0000") as d:
        (d / "meta.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "scene_0000"]
    assert remove_stale_temps(tmp_path / "out.mp4") == []


def test_a_live_writers_temporaries_and_other_outputs_are_left_alone(tmp_path):
    from mvt4g.fs.atomic import remove_stale_temps

    with atomic_path(tmp_path / "out.mp4") as tmp:  # this process: alive
        tmp.write_bytes(b"x")
        assert remove_stale_temps(tmp_path / "out.mp4") == [] and tmp.exists()
        os.replace(tmp, tmp_path / "keep.bin")
        dead = tmp_path / tmp.name.replace(f"-{os.getpid()}-", "-999999999-")
        dead.write_bytes(b"y")
        assert remove_stale_temps(tmp_path / "out.txt") == [] and dead.exists()  # another output's
        assert remove_stale_temps(tmp_path / "out.mp4") == [dead] and not dead.exists()
        tmp.write_bytes(b"z")
