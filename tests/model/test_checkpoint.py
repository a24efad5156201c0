"""Checkpoints (bit-exact safetensors + JSON round trip) and the fine-tuning scope."""

from __future__ import annotations

import json

import pytest
import torch

from mvt4g.errors import InputError, OutputExistsError
from mvt4g.model.checkpoint import (
    from_pretrained,
    load_autoencoder,
    read_config,
    save_pretrained,
)
from mvt4g.model.config import preset
from mvt4g.model.freeze import (
    FINETUNE_GROUPS,
    freeze_for_finetuning,
    parameter_group,
    parameter_report,
)
from mvt4g.model.mvt4g_model import MVT4GModel


def perturbed(model: MVT4GModel, seed: int = 0) -> MVT4GModel:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plucker", "recammaster"])
def test_save_load_is_bit_exact(tmp_path, mode):
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.camera.mode = mode
    cfg.tracking_head = {"preset": "tiny", "iterations": 2}
    model = perturbed(MVT4GModel(cfg)).eval()
    save_pretrained(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key

    g = torch.Generator().manual_seed(3)
    lat = torch.randn(1, 48, 3, 16, 16, generator=g)
    kwargs = {"plucker": torch.randn(1, 2, 3, 6, 32, 32, generator=g), "camera_pose": torch.randn(1, 3, 12, generator=g)}
    queries = torch.tensor([[[0.0, 0.0, 9.0, 9.0], [1.0, 2.0, 30.0, 2.0]]])
    with torch.no_grad():
        x = model(lat, lat * 0.5, torch.tensor([400.0]), queries=queries, **kwargs)
        y = loaded(lat, lat * 0.5, torch.tensor([400.0]), queries=queries, **kwargs)
    assert torch.equal(x.velocity, y.velocity) and torch.equal(x.tap.q, y.tap.q)
    assert torch.equal(x.tracks["coords"][-1], y.tracks["coords"][-1])


def test_bf16_weights_keep_their_dtype(tmp_path):
    model = MVT4GModel(preset("tiny")).to(torch.bfloat16)
    save_pretrained(model, tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())


def test_refuses_to_overwrite_and_reports_bad_directories(tmp_path):
    model = MVT4GModel(preset("tiny"))
    save_pretrained(model, tmp_path / "m")
    with pytest.raises(OutputExistsError):
        save_pretrained(model, tmp_path / "m")
    save_pretrained(model, tmp_path / "m", overwrite=True)
    with pytest.raises(InputError, match="does not exist"):
        from_pretrained(tmp_path / "missing")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not a JSON file"):
        read_config(tmp_path / "m")


@pytest.mark.slow
def test_mismatched_weights_are_an_error(tmp_path):
    save_pretrained(MVT4GModel(preset("tiny")), tmp_path / "m")
    header = json.loads((tmp_path / "m" / "config.json").read_text())
    header["model"]["backbone"]["ffn_dim"] = 64
    (tmp_path / "m" / "config.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match="shape"):
        from_pretrained(tmp_path / "m")
    header["model"]["use_tracking_head"] = False
    header["model"]["backbone"]["ffn_dim"] = 96
    (tmp_path / "m" / "config.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match="unexpected"):
        from_pretrained(tmp_path / "m")


def test_random_wan_vae_is_saved_with_the_model(tmp_path):
    from mvt4g.model.autoencoder import build_autoencoder

    cfg = preset("tiny-wanvae")
    model = MVT4GModel(cfg)
    ae = build_autoencoder(cfg.autoencoder)
    save_pretrained(model, tmp_path / "m", autoencoder=ae)
    again = load_autoencoder(tmp_path / "m")
    for (name, a), b in zip(ae.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_finetuning_scope_freezes_all_but_self_attention_camera_and_head():
    model = MVT4GModel(preset("tiny"))
    report = freeze_for_finetuning(model)
    for name, p in model.named_parameters():
        expect = ".attn1." in name or name.startswith(("backbone.camera.", "tracking_head."))
        assert p.requires_grad == expect, name
    for group, counts in report.groups.items():
        assert counts["trainable"] == (counts["total"] if group in FINETUNE_GROUPS else 0)
    assert report.total == sum(p.numel() for p in model.parameters())
    assert report.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    # Self-attention of a block: 4 linears (dim x dim + dim) and 2 RMSNorm weights.
    cfg = preset("tiny").backbone
    dim, layers = cfg.num_attention_heads * cfg.attention_head_dim, cfg.num_layers
    assert report.groups["self_attention"]["total"] == layers * (4 * (dim * dim + dim) + 2 * dim)
    assert parameter_report(model).to_dict() == report.to_dict()
    with pytest.raises(ValueError):
        parameter_group("something.else")
