"""The composite MVTrack4Gen model: camera-conditioned Wan DiT + null text + tracking head.

``MVT4GModel(config)(reference_latents, noisy_target_latents, timestep, ...)`` returns an
:class:`MVT4GOutput`:

    velocity      [B, C, F, h_l, w_l]  predicted flow-matching velocity of the target only
    tap           AttentionTap(q, k), each [B, 2, F, h, w, H, d] (view 0 reference, view 1
                  target; tokens after patchify) from block ``config.tap_layer``
    token_stride  pixels per token along x and y (``x_tok = x_px / stride - 0.5``)
    tracks        the tracking head's dict (when the head is on and queries are given)

The submodules (and so the checkpoint's key prefixes) are ``backbone.transformer`` (an
unmodified diffusers ``WanTransformer3DModel``), ``backbone.camera``, ``null_text`` and
``tracking_head`` (None when ``use_tracking_head`` is off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mvt4g.errors import ConfigError
from mvt4g.model.attention_tap import AttentionTap
from mvt4g.model.backbone import CameraConditionedWan
from mvt4g.model.config import ModelConfig
from mvt4g.model.text import NullTextEmbedding


@dataclass
class MVT4GOutput:
    velocity: torch.Tensor
    tap: AttentionTap | None
    token_stride: int
    tracks: dict[str, Any] | None = None


def resolve_tracking_head_config(options: dict[str, Any]):
    """The tracking head's config from a plain dict.

    ``{"preset": "tiny", ...}`` starts from ``TrackingHeadConfig.tiny()`` (``"reference"`` from
    MV-TAP's sizes) and applies the other keys; otherwise the dict holds the fields themselves
    (empty = the reference sizes).
    """
    from mvt4g.model.tracking_head import TrackingHeadConfig

    options = dict(options)
    name = options.pop("preset", None)
    if name is None:
        return TrackingHeadConfig.from_dict(options)
    factory = getattr(TrackingHeadConfig, str(name), None)
    if name not in ("tiny", "reference") or factory is None:
        raise ConfigError(f"unknown tracking head preset {name!r} (choose from: tiny, reference)")
    base = factory().to_dict()
    unknown = set(options) - set(base)
    if unknown:
        raise ConfigError(f"unknown tracking head option(s): {sorted(unknown)}")
    base.update(options)
    return TrackingHeadConfig.from_dict(base)


class MVT4GModel(nn.Module):
    """See the module docstring."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config = config.replace()  # a private copy: the resolved head config is written into it
        config.validate()
        self.backbone = CameraConditionedWan(config)
        self.null_text = NullTextEmbedding(config.text.null_length, config.backbone.text_dim)
        self.tracking_head = None
        if config.use_tracking_head:
            from mvt4g.model.tracking_head import TrackingHead

            head_config = resolve_tracking_head_config(config.tracking_head)
            config.tracking_head = head_config.to_dict()
            self.tracking_head = TrackingHead(head_config, num_attention_heads=config.backbone.num_attention_heads)
            self.tracking_head.gradient_checkpointing = config.gradient_checkpointing
        self.config = config
        self.backbone.config = config

    @property
    def token_stride(self) -> int:
        return self.config.token_stride

    @property
    def transformer(self) -> nn.Module:
        return self.backbone.transformer

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        self.config.gradient_checkpointing = enabled
        self.backbone.gradient_checkpointing = enabled
        if self.tracking_head is not None:
            self.tracking_head.gradient_checkpointing = enabled

    def forward(
        self,
        reference_latents: torch.Tensor,
        noisy_target_latents: torch.Tensor,
        timestep: torch.Tensor,
        *,
        plucker: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
        camera_pose: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        queries: torch.Tensor | None = None,
        image_size: tuple[int, int] | None = None,
        tap: bool = True,
    ) -> MVT4GOutput:
        """Predict the target velocity; tap Q/K; track ``queries`` when the head is on.

        Args:
            reference_latents, noisy_target_latents: ``[B, C, F, h_l, w_l]`` normalised latents.
            timestep: ``[B]`` in Wan's units (``1000 * sigma``).
            plucker: ``[B, 2, F, 6, H, W]`` full-resolution ray maps (view 0 reference), or the
                pair ``(reference, target)`` of ``[B, F, 6, H, W]`` maps.
            camera_pose: ``[B, F, 12]`` ReCamMaster relative poses (``recammaster`` mode).
            text_embeds: ``[B, L, text_dim]``; None uses the learned null embedding.
            queries: ``[B, N, 4]`` (view, latent frame, x_px, y_px) for the tracking head.
            image_size: ``(H, W)`` pixels of the video the queries live in.
            tap: record Q/K (the tracking head needs it).
        """
        batch = reference_latents.shape[0]
        if isinstance(plucker, (tuple, list)):
            plucker = torch.stack(list(plucker), dim=1)
        if text_embeds is None:
            text_embeds = self.null_text(batch)
        want_tracks = self.tracking_head is not None and queries is not None
        out = self.backbone(
            reference_latents,
            noisy_target_latents,
            timestep,
            text_embeds,
            plucker=plucker,
            camera_pose=camera_pose,
            tap=tap or want_tracks,
        )
        tracks = None
        if want_tracks:
            if image_size is None:
                h, w = out.tap.q.shape[3:5]
                image_size = (h * self.token_stride, w * self.token_stride)
            tracks = self.tracking_head(out.tap.q, out.tap.k, queries, image_size)
        return MVT4GOutput(velocity=out.velocity, tap=out.tap, token_stride=self.token_stride, tracks=tracks)
