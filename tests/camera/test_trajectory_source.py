"""One --traj rule set: `traj show` and `generate --traj` resolve values through
mvt4g.camera.trajectory_source, so they accept and refuse the same ones with the same words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error

from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory
from mvt4g.camera.trajectory_files import pick_camera, trajectory_json
from mvt4g.camera.trajectory_source import resolve_trajectories, resolve_trajectory
from mvt4g.errors import InputError

RECAM_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "recammaster_example" / "camera_extrinsics.json"


def test_presets_and_files_resolve_to_poses_at_any_frame_count(tmp_path):
    f = tmp_path / "my path.json"
    f.write_text(json.dumps(trajectory_json("tilt", preset_trajectory("tilt-up", 81))))
    arc, fil = resolve_trajectories(["arc-left", str(f)])
    assert (arc.name, arc.output_name, arc.source, arc.preset) == ("arc-left", "arc-left", "preset:arc-left", "arc-left")
    assert np.allclose(arc.poses(17)[0], preset_trajectory("arc-left", 17)) and arc.poses(17)[1] is None
    assert (fil.name, fil.output_name, fil.preset) == ("tilt", "my_path", None)
    poses, note = fil.poses(9)
    assert poses.shape == (9, 4, 4) and "resampled to 9" in note
    opts = resolve_trajectory("arc-left", options={"angle": 45, "path": "circle", "speed": None})
    assert np.allclose(opts.poses(9)[0], preset_trajectory("arc-left", 9, angle=45, path="circle"))


@pytest.mark.parametrize(
    "values, kwargs, fragment",
    [
        (["arc-lft"], {}, "unknown trajectory preset 'arc-lft' and no such file"),
        (["missing.json"], {}, "no such trajectory file"),
        (["arc-left,"], {}, "without empty entries"),
        (["arc-left", "arc-left"], {}, "share output names"),
        (["arc-left"], {"camera": "cam01"}, "--camera cam01 only applies"),
        (["pan-left"], {"options": {"distance": 2.0}}, "does not take --distance (it takes --angle, --speed)"),
        (["static"], {"options": {"speed": "ease"}}, "it takes no options"),
    ],
)
def test_bad_values_are_one_input_error(values, kwargs, fragment):
    with pytest.raises(InputError) as err:
        resolve_trajectories(values, **kwargs)
    assert fragment in str(err.value)


def test_the_unknown_preset_message_lists_every_preset():
    with pytest.raises(InputError) as err:
        resolve_trajectory("nope")
    assert all(name in str(err.value) for name in PRESET_NAMES)


def test_pick_camera_is_one_rule():
    cams = {"cam01": 1, "cam02": 2}
    assert pick_camera(cams, "cam02", path=Path("x.json")) == "cam02"
    assert pick_camera({"cam07": 7}, None, path=Path("x.json")) == "cam07"
    with pytest.raises(InputError, match=r"holds cameras cam01, cam02: choose one \(--camera\)"):
        pick_camera(cams, None, path=Path("x.json"))
    with pytest.raises(InputError, match="no view 'cam09'"):
        pick_camera(cams, "cam09", path=Path("x.json"), kind="view")


# --- the two commands agree ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def generate_world(tmp_path_factory):
    """A reference video and an existing --out: a value generate accepts gets as far as the output
    check ("exists"), one it refuses stops at the trajectory, before any model is loaded."""
    from mvt4g.io.video import write_video

    root = tmp_path_factory.mktemp("agree")
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    video = write_video(root / "ref.mp4", frames, fps=10)
    out = root / "taken.mp4"
    out.write_bytes(b"keep")
    traj = root / "pan.json"
    traj.write_text(json.dumps(trajectory_json("pan", preset_trajectory("pan-left", 21))))
    return {"video": video, "out": out, "traj": traj}


def _values(world):
    accepted = [(["arc-left"], None), ([str(world["traj"])], None)]
    refused = [(["arc-lft"], "unknown trajectory preset 'arc-lft'"), ([str(world["traj"].with_name("nope.json"))], "no such trajectory file"),
               (["arc-left"], "--camera"), ([str(world["traj"])], "--camera"), (["zoom-in,"], "empty entries")]  # fmt: skip
    if RECAM_FILE.is_file():
        accepted.append(([str(RECAM_FILE), "--camera", "cam09"], None))
        refused.append(([str(RECAM_FILE)], "choose one (--camera)"))
    return accepted, refused


def test_traj_show_and_generate_accept_and_refuse_the_same_values(cli, generate_world):
    w = generate_world
    accepted, refused = _values(w)
    gen = ["generate", w["video"], "--model", "mvtrack4gen", "--out", w["out"]]
    for args, _ in accepted:
        value, *rest = args
        assert cli("traj", "show", value, *rest, "--json").code == 0, args
        assert_one_line_error(cli(*gen, "--traj", value, *rest), "exists")
    for args, needle in refused:
        value, *rest = args
        extra = ["--camera", "cam01"] if needle == "--camera" else []
        shown = cli("traj", "show", value, *rest, *extra)
        generated = cli(*gen, "--traj", value, *rest, *extra)
        assert_one_line_error(shown, needle)
        assert_one_line_error(generated, needle)
        assert shown.stderr == generated.stderr  # the same words
    assert w["out"].read_bytes() == b"keep"
