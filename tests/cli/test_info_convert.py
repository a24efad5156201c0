"""`mvt4g info` and `mvt4g convert recammaster`: output, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import assert_one_line_error
from helpers.recammaster import make_base, recammaster_source, recammaster_state

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


@pytest.mark.slow
def test_info_subprocess_exit_code():
    bad = subprocess.run([sys.executable, "-m", "mvt4g", "info", "--preset", "nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


# ---- convert: output folder, autoencoder choice, no absolute paths ---------------------


def _convert(cli, tmp_path, base, out, *extra):
    ckpt = tmp_path / "rcm.ckpt"
    if not ckpt.is_file():
        torch.save(recammaster_state(recammaster_source()), ckpt)
    return cli("convert", "recammaster", ckpt, "--base", base, "--out", out, "--no-tracking-head", "--json", *extra)


def test_convert_creates_missing_parent_folders(cli, tmp_path):
    out = tmp_path / "models" / "deep" / "x"
    result = _convert(cli, tmp_path, make_base(tmp_path), out)
    assert result.code == 0, result.stderr
    assert (out / "model.safetensors").is_file()


def test_convert_refuses_a_base_without_vae_unless_asked_for_a_builtin(cli, tmp_path):
    import json

    base = make_base(tmp_path, vae=False)
    out = tmp_path / "models" / "x"
    assert_one_line_error(_convert(cli, tmp_path, base, out), "no vae/ folder", "--autoencoder")
    assert not out.exists() and not (tmp_path / "models").exists()
    # A 16-channel DiT has no space-to-depth autoencoder (12 s^2 channels): refused, naming the way out.
    assert_one_line_error(_convert(cli, tmp_path, base, out, "--autoencoder", "space-to-depth"), "random-vae")
    result = _convert(cli, tmp_path, base, out, "--autoencoder", "random-vae")
    assert result.code == 0, result.stderr
    assert result.json()["autoencoder"] == "random-vae" and (out / "autoencoder" / "config.json").is_file()
    config = json.loads((out / "config.json").read_text())["model"]
    assert config["autoencoder"]["kind"] == "wan_vae" and config["autoencoder"]["base_dim"] == 16


def test_convert_space_to_depth_on_a_48_channel_base(tmp_path):
    from mvt4g.model.convert import convert_recammaster

    base = make_base(tmp_path, vae=False, in_channels=48)
    model = convert_recammaster_from_scratch(tmp_path, base, convert_recammaster, autoencoder="space-to-depth")
    ae = model.config.autoencoder
    assert (ae.kind, ae.spatial_factor, ae.latent_channels) == ("space_to_depth", 2, 48)


def convert_recammaster_from_scratch(tmp_path, base, convert, **kwargs):
    """A checkpoint holding only ReCamMaster's camera layers (the rest comes from the base)."""
    cfg = recammaster_source().config
    torch.manual_seed(0)
    dim = cfg.backbone.inner_dim
    state = {}
    for i in range(cfg.backbone.num_layers):
        state[f"blocks.{i}.cam_encoder.weight"] = torch.randn(dim, 12)
        state[f"blocks.{i}.cam_encoder.bias"] = torch.randn(dim)
        state[f"blocks.{i}.projector.weight"] = torch.randn(dim, dim)
        state[f"blocks.{i}.projector.bias"] = torch.randn(dim)
    torch.save(state, tmp_path / "cam_only.ckpt")
    model, _ = convert(tmp_path / "cam_only.ckpt", base, tracking_head=False, **kwargs)
    return model


def _text_folders(base):
    # Stand-ins for umT5's folders: only their location matters here (loading them needs transformers).
    for name in ("text_encoder", "tokenizer"):
        (base / name).mkdir()
        (base / name / "config.json").write_text("{}")


def test_converted_model_stores_relative_paths_and_survives_moving_both_folders(cli, tmp_path):
    import shutil

    from mvt4g.model.checkpoint import load_autoencoder, read_config

    first = tmp_path / "first"
    base = make_base(first)
    _text_folders(base)
    out = first / "models" / "x"
    result = _convert(cli, tmp_path, base, out)
    assert result.code == 0, result.stderr
    assert result.json()["base_files"] == "link"
    stored = (out / "config.json").read_text()
    assert str(tmp_path) not in stored  # no absolute path anywhere in the model folder's config
    assert '"../../wan"' in stored
    second = tmp_path / "second"
    shutil.move(str(first), str(second))
    config = read_config(second / "models" / "x")
    assert config.autoencoder.path == str((second / "wan").resolve())
    assert config.text.encoder_path == str((second / "wan").resolve())
    model = from_pretrained(second / "models" / "x")
    autoencoder = load_autoencoder(second / "models" / "x")
    from diffusers import AutoencoderKLWan

    original = AutoencoderKLWan.from_pretrained(str(second / "wan" / "vae"))
    for key, value in original.state_dict().items():
        assert torch.equal(autoencoder.vae.state_dict()[key], value), key
    assert model.config.camera.mode == "recammaster"
    from mvt4g.sample.pipeline import GeneratePipeline

    pipeline = GeneratePipeline(second / "models" / "x", device="cpu")  # what generate loads
    assert pipeline.autoencoder.latent_channels == 16
    # Moving the model alone breaks the relative link: one clear line, not a traceback.
    shutil.move(str(second / "models"), str(tmp_path / "alone"))
    from mvt4g.errors import InputError

    try:
        load_autoencoder(tmp_path / "alone" / "x")
    except InputError as exc:
        assert "--copy" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("a model moved without its base must be refused")


