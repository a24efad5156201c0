"""`mvt4g traj list` and `mvt4g traj show`, run in-process through mvt4g.cli.main.main."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mvt4g.camera.converters import read_multicamvideo_extrinsics
from mvt4g.camera.pose import relative_to
from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory
from mvt4g.cli.main import main

SHARED = Path(__file__).resolve().parents[3] / "shared"
RECAM_FILE = SHARED / "data" / "recammaster_example" / "camera_extrinsics.json"


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["traj", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_json_names_every_preset(capsys):
    rc, out, _ = run(capsys, "list", "--json")
    assert rc == 0
    rows = json.loads(out)["presets"]
    assert [r["name"] for r in rows] == list(PRESET_NAMES)
    assert all(r["description"] for r in rows)


def test_list_prints_a_table_on_stderr(capsys):
    rc, out, err = run(capsys, "list")
    assert rc == 0 and out == ""
    assert all(name in err for name in PRESET_NAMES) and "cam09" in err


def test_show_json_is_exactly_the_trajectory_object(capsys):
    rc, out, err = run(capsys, "show", "pan-right", "--frames", "9", "--json")
    assert rc == 0 and err == ""
    obj = json.loads(out)
    assert list(obj) == ["name", "convention", "pose", "units", "frames", "c2w"]
    assert obj["name"] == "pan-right" and obj["frames"] == 9 and obj["convention"] == "opencv"
    c2w = np.array(obj["c2w"])
    assert c2w.shape == (9, 4, 4)
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    assert np.allclose(c2w[-1, :3, :3], [[c, 0, s], [0, 1, 0], [-s, 0, c]], atol=1e-12)


def test_show_passes_options_to_the_preset(capsys):
    args = ("show", "arc-left", "--angle", "45", "--target-depth", "3", "--path", "circle", "--speed", "ease",
            "--frames", "17", "--json")  # fmt: skip
    rc, out, _ = run(capsys, *args)
    assert rc == 0
    want = preset_trajectory("arc-left", 17, angle=45, target_depth=3, path="circle", speed="ease")
    assert np.allclose(json.loads(out)["c2w"], want, atol=1e-11)
    assert np.allclose(want[-1, :3, 3], [-3 * math.sin(math.pi / 4), 0, 3 - 3 * math.cos(math.pi / 4)])


def test_show_prints_a_summary_without_json(capsys):
    rc, out, err = run(capsys, "show", "arc-left")
    assert rc == 0 and out == ""
    assert "arc-left" in err and "81 frames" in err and "30.00 deg" in err and "x=-2.000" in err


def test_out_file_round_trips_through_show_file(tmp_path, capsys):
    out = tmp_path / "t.json"
    rc, _, err = run(capsys, "show", "translate-left", "--distance", "1.5", "--out", out)
    assert rc == 0 and "wrote" in err
    rc, text, _ = run(capsys, "show", out, "--json")
    assert rc == 0
    obj = json.loads(text)
    written = json.loads(out.read_text())
    assert obj["name"] == "translate-left" and obj["frames"] == written["frames"] == 81
    assert np.allclose(obj["c2w"], written["c2w"], atol=1e-11)
    rc, text, _ = run(capsys, "show", out, "--frames", "5", "--json")
    assert rc == 0
    assert np.allclose(np.array(json.loads(text)["c2w"])[:, :3, 3], np.outer(np.linspace(0, 1, 5), [-1.5, 0, 0]))


def test_out_recammaster_format_reads_back(tmp_path, capsys):
    out = tmp_path / "camera_extrinsics.json"
    rc, _, _ = run(capsys, "show", "tilt-down", "--angle", "25", "--out", out, "--format", "recammaster")
    assert rc == 0
    cams = read_multicamvideo_extrinsics(out)
    rel = relative_to(cams["cam01"], cams["cam01"][0])
    assert np.allclose(rel, preset_trajectory("tilt-down", angle=25), atol=2e-5)


@pytest.mark.skipif(not RECAM_FILE.exists(), reason="../shared/data/recammaster_example is absent")
def test_show_reads_a_camera_from_recammasters_file(capsys):
    rc, out, _ = run(capsys, "show", RECAM_FILE, "--camera", "cam05", "--json")
    assert rc == 0
    c2w = np.array(json.loads(out)["c2w"])
    assert c2w.shape == (81, 4, 4) and c2w[-1, 2, 3] == pytest.approx(2 * 80 / 80.5, abs=1e-4)
    rc, out, err = run(capsys, "show", RECAM_FILE)
    assert rc == 2 and out == "" and "--camera" in err


def test_plot_option_writes_a_png(tmp_path, capsys):
    plot = tmp_path / "p.png"
    rc, _, _ = run(capsys, "show", "zoom-out", "--frames", "21", "--plot", plot)
    assert rc == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("show", "arc-up"), "arc-left, arc-right, zoom-in"),
        (("show", "pan-left", "--distance", "2"), "does not take --distance (it takes --angle, --speed)"),
        (("show", "static", "--speed", "ease"), "it takes no options"),
        (("show", "zoom-in", "--path", "circle"), "does not take --path"),
        (("show", "arc-left", "--angle", "190"), "(0, 180)"),
        (("show", "arc-left", "--frames", "1"), "frames >= 2"),
        (("show", "arc-left", "--camera", "cam01"), "--camera"),
        (("show", "arc-left", "--format", "recammaster"), "give --out"),
        (("show", "arc-left", "--speed", "fast"), "fast"),
        (("show", "missing.json"), "no such trajectory file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, fragment):
    rc, out, err = run(capsys, *args)
    assert rc == 2 and out == ""
    assert fragment in err and err.count("\n") == 1


def test_options_do_not_apply_to_files(tmp_path, capsys):
    path = tmp_path / "t.json"
    assert run(capsys, "show", "pan-left", "--out", path)[0] == 0
    rc, out, err = run(capsys, "show", path, "--angle", "5")
    assert rc == 2 and out == "" and "--angle" in err


def test_outputs_are_checked_before_any_work(tmp_path, capsys):
    existing = tmp_path / "t.json"
    existing.write_text("keep me")
    plot = tmp_path / "p.png"
    rc, out, err = run(capsys, "show", "arc-left", "--out", existing, "--plot", plot)
    assert rc == 2 and "--overwrite" in err and out == ""
    assert existing.read_text() == "keep me" and not plot.exists()
    rc, _, err = run(capsys, "show", "arc-left", "--out", "/proc/mvt4g-no/t.json", "--json")
    assert rc == 2 and "cannot write in" in err
    rc, _, err = run(capsys, "show", "arc-left", "--plot", tmp_path / "p.jpg")
    assert rc == 2 and ".png" in err
    rc, _, err = run(capsys, "show", "arc-left", "--out", existing, "--overwrite")
    assert rc == 0 and json.loads(existing.read_text())["name"] == "arc-left"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
    rc, _, err = run(capsys, "show", "arc-left", "--out", tmp_path / "no" / "t.json", "--json")
    assert rc == 0 and (tmp_path / "no" / "t.json").is_file()  # missing parent folders are created


def test_end_to_end_subprocess():
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "mvt4g", "traj", "show", "tilt-up", "--frames", "3", "--json"],
        capture_output=True, text=True, cwd=repo, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames"] == 3
