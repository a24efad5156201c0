"""Tap the self-attention Q and K of several blocks in ONE forward pass.

The backbone records Q/K of one block (``config.tap_layer``) through its
:class:`~mvt4g.model.attention_tap.TapSelfAttnProcessor`. For the analysis every requested
block's ``attn1`` gets a :class:`LayerTapProcessor` instead: a subclass that computes exactly
the same attention (it calls the parent's ``__call__``, camera hooks included) and hands the
recorded Q and K to a sink as soon as the block has run. The backbone keeps working unchanged:
it sets the camera hooks on whatever ``TapSelfAttnProcessor`` sits on a block, and the model is
called with ``tap=False`` so it does not read the single-layer tap. The original processors
are put back afterwards, whatever happens.

A sink that reduces each layer at once (the analysis runner computes its metrics inside the
sink) keeps one layer's Q/K alive at a time; without a sink the taps are collected and
returned, which costs ``2 x layers x S x H x d`` values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import torch

from mvt4g.errors import InputError
from mvt4g.model.attention_tap import AttentionTap, TapSelfAttnProcessor
from mvt4g.model.camera_encoder import TokenLayout

Sink = Callable[[int, AttentionTap], None]


class LayerTapProcessor(TapSelfAttnProcessor):
    """``TapSelfAttnProcessor`` that always records and passes Q/K of its block to ``sink``.

    ``sink(layer, q, k)`` receives ``[B, S, H, d]`` tensors in DiT sequence order.
    """

    def __init__(self, layer: int, sink: Callable[[int, torch.Tensor, torch.Tensor], None], like: TapSelfAttnProcessor):
        super().__init__()
        self.layer = layer
        self.sink = sink
        # Keep the attention backend the replaced processor was configured with.
        self._attention_backend = like._attention_backend
        self._parallel_config = like._parallel_config

    def __call__(self, attn: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.tap = True
        try:
            out = super().__call__(attn, hidden_states, *args, **kwargs)
            q, k = self.q, self.k
        finally:
            self.q = self.k = None
        self.sink(self.layer, q, k)
        return out


def parse_layers(spec: str | Iterable[int] | None, num_layers: int) -> list[int]:
    """``"all"`` / None, ``"a-b"`` (inclusive), ``"i,j"`` or a mix (``"0-3,7"``) -> sorted 0-based indices.

    Raises :class:`InputError` naming the bad item or the valid range ``0..num_layers-1``.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(num_layers))
    items: list[int] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if match is None or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
                raise InputError(f"bad layer selection {part.strip()!r} in {spec!r} (use all, a-b or i,j; 0-based)")
            lo = int(match.group(1))
            hi = int(match.group(2)) if match.group(2) is not None else lo
            items.extend(range(lo, hi + 1))
    else:
        items = [int(x) for x in spec]
    if not items:
        raise InputError("no layers selected")
    bad = [x for x in items if not 0 <= x < num_layers]
    if bad:
        raise InputError(f"layer {bad[0]} is out of range: the model has {num_layers} layers (0..{num_layers - 1})")
    return sorted(set(items))


class LayerTaps:
    """Run the model once and tap Q/K of ``layers`` (0-based block indices).

    ``taps(reference_latents, noisy_target_latents, timestep, **model_kwargs)`` returns
    ``(output, taps)``: the model's :class:`~mvt4g.model.mvt4g_model.MVT4GOutput` (velocity)
    and ``{layer: AttentionTap}`` with ``q, k [B, 2, F, h, w, H, d]`` (view 0 reference), or an
    empty dict when ``sink(layer, tap)`` consumed them during the pass.
    """

    def __init__(self, model: torch.nn.Module, layers: Iterable[int], sink: Sink | None = None):
        self.model = model
        backbone = model.backbone
        num = len(backbone.transformer.blocks)
        self.layers = parse_layers(list(layers), num)
        self.sink = sink

    def __call__(self, reference_latents: torch.Tensor, noisy_target_latents: torch.Tensor, timestep: torch.Tensor, **kwargs: Any):
        backbone = self.model.backbone
        config = backbone.config
        _, ph, pw = config.backbone.patch_size
        frames, lh, lw = reference_latents.shape[2:5]
        layout = TokenLayout(config.token_order, frames, lh // ph, lw // pw)
        collected: dict[int, AttentionTap] = {}

        def receive(layer: int, q: torch.Tensor, k: torch.Tensor) -> None:
            tap = AttentionTap(q=layout.sequence_to_views(q), k=layout.sequence_to_views(k))
            if self.sink is None:
                collected[layer] = tap
            else:
                self.sink(layer, tap)

        blocks = backbone.transformer.blocks
        originals = {layer: backbone.processor(layer) for layer in self.layers}
        try:
            for layer, original in originals.items():
                blocks[layer].attn1.set_processor(LayerTapProcessor(layer, receive, original))
            output = self.model(reference_latents, noisy_target_latents, timestep, tap=False, **kwargs)
        finally:
            for layer, original in originals.items():
                blocks[layer].attn1.set_processor(original)
        return output, collected
