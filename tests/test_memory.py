"""Memory estimates: sizes and counts this machine cannot hold are refused before any work
(exit 2, one line naming the option and the estimate, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_one_line_error

from mvt4g import memory
from mvt4g.errors import InputError


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_estimates_grow_with_every_dimension():
    base = dict(views=4, frames=21, height=96, width=160)
    b = memory.synth_bytes(**base)
    for key in base:
        assert memory.synth_bytes(**{**base, key: base[key] * 2}) > b, key
    assert memory.synth_bytes(**base, workers=2) == 2 * b
    assert memory.synth_bytes(**base, supersample=2) > b
    assert memory.plucker_bytes(frames=21, height=480, width=832) == 2 * 21 * 6 * 480 * 832 * 4
    assert memory.generate_bytes(frames=81, height=480, width=832) == 3 * 2 * 81 * 480 * 832 * 12
    assert memory.trajectory_bytes(frames=81) < memory.trajectory_bytes(frames=810)
    assert memory.demo_bytes(views=4, frames=9, height=32, width=32) >= memory.synth_bytes(views=4, frames=9, height=32, width=32)


def test_usual_sizes_fit_and_absurd_ones_do_not(monkeypatch):
    monkeypatch.setenv("MVT4G_MEMORY_BYTES", str(16 * memory.GIB))
    memory.check_synth(views=4, frames=81, height=480, width=832, supersample=2, points=2048, workers=2)
    memory.check_video(frames=81, height=480, width=832)
    memory.check_trajectory(81)
    with pytest.raises(InputError, match=r"^--size 100000x100000 needs ~[\d,]+ GiB for the frames; this machine has 16 GiB$"):
        memory.check_synth(views=4, frames=21, height=100000, width=100000)
    with pytest.raises(InputError, match=r"^--frames 1000000000 needs"):
        memory.check_video(frames=1000000000, height=32, width=32)


def test_the_limit_is_the_machine_memory(monkeypatch):
    need = memory.synth_bytes(views=2, frames=9, height=32, width=32)
    monkeypatch.setenv("MVT4G_MEMORY_BYTES", str(need))
    memory.check_synth(views=2, frames=9, height=32, width=32)
    monkeypatch.setenv("MVT4G_MEMORY_BYTES", str(need - 1))
    with pytest.raises(InputError, match="this machine has"):
        memory.check_synth(views=2, frames=9, height=32, width=32)
    monkeypatch.setenv("MVT4G_MEMORY_BYTES", "lots")
    with pytest.raises(InputError, match="MVT4G_MEMORY_BYTES"):
        memory.machine_memory_bytes()
    monkeypatch.delenv("MVT4G_MEMORY_BYTES")
    assert memory.machine_memory_bytes() > 2**28


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["synth", "--size", "100000x100000"], "--size 100000x100000 needs ~"),
        (["synth", "--frames", "1000000000"], "--frames 1000000000 needs ~"),
        (["synth", "--size", "20000x20000", "--workers", "64"], "--size 20000x20000 needs ~"),
        (["demo", "--size", "100000x100000"], "--size 100000x100000 needs ~"),
        (["demo", "--frames", "1000000001"], "--frames 1000000001 needs ~"),
    ],
)
def test_absurd_sizes_are_refused_before_any_output(cli, tmp_path, args, needle):
    out = tmp_path / "out"
    result = cli(*args, "--out", out)
    assert_one_line_error(result, needle, "this machine has")
    assert _listing(tmp_path) == []


def test_traj_show_absurd_frames(cli, tmp_path):
    result = cli("traj", "show", "pan-right", "--frames", "1000000000", "--out", tmp_path / "t.json")
    assert_one_line_error(result, "--frames 1000000000 needs ~", "camera poses")
    assert _listing(tmp_path) == []


def test_plucker_absurd_size(cli, make_clip, tmp_path):
    clip = make_clip()
    before = _listing(tmp_path)
    result = cli("plucker", clip, "--size", "100000x100000")
    assert_one_line_error(result, "--size 100000x100000 needs ~", "ray maps")
    assert _listing(tmp_path) == before


def test_generate_absurd_size_fails_before_loading_the_model(cli, tmp_path, monkeypatch):
    import numpy as np

    import mvt4g.sample.pipeline as pipeline
    from mvt4g.io.video import write_video
    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    model = tmp_path / "tiny"
    save_pretrained(MVT4GModel(preset("tiny")), model)
    video = write_video(tmp_path / "in.mp4", np.zeros((9, 32, 32, 3), np.uint8), fps=10)

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(pipeline, "from_pretrained", no_load)
    before = _listing(tmp_path)
    result = cli("generate", video, "--traj", "arc-left", "--model", model, "--size", "40000x40000", "--frames", "17",
                 "--out-dir", tmp_path / "gen")  # fmt: skip
    assert_one_line_error(result, "--size 40000x40000 needs ~")
    assert _listing(tmp_path) == before
