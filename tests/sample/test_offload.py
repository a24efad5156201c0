"""Offloading (mvt4g.sample.offload, `generate --offload`): which weights are on the execution
device while each module runs and between runs, and the same video in every mode.

On a CPU the execution device is the storage device, so a move would be invisible: the tests
give the offloader a ``transfer`` that copies (a new storage, as a copy to a GPU would be), and
a module counts as "on the device" while its parameters are such copies rather than the
stored tensors. Without the hooks and stages moving weights, every check below fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import preset_trajectory
from mvt4g.errors import InputError
from mvt4g.model.autoencoder import build_autoencoder
from mvt4g.model.config import preset
from mvt4g.model.mvt4g_model import MVT4GModel
from mvt4g.model.placement import PLACEMENT, streaming_units
from mvt4g.sample.offload import OFFLOAD_MODES, Offloader
from mvt4g.sample.pipeline import GeneratePipeline
from mvt4g.sample.reference import PreparedReference
from mvt4g.sample.sampler import SamplingSettings
from mvt4g.sample.targets import target_cameras

FRAMES, H, W = 5, 16, 16  # tiny preset: temporal factor 4, token stride 4
pytestmark = pytest.mark.usefixtures("one_thread")


class CopyingTransfer:
    """Stands in for a host -> device copy: a fresh tensor each time, counted."""

    def __init__(self):
        self.calls = 0

    def __call__(self, tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        self.calls += 1
        return tensor.clone()


def _tiny(seed: int = 0) -> MVT4GModel:
    torch.manual_seed(seed)
    model = MVT4GModel(preset("tiny")).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-zero camera path and heads, so every module changes the output
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _stored(module: nn.Module) -> dict[int, int]:
    """Where each parameter's data lives now (its storage address), by parameter."""
    return {id(p): p.data_ptr() for p in module.parameters()}


def _moved(module: nn.Module, stored: dict[int, int]) -> list[bool]:
    return [p.data_ptr() != stored[id(p)] for p in module.parameters()]


def _inputs(model: MVT4GModel, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sf = model.config.autoencoder.spatial_factor
    latent = (1, model.config.backbone.in_channels, 2, H // sf, W // sf)
    plucker = torch.randn(1, 2, 2, 6, H, W, generator=g)
    return torch.randn(latent, generator=g), torch.randn(latent, generator=g), torch.tensor([500.0]), plucker


def test_sequential_puts_each_block_on_the_device_only_for_its_own_forward():
    model = _tiny()
    ref, noisy, t, plucker = _inputs(model)
    with torch.no_grad():
        expected = model(ref, noisy, t, plucker=plucker, tap=False).velocity
    stored = _stored(model)
    transfer = CopyingTransfer()
    offload = Offloader("sequential", "cpu", transfer=transfer)
    offload.add("dit", model, blocks=model.transformer.blocks)
    blocks = list(model.transformer.blocks)
    seen = []

    def spy(index):
        def hook(module, args):  # registered after the offloader's: runs after its pre-hook
            seen.append((index, [all(_moved(b, stored)) if i == index else any(_moved(b, stored))
                                 for i, b in enumerate(blocks)]))  # fmt: skip

        return hook

    small = {}  # the modules around the blocks: own weights on the device while they run?

    def spy_small(module, args):
        small[module] = all(p.data_ptr() != stored[id(p)] for p in module.parameters(recurse=False))

    spies = [b.register_forward_pre_hook(spy(i)) for i, b in enumerate(blocks)]
    spies += [u.register_forward_pre_hook(spy_small) for u, whole in streaming_units(model, blocks) if not whole]
    with torch.no_grad():
        out = model(ref, noisy, t, plucker=plucker, tap=False).velocity
    assert [i for i, _ in seen] == list(range(len(blocks)))
    for index, flags in seen:  # the running block entirely moved in, every other block not at all
        assert flags == [i == index for i in range(len(blocks))], (index, flags)
    wan = model.transformer
    assert {wan.patch_embedding, wan.proj_out, model.null_text} <= set(small) and all(small.values()), small
    assert not any(_moved(model, stored))  # between forwards: all back in storage
    assert torch.equal(out, expected)
    for s in spies:
        s.remove()
    offload.remove()
    calls = transfer.calls
    with torch.no_grad():
        model(ref, noisy, t, plucker=plucker, tap=False)
    assert transfer.calls == calls  # hooks removed: nothing moves


def test_sequential_streams_the_small_modules_around_the_blocks_too():
    model = _tiny()
    units = streaming_units(model, model.transformer.blocks)
    covered = set()
    for unit, whole in units:
        tensors = [*unit.parameters(), *unit.buffers()] if whole else [*unit.parameters(recurse=False), *unit.buffers(recurse=False)]
        covered |= {id(p) for p in tensors}
    assert covered == {id(p) for p in [*model.parameters(), *model.buffers()]}  # every weight belongs to a unit
    assert sum(whole for _, whole in units) == len(model.transformer.blocks)


def test_model_offload_moves_a_component_in_for_its_stage_only():
    model = _tiny()
    stored = _stored(model)
    transfer = CopyingTransfer()
    offload = Offloader("model", "cpu", transfer=transfer)
    offload.add("dit", model, blocks=model.transformer.blocks)
    assert not any(_moved(model, stored))
    ref, noisy, t, plucker = _inputs(model)
    with torch.no_grad():
        expected = model(ref, noisy, t, plucker=plucker, tap=False).velocity  # outside a stage: stored weights
        with offload.stage("dit"):
            assert all(_moved(model, stored))
            inside = model(ref, noisy, t, plucker=plucker, tap=False).velocity
            assert transfer.calls == len(list(model.parameters())) + len(list(model.buffers()))
    assert not any(_moved(model, stored))
    assert torch.equal(inside, expected)


def test_without_offload_only_the_text_encoder_is_staged():
    assert PLACEMENT["none"] == {"text_encoder": "staged", "dit": "resident", "autoencoder": "resident"}
    encoder, dit = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)), nn.Linear(3, 3)
    transfer = CopyingTransfer()
    offload = Offloader("none", "cpu", transfer=transfer)
    offload.add("dit", dit)
    offload.add("text_encoder", encoder)
    stored = _stored(encoder)
    with offload.stage("dit"):
        pass
    assert transfer.calls == 0  # resident: never copied
    with offload.stage("text_encoder"):
        assert all(_moved(encoder, stored))
    assert not any(_moved(encoder, stored))


