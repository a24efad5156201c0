"""ReCamMaster (DiffSynth naming) -> mvt4g conversion: rename table and round trips."""

from __future__ import annotations

import pickle

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from helpers.recammaster import (
    DIFFSYNTH_NAMES,
    make_base,
    recammaster_source,
    recammaster_state,
    tiny_wan,
)
from safetensors.torch import save_file

from mvt4g.errors import InputError
from mvt4g.model.convert import (
    composite_to_recammaster,
    convert_recammaster,
    diffusers_to_original,
    original_to_diffusers,
    read_checkpoint,
)


def test_rename_table_covers_every_key_and_agrees_with_diffusers():
    model = tiny_wan(num_layers=1)
    state = model.state_dict()
    original = {}
    for key, tensor in state.items():
        name = diffusers_to_original(key)
        assert name is not None, f"diffusers key {key} has no original name"
        assert original_to_diffusers(name) == key
        original[name] = tensor
    assert set(original) == DIFFSYNTH_NAMES
    converted = convert_wan_transformer_to_diffusers(dict(original))
    assert set(converted) == set(state)
    for key, tensor in converted.items():
        assert tensor is state[key] or torch.equal(tensor, state[key])


def test_recammaster_extra_layers_map_onto_camera_modules():
    assert composite_to_recammaster("backbone.camera.pose_encoders.7.weight") == "blocks.7.cam_encoder.weight"
    assert composite_to_recammaster("backbone.camera.output_projectors.12.bias") == "blocks.12.projector.bias"
    assert original_to_diffusers("blocks.1.cam_encoder.weight") is None  # not a Wan key
    assert original_to_diffusers("blocks.1.self_attn.q_proj.weight") is None


@pytest.mark.parametrize("fmt", ["pickle", "safetensors", "lightning"])
def test_conversion_round_trip_is_exact(tmp_path, fmt):
    source = recammaster_source().eval()
    state = recammaster_state(source)
    base = make_base(tmp_path, seed=1)
    if fmt == "safetensors":
        path = tmp_path / "rcm.safetensors"
        save_file(state, str(path))
    elif fmt == "pickle":
        path = tmp_path / "rcm.ckpt"
        torch.save(state, path)
    else:  # a wrapper dict with metadata and a "dit." prefix
        path = tmp_path / "rcm.pt"
        torch.save({"epoch": 3, "state_dict": {"dit." + k: v for k, v in state.items()}}, path)
    model, report = convert_recammaster(path, base, tracking_head=False)
    assert report.from_checkpoint == len(state) and report.from_base == 0 and not report.dropped
    assert model.config.camera.mode == "recammaster" and model.config.tap_layer == 1
    converted = model.state_dict()
    for key, tensor in source.state_dict().items():
        if key.startswith("backbone."):
            assert torch.equal(converted[key], tensor), key

    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 16, 2, 8, 8, generator=g)
    pose = torch.randn(1, 2, 12, generator=g)
    text = torch.randn(1, 6, 32, generator=g)
    with torch.no_grad():
        a = source(lat, lat * 0.3, torch.tensor([250.0]), camera_pose=pose, text_embeds=text).velocity
        b = model.eval()(lat, lat * 0.3, torch.tensor([250.0]), camera_pose=pose, text_embeds=text).velocity
    assert torch.equal(a, b)


def test_partial_checkpoint_is_completed_from_the_base(tmp_path):
    source = recammaster_source()
    state = {k: v for k, v in recammaster_state(source).items() if ".self_attn." in k or "cam_encoder" in k or "projector" in k}
    torch.save(state, tmp_path / "rcm.ckpt")
    base_model = tiny_wan(seed=1)
    model, report = convert_recammaster(tmp_path / "rcm.ckpt", make_base(tmp_path, seed=1), tracking_head=True)
    assert report.from_checkpoint == len(state) and report.from_base > 0
    assert "tracking_head" in report.to_dict()["initialised_modules"]
    ours = model.state_dict()
    src = source.state_dict()
    for key, tensor in base_model.state_dict().items():
        full = "backbone.transformer." + key
        expected = src[full] if ".attn1." in key else tensor
        assert torch.equal(ours[full], expected), key


def test_plucker_mode_keeps_projectors_and_drops_pose_encoders(tmp_path):
    source = recammaster_source()
    torch.save(recammaster_state(source), tmp_path / "rcm.ckpt")
    model, report = convert_recammaster(tmp_path / "rcm.ckpt", make_base(tmp_path), camera="plucker", tracking_head=False)
    assert len(report.dropped) == 2 * 3  # weight + bias of 3 pose encoders
    assert model.config.camera.mode == "plucker" and model.config.camera.output_projector
    assert torch.equal(
        model.backbone.camera.output_projectors[2].weight, source.backbone.camera.output_projectors[2].weight
    )
    assert not model.backbone.camera.plucker_encoder.conv.weight.any()


class _NotATensor:
    pass


def test_bad_checkpoints_are_input_errors(tmp_path):
    base = make_base(tmp_path)
    state = recammaster_state(recammaster_source())

    torch.save({**state, "blocks.0.mystery.weight": torch.zeros(2)}, tmp_path / "extra.ckpt")
    with pytest.raises(InputError, match="match no rename rule"):
        convert_recammaster(tmp_path / "extra.ckpt", base, tracking_head=False)

    torch.save({k: v for k, v in state.items() if not k.startswith("blocks.2.cam_encoder")}, tmp_path / "holes.ckpt")
    with pytest.raises(InputError, match="pose encoders for 2 of 3"):
        convert_recammaster(tmp_path / "holes.ckpt", base, tracking_head=False)

    torch.save({**state, "head.head.weight": torch.zeros(3, 3)}, tmp_path / "shape.ckpt")
    with pytest.raises(InputError, match="shape"):
        convert_recammaster(tmp_path / "shape.ckpt", base, tracking_head=False)

    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="weights_only=True"):
        read_checkpoint(tmp_path / "text.ckpt")

    # An arbitrary pickled object is refused by weights_only=True (never executed).
    with open(tmp_path / "object.ckpt", "wb") as fh:
        pickle.dump({"x": _NotATensor()}, fh, protocol=2)
    with pytest.raises(InputError, match="weights_only=True"):
        read_checkpoint(tmp_path / "object.ckpt")

    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="safetensors"):
        read_checkpoint(tmp_path / "broken.safetensors")

    with pytest.raises(InputError, match="not a diffusers Wan directory"):
        convert_recammaster(tmp_path / "extra.ckpt", tmp_path, tracking_head=False)