def test_converted_model_with_copy_stands_alone(cli, tmp_path):
    import shutil

    from mvt4g.model.checkpoint import load_autoencoder, read_config

    base = make_base(tmp_path / "src")
    _text_folders(base)
    out = tmp_path / "models" / "x"
    result = _convert(cli, tmp_path, base, out, "--copy")
    assert result.code == 0, result.stderr
    assert result.json()["base_files"] == "copy"
    assert {p.name for p in out.iterdir()} >= {"vae", "text_encoder", "tokenizer", "config.json", "model.safetensors"}
    shutil.rmtree(tmp_path / "src")
    shutil.move(str(out), str(tmp_path / "elsewhere"))
    config = read_config(tmp_path / "elsewhere")
    assert config.autoencoder.path == config.text.encoder_path == str((tmp_path / "elsewhere").resolve())
    assert load_autoencoder(tmp_path / "elsewhere").latent_channels == 16


# ---- info: parameters per component -------------------------------------------------


@pytest.mark.slow
def test_info_counts_parameters_per_component_on_the_meta_device(cli):
    result = cli("info", "--preset", "wan2.1-1.3b", "--json")
    assert result.code == 0, result.stderr
    components = result.json()["components"]
    # diffusers' WanTransformer3DModel for Wan2.1-T2V-1.3B, and its AutoencoderKLWan.
    assert components["backbone"] == 1_418_996_800
    assert components["autoencoder"] == 126_892_531
    # Plücker camera: Conv2d(6, 1536, 16, 16) + 30 Linear(1536, 1536).
    assert components["camera"] == (6 * 16 * 16 * 1536 + 1536) + 30 * (1536 * 1536 + 1536)
    assert components["text"] == 512 * 4096 and components["text_encoder"] is None
    assert components["tracking_head"] == result.json()["parameters"]["tracking_head"]
    human = cli("info", "--preset", "wan2.1-1.3b")
    assert "1,418,996,800" in human.stderr and "126,892,531" in human.stderr
    assert cli("info", "--preset", "tiny", "--json").json()["components"]["autoencoder"] == 0  # space-to-depth


def test_info_components_of_a_converted_model_count_its_base_vae(cli, tmp_path):
    from diffusers import AutoencoderKLWan

    base = make_base(tmp_path)
    out = tmp_path / "x"
    assert _convert(cli, tmp_path, base, out).code == 0
    components = cli("info", "--model", out, "--json").json()["components"]
    vae = AutoencoderKLWan.from_pretrained(str(base / "vae"))
    assert components["autoencoder"] == sum(p.numel() for p in vae.parameters())
    source = recammaster_source()
    assert components["backbone"] == sum(p.numel() for p in source.backbone.transformer.parameters())
    assert components["camera"] == sum(p.numel() for p in source.backbone.camera.parameters())
    assert components["tracking_head"] == 0


def test_model_summary_is_computed_by_the_core_and_printed_by_the_cli(cli):
    """mvt4g.model.summary does the token-grid arithmetic; `info --json` prints exactly its result."""
    from mvt4g.model.config import preset
    from mvt4g.model.summary import model_summary, video_shapes

    shapes = video_shapes(preset("wan2.1-1.3b"))  # 81 x 480 x 832, VAE x8, patch 2: 21 x 30 x 52 tokens
    assert shapes["video"] == [3, 81, 480, 832] and shapes["latents_per_view"] == [16, 21, 60, 104]
    assert shapes["token_grid_per_view"] == [21, 30, 52] and shapes["tokens_per_view"] == 21 * 30 * 52
    assert shapes["tokens_total"] == 2 * 21 * 30 * 52 and shapes["plucker"] == [2, 21, 6, 480, 832]
    summary = model_summary(preset="tiny")
    assert summary["source"] == "preset:tiny" and summary["shapes"] == video_shapes(preset("tiny"))
    assert cli("info", "--preset", "tiny", "--json").json() == summary
