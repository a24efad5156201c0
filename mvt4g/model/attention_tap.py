"""The attention tap: Q and K of one block's 3D self-attention, exactly as the attention sees them.

:class:`TapSelfAttnProcessor` replaces diffusers' ``WanAttnProcessor`` on a block's ``attn1``.
It computes the same thing (``to_q/to_k/to_v`` -> RMSNorm across heads -> split heads -> RoPE ->
scaled dot-product attention -> ``to_out``) and, when tapped, keeps the query and key
after RMSNorm and RoPE (the tensors handed to the attention kernel). It also carries the two
hooks the camera conditioning needs: an additive term on its input and an optional
projector on its output (ReCamMaster's injection points), so one processor serves every
block.

Tapped tensors (:class:`AttentionTap`): ``q`` and ``k`` have shape ``[B, V=2, F, h, w, H, d]``:
view 0 is the reference video and view 1 the target, whatever the token order inside the
DiT; ``F`` latent frames, ``h x w`` the token grid after patchify, ``H`` heads of ``d``
channels. Their dtype is the attention's compute dtype (bf16 under mixed precision).
The attention logits of a query token against the keys of latent frame ``j`` of view ``v``
are ``q . k / sqrt(d)``.

Pixel <-> token coordinates. Pixel ``(u, v)`` covers ``[u, u+1) x [v, v+1)``, so its centre is
at ``(u + 0.5, v + 0.5)`` (the project's convention). Token ``(i, j)`` (row, column) covers
pixels ``[j*s, (j+1)*s) x [i*s, (i+1)*s)`` with ``s = token_stride`` (pixels per token:
autoencoder spatial factor x spatial patch, 16 for Wan). Continuous token coordinates put
token centres at integers::

    x_tok = x_px / s - 0.5        y_tok = y_px / s - 0.5
    x_px  = (x_tok + 0.5) * s     y_px  = (y_tok + 0.5) * s

so a pixel position lies on token ``round(x_tok)`` (nearest) and bilinear interpolation
between token centres uses ``floor(x_tok)`` and ``floor(x_tok) + 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn


@dataclass
class AttentionTap:
    """Query and key of the tapped self-attention, ``[B, 2, F, h, w, H, d]`` each (see module doc)."""

    q: torch.Tensor
    k: torch.Tensor

    @property
    def num_heads(self) -> int:
        return self.q.shape[-2]

    @property
    def head_dim(self) -> int:
        return self.q.shape[-1]


def pixel_to_token(xy_px: torch.Tensor, stride: int) -> torch.Tensor:
    """Continuous token coordinates of pixel positions (``x_tok = x_px / stride - 0.5``)."""
    return xy_px / stride - 0.5


def token_to_pixel(xy_tok: torch.Tensor, stride: int) -> torch.Tensor:
    """Inverse of :func:`pixel_to_token`: the pixel position of a token coordinate."""
    return (xy_tok + 0.5) * stride


def apply_wan_rope(x: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """Wan's rotary embedding on interleaved channel pairs.

    ``x`` is ``[B, S, H, d]``; ``freqs_cos`` / ``freqs_sin`` are ``[1, S, 1, d]`` with each
    frequency repeated for the two channels of its pair (diffusers' ``WanRotaryPosEmbed``
    output). Pair ``(x_even, x_odd)`` rotates by the pair's angle. The products run in the
    frequencies' precision (float64 on CPU) and the result is cast back to ``x``'s dtype,
    as diffusers does, so outputs match its processor bit for bit.
    """
    pairs = x.unflatten(-1, (-1, 2))
    x_even, x_odd = pairs[..., 0], pairs[..., 1]
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    rotated = torch.empty_like(x)
    rotated[..., 0::2] = x_even * cos - x_odd * sin
    rotated[..., 1::2] = x_even * sin + x_odd * cos
    return rotated.type_as(x)


class TapSelfAttnProcessor:
    """Self-attention processor for a ``WanAttention`` (``attn1``) with a tap and camera hooks.

    Attributes set by the owner before each call:
        tap: keep ``q``, ``k`` (``[B, S, H, d]``) of the next call in ``self.q``, ``self.k`` (the
            backbone sets it on the processor of ``config.tap_layer``).
        input_addition: ``[B, S, dim]`` added to the processor's input (the block's normalised,
            modulated hidden states) before the projections, or None.
        output_projector: a callable applied after ``to_out`` (ReCamMaster's projector) or None.
    """

    # The attention-dispatch settings diffusers' ``set_attention_backend`` writes on processors.
    _attention_backend = None
    _parallel_config = None

    def __init__(self) -> None:
        self.tap = False
        self.input_addition: torch.Tensor | None = None
        self.output_projector: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.q: torch.Tensor | None = None
        self.k: torch.Tensor | None = None

    def clear(self) -> None:
        """Drop recorded tensors and per-call inputs (frees memory between steps)."""
        self.q = self.k = None
        self.input_addition = None

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attn.add_k_proj is not None:
            raise ValueError("TapSelfAttnProcessor handles self-attention (attn1) only")
        if self.input_addition is not None:
            hidden_states = hidden_states + self.input_addition.to(hidden_states.dtype)

        if getattr(attn, "fused_projections", False):
            query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        # RMSNorm runs across all heads (Wan's qk_norm="rms_norm_across_heads"), then heads split.
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = apply_wan_rope(query, *rotary_emb)
            key = apply_wan_rope(key, *rotary_emb)
        if self.tap:
            self.q, self.k = query, key

        out = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        out = out.flatten(2, 3).type_as(query)
        out = attn.to_out[1](attn.to_out[0](out))
        if self.output_projector is not None:
            out = self.output_projector(out)
        return out