def test_a_bad_mode_is_an_input_error():
    with pytest.raises(InputError, match="--offload must be one of none, model, sequential"):
        Offloader("cpu", "cpu")
    with pytest.raises(InputError, match="--offload"):
        GeneratePipeline.from_modules(_tiny(), build_autoencoder(preset("tiny").autoencoder), offload="all")


def _reference() -> PreparedReference:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (FRAMES, H, W, 3), dtype=np.uint8)
    K = Intrinsics.from_fov(55.0, W, H).K
    return PreparedReference(None, frames, 10.0, ViewCameras(W, H, K, np.tile(np.eye(4), (FRAMES, 1, 1))), {})


def test_every_offload_mode_generates_the_same_video():
    ref = _reference()
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-left", FRAMES))
    videos = {}
    for mode in OFFLOAD_MODES:
        model, ae = _tiny(), build_autoencoder(preset("tiny").autoencoder)
        pipe = GeneratePipeline.from_modules(model, ae, offload=mode)
        result = pipe.generate(ref, tgt, settings=SamplingSettings(steps=2), seed=3)
        assert result.info["offload"] == mode
        assert pipe.offloader.placement == {k: v for k, v in PLACEMENT[mode].items() if k != "text_encoder"}
        videos[mode] = result.frames
        pipe.remove_offload()
    assert np.array_equal(videos["none"], videos["model"]) and np.array_equal(videos["none"], videos["sequential"])


def test_sequential_streams_a_umt5_encoder_layer_by_layer():
    """The text encoder's path: a transformers model (keyword inputs, a ModelOutput back)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.UMT5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4)
    encoder = transformers.UMT5EncoderModel(config).eval()
    ids, mask = torch.randint(0, 64, (1, 7)), torch.ones(1, 7, dtype=torch.long)
    with torch.no_grad():
        expected = encoder(ids, mask).last_hidden_state
    stored = _stored(encoder)
    offload = Offloader("sequential", "cpu", transfer=CopyingTransfer())
    offload.add("text_encoder", encoder, blocks=encoder.encoder.block)
    ran = []
    for layer in encoder.encoder.block:
        layer.register_forward_pre_hook(lambda m, a: ran.append(all(_moved(m, stored))))
    with torch.no_grad():
        out = encoder(ids, mask).last_hidden_state
    assert ran == [True, True] and not any(_moved(encoder, stored))
    assert torch.equal(out, expected)


class _Tokenizer:
    """Stands in for umT5's tokenizer (a real one needs its files): a code per character."""

    def __call__(self, prompts, *, max_length=512, **kwargs):
        ids = torch.zeros(len(prompts), max_length, dtype=torch.long)
        for i, prompt in enumerate(prompts):
            codes = [1 + ord(c) % 60 for c in prompt][: max_length - 1] + [1]
            ids[i, : len(codes)] = torch.tensor(codes)
        return type("Batch", (), {"input_ids": ids, "attention_mask": (ids > 0).long()})


def test_every_offload_mode_guides_on_the_same_prompt_embeddings():
    """With a (tiny, random) umT5: prompt encoding, guidance and sampling give the same video
    whether the text encoder is staged (none, model) or streamed layer by layer (sequential)."""
    transformers = pytest.importorskip("transformers")
    ref = _reference()
    tgt = target_cameras(ref.cameras, preset_trajectory("pan-right", FRAMES))
    videos = {}
    for mode in OFFLOAD_MODES:
        torch.manual_seed(0)
        text_dim = preset("tiny").backbone.text_dim
        encoder = transformers.UMT5EncoderModel(transformers.UMT5Config(
            vocab_size=64, d_model=text_dim, d_kv=8, d_ff=64, num_layers=2, num_heads=4))  # fmt: skip
        pipe = GeneratePipeline.from_modules(_tiny(), build_autoencoder(preset("tiny").autoencoder),
                                             text_encoder=(_Tokenizer(), encoder), offload=mode)  # fmt: skip
        assert pipe.offloader.placement["text_encoder"] == PLACEMENT[mode]["text_encoder"]
        result = pipe.generate(ref, tgt, settings=SamplingSettings(steps=2, guidance=3.0), seed=1, prompt="a red ball")
        assert result.info["guidance"]["applied"] is True
        videos[mode] = result.frames
    assert np.array_equal(videos["none"], videos["model"]) and np.array_equal(videos["none"], videos["sequential"])
