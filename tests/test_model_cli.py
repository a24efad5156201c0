"""`mvt4g info` and `mvt4g convert recammaster`: output, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import assert_one_line_error
from test_model_convert import make_base, recammaster_source, recammaster_state

from mvt4g.model.checkpoint import from_pretrained


def test_info_json_for_the_wan_preset_is_instant_and_complete(cli):
    result = cli("info", "--preset", "wan2.1-1.3b", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["backbone"] == {
        "layers": 30, "heads": 12, "head_dim": 128, "dim": 1536, "ffn_dim": 8960, "text_dim": 4096, "patch_size": [1, 2, 2],
    }
    assert data["shapes"]["tokens_total"] == 65520
    assert data["shapes"]["tap_qk"] == [2, 21, 30, 52, 12, 128]
    assert data["tap_layer"] == 18 and data["token_stride"] == 16
    # Wan2.1-1.3B's DiT has about 1.42 billion parameters.
    dit = sum(v for k, v in data["parameters"].items() if k not in ("camera", "text", "tracking_head"))
    assert 1.40e9 < dit < 1.44e9
    assert data["parameters_total"] == sum(data["parameters"].values())
    scope = data["parameters"]["self_attention"] + data["parameters"]["camera"] + data["parameters"]["tracking_head"]
    assert data["trainable_in_finetuning"] == scope


def test_info_human_output_goes_to_stderr(cli):
    result = cli("info", "--preset", "tiny")
    assert result.code == 0 and result.stdout == ""
    assert "self_attention" in result.stderr and "tokens_total" in result.stderr


def test_info_bad_input(cli, tmp_path):
    assert_one_line_error(cli("info", "--preset", "huge"), "unknown preset 'huge'")
    assert_one_line_error(cli("info"), "exactly one")
    assert_one_line_error(cli("info", "--model", tmp_path / "nope"), "no such model or run directory")


def test_convert_recammaster_end_to_end(cli, tmp_path):
    source = recammaster_source()
    torch.save(recammaster_state(source), tmp_path / "rcm.ckpt")
    base = make_base(tmp_path)
    out = tmp_path / "converted"
    result = cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", base, "--out", out, "--no-tracking-head", "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["from_checkpoint"] == len(recammaster_state(source)) and summary["camera_mode"] == "recammaster"
    model = from_pretrained(out)
    assert torch.equal(model.backbone.camera.pose_encoders[1].weight, source.backbone.camera.pose_encoders[1].weight)
    info = cli("info", "--model", out, "--json")
    assert info.code == 0 and info.json()["camera_mode"] == "recammaster"
    # The output exists now: refused without --overwrite.
    again = cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", base, "--out", out)
    assert_one_line_error(again, "--overwrite")


def test_convert_bad_input_writes_nothing(cli, tmp_path):
    base = make_base(tmp_path)
    out = tmp_path / "out"
    assert_one_line_error(cli("convert", "recammaster", tmp_path / "missing.ckpt", "--base", base, "--out", out), "does not exist")
    (tmp_path / "notes.ckpt").write_text("hello")
    assert_one_line_error(cli("convert", "recammaster", tmp_path / "notes.ckpt", "--base", base, "--out", out), "weights_only=True")
    torch.save(recammaster_state(recammaster_source()), tmp_path / "rcm.ckpt")
    assert_one_line_error(cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", tmp_path, "--out", out), "Wan directory")
    assert_one_line_error(
        cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", base, "--out", "/proc/mvt4g-no/out"), "cannot write in"
    )
    assert_one_line_error(cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", base, "--out", out, "--camera", "x"))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary leftovers


def test_info_subprocess_exit_code():
    bad = subprocess.run([sys.executable, "-m", "mvt4g", "info", "--preset", "nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
