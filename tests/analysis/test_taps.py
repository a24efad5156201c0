"""Several layers tapped in one forward pass reproduce the model's single-layer tap exactly."""

from __future__ import annotations

import pytest
import torch

from mvt4g.analysis.taps import LayerTapProcessor, LayerTaps, parse_layers
from mvt4g.errors import InputError
from mvt4g.model.attention_tap import TapSelfAttnProcessor
from mvt4g.model.config import preset
from mvt4g.model.mvt4g_model import MVT4GModel

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: conftest.one_thread


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.use_tracking_head = False
    model = MVT4GModel(cfg).eval()
    # Non-zero camera path so the processors' camera hooks matter.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.backbone.camera.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    frames = 3
    ref = torch.randn(2, 48, frames, 16, 16, generator=g)
    tgt = torch.randn(2, 48, frames, 16, 16, generator=g)
    rays = torch.randn(2, 2, frames, 6, 32, 32, generator=g)
    t = torch.tensor([900.0, 250.0])
    return model, (ref, tgt, t), {"plucker": rays}


@pytest.mark.parametrize("order", ["target_first", "reference_first"])
def test_multi_layer_tap_equals_single_layer_taps(tiny, order):
    model, args, kwargs = tiny
    model.config.token_order = order
    try:
        with torch.no_grad():
            output, taps = LayerTaps(model, [0, 1, 2])(*args, **kwargs)
            assert sorted(taps) == [0, 1, 2]
            for layer in range(3):
                model.config.tap_layer = layer
                single = model(*args, **kwargs)
                assert torch.equal(single.tap.q, taps[layer].q)
                assert torch.equal(single.tap.k, taps[layer].k)
                assert torch.equal(single.velocity, output.velocity)
    finally:
        model.config.token_order = "target_first"
        model.config.tap_layer = 1
    b = model.config.backbone
    assert taps[2].q.shape == (2, 2, 3, 8, 8, b.num_attention_heads, b.attention_head_dim)


def test_sink_receives_layers_in_order_and_processors_are_restored(tiny):
    model, args, kwargs = tiny
    before = [model.backbone.processor(i) for i in range(3)]
    seen = []
    with torch.no_grad():
        _, taps = LayerTaps(model, [2, 0], sink=lambda layer, tap: seen.append((layer, tap.q.shape)))(*args, **kwargs)
    assert taps == {} and [s[0] for s in seen] == [0, 2]
    after = [model.backbone.processor(i) for i in range(3)]
    assert all(a is b for a, b in zip(before, after))
    assert all(type(p) is TapSelfAttnProcessor for p in after)

    def failing(layer, tap):
        raise RuntimeError("sink failed")

    with torch.no_grad(), pytest.raises(RuntimeError, match="sink failed"):
        LayerTaps(model, [1], sink=failing)(*args, **kwargs)
    assert model.backbone.processor(1) is before[1]
    assert not isinstance(model.backbone.processor(1), LayerTapProcessor)


def test_parse_layers():
    assert parse_layers("all", 4) == [0, 1, 2, 3]
    assert parse_layers(None, 2) == [0, 1]
    assert parse_layers("1-2", 4) == [1, 2]
    assert parse_layers("3, 0,1-2,2", 5) == [0, 1, 2, 3]
    assert parse_layers([2, 1], 3) == [1, 2]
    with pytest.raises(InputError, match="out of range: the model has 3 layers"):
        parse_layers("1-3", 3)
    for bad in ("x", "2-1", "1-", "-1", "1,,2", ""):
        with pytest.raises(InputError):
            parse_layers(bad, 5)
