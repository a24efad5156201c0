"""The Wan DiT with reference + target tokens and camera conditioning (docs/FACTS.md, section 1).

:class:`CameraConditionedWan` holds an unmodified diffusers ``WanTransformer3DModel`` and the
camera modules (:mod:`mvt4g.model.camera_encoder`). Its forward:

1. concatenates clean reference latents and noisy target latents (``[B, C, F, h_l, w_l]``
   each) along the latent-frame axis in the configured order (target first by default,
   as ReCamMaster does), so RoPE's frame index runs over ``0 .. 2F-1``;
2. embeds patches, the single timestep per batch item and the text, with the transformer's
   own modules;
3. runs every block unchanged except for its ``attn1`` processor
   (:class:`~mvt4g.model.attention_tap.TapSelfAttnProcessor`), which adds the block's camera
   term to the self-attention input (the block's normalised, modulated hidden states; the
   place ReCamMaster adds its camera embedding), applies the optional output projector and,
   at ``tap_layer``, records Q and K;
4. applies the output norm and projection to the TARGET tokens only and unpatchifies them:
   the velocity ``[B, C, F, h_l, w_l]``.

Steps 2 and 4 mirror ``WanTransformer3DModel.forward`` (diffusers >= 0.35) op for op; a test
checks the result equals that forward on the concatenated latents when the camera path is
at its initial (zero) state. Gradient checkpointing wraps every block; the tapped one returns
its self-attention's Q/K as outputs (they feed the tracking losses), so only they are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import WanTransformer3DModel
from torch import nn
from torch.utils.checkpoint import checkpoint

from mvt4g.errors import InputError
from mvt4g.model.attention_tap import AttentionTap, TapSelfAttnProcessor
from mvt4g.model.camera_encoder import CameraConditioning, TokenLayout
from mvt4g.model.config import ModelConfig


def _call(function, *args, use_reentrant: bool = False):
    """``function(*args)``: the no-checkpoint twin of ``torch.utils.checkpoint.checkpoint``."""
    return function(*args)


@dataclass
class BackboneOutput:
    """velocity: ``[B, C, F, h_l, w_l]`` for the target; tap: Q/K of ``tap_layer`` (or None)."""

    velocity: torch.Tensor
    tap: AttentionTap | None


class CameraConditionedWan(nn.Module):
    """Wan DiT + camera modules; see the module docstring for the computation."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        b = config.backbone
        self.transformer = WanTransformer3DModel(**b.diffusers_kwargs())
        self.camera = CameraConditioning(
            mode=config.camera.mode,
            dim=b.inner_dim,
            num_layers=b.num_layers,
            token_stride=config.token_stride,
            projection_init=config.camera.projection_init,
            output_projector=config.camera.output_projector or config.camera.mode == "recammaster",
        )
        self.gradient_checkpointing = config.gradient_checkpointing
        self.install_processors()

    # ---- setup ----------------------------------------------------------------------------
    def install_processors(self) -> None:
        """Put a :class:`TapSelfAttnProcessor` on every block's self-attention."""
        for block in self.transformer.blocks:
            block.attn1.set_processor(TapSelfAttnProcessor())

    def processor(self, index: int) -> TapSelfAttnProcessor:
        proc = self.transformer.blocks[index].attn1.processor
        if not isinstance(proc, TapSelfAttnProcessor):
            raise TypeError(f"block {index}'s self-attention processor was replaced ({type(proc).__name__})")
        return proc

    @property
    def token_stride(self) -> int:
        return self.config.token_stride

    # ---- forward --------------------------------------------------------------------------
    def forward(
        self,
        reference_latents: torch.Tensor,
        noisy_target_latents: torch.Tensor,
        timestep: torch.Tensor,
        text_embeds: torch.Tensor,
        *,
        plucker: torch.Tensor | None = None,
        camera_pose: torch.Tensor | None = None,
        tap: bool = True,
    ) -> BackboneOutput:
        """Predict the target's velocity.

        Args:
            reference_latents: clean reference latents ``[B, C, F, h_l, w_l]`` (normalised).
            noisy_target_latents: noisy target latents, same shape.
            timestep: ``[B]`` (or a scalar), Wan's scale: ``1000 * sigma``.
            text_embeds: ``[B, L, text_dim]`` prompt (or null) embeddings.
            plucker: ``[B, 2, F, 6, H, W]`` ray maps, view 0 reference (``plucker`` mode).
            camera_pose: ``[B, F, 12]`` relative target poses (``recammaster`` mode).
            tap: record Q/K of ``config.tap_layer``.
        """
        layout = self._check_inputs(reference_latents, noisy_target_latents)
        batch = reference_latents.shape[0]
        halves = (noisy_target_latents, reference_latents)
        if layout.order != "target_first":
            halves = halves[::-1]
        latents = torch.cat(halves, dim=2)
        timestep = torch.as_tensor(timestep, device=latents.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(batch)
        if timestep.shape != (batch,):
            raise InputError(f"timestep must be one value per batch item ([{batch}]), got {list(timestep.shape)}")
        if text_embeds.ndim != 3 or text_embeds.shape[0] != batch:
            raise InputError(f"text embeddings must be [B, L, text_dim] with B={batch}, got {list(text_embeds.shape)}")

        wan = self.transformer
        rotary_emb = wan.rope(latents)
        hidden = wan.patch_embedding(latents).flatten(2).transpose(1, 2).contiguous()
        temb, timestep_proj, context, _ = wan.condition_embedder(timestep, text_embeds, None, timestep_seq_len=None)
        timestep_proj = timestep_proj.unflatten(1, (6, -1))

        cam_context = self.camera.prepare(layout, batch, plucker=plucker, pose=camera_pose)
        tap_layer = self.config.tap_layer if tap else None
        use_ckpt = self.gradient_checkpointing and torch.is_grad_enabled()
        tapped = None
        try:
            for index in range(len(wan.blocks)):
                args = (hidden, context, timestep_proj, rotary_emb, cam_context)
                if index == tap_layer:
                    # Q/K leave the block as outputs, so the tapped block is checkpointed like the
                    # others: only Q/K are kept, not its attention and feed-forward activations.
                    run = checkpoint if use_ckpt else _call
                    hidden, q, k = run(self._run_tapped_block, index, layout, *args, use_reentrant=False)
                    tapped = AttentionTap(q=layout.sequence_to_views(q), k=layout.sequence_to_views(k))
                elif use_ckpt:
                    hidden = checkpoint(self._run_block, index, layout, False, *args, use_reentrant=False)
                else:
                    hidden = self._run_block(index, layout, False, *args)
        finally:
            for index in range(len(wan.blocks)):
                self.processor(index).clear()

        target = hidden[:, layout.target_slice()]
        shift, scale = (wan.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        target = (wan.norm_out(target.float()) * (1 + scale) + shift).type_as(target)
        target = wan.proj_out(target)
        return BackboneOutput(velocity=self._unpatchify(target, layout), tap=tapped)

    def _run_block(
        self,
        index: int,
        layout: TokenLayout,
        tap: bool,
        hidden: torch.Tensor,
        context: torch.Tensor,
        timestep_proj: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        cam_context: torch.Tensor | None,
    ) -> torch.Tensor:
        # Everything block-specific is set here (not outside) so a checkpoint's recomputation
        # sees the same camera term as the first pass.
        proc = self.processor(index)
        proc.tap = tap
        proc.input_addition = self.camera.block_input(index, cam_context, layout)
        proc.output_projector = self.camera.output_projector(index)
        try:
            return self.transformer.blocks[index](hidden, context, timestep_proj, rotary_emb)
        finally:
            proc.input_addition = None

    def _run_tapped_block(self, index: int, layout: TokenLayout, *args) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The tapped block: its output and the Q, K (``[B, S, H, d]``) its self-attention recorded."""
        hidden = self._run_block(index, layout, True, *args)
        proc = self.processor(index)
        q, k = proc.q, proc.k
        proc.q = proc.k = None  # returned to the caller, not held by the processor
        return hidden, q, k

    def _check_inputs(self, ref: torch.Tensor, tgt: torch.Tensor) -> TokenLayout:
        b = self.config.backbone
        if ref.ndim != 5 or tgt.ndim != 5:
            raise InputError(
                f"latents must be [B, C, F, h, w]; got reference {list(ref.shape)}, target {list(tgt.shape)}"
            )
        if ref.shape != tgt.shape:
            raise InputError(f"reference and target latents differ in shape: {list(ref.shape)} vs {list(tgt.shape)}")
        _, channels, frames, height, width = ref.shape
        if channels != b.in_channels:
            raise InputError(f"latents have {channels} channels, the model expects {b.in_channels}")
        _, ph, pw = b.patch_size
        if height % ph or width % pw:
            raise InputError(f"latent size {height}x{width} is not a multiple of the patch size {ph}x{pw}")
        if 2 * frames > b.rope_max_seq_len:
            raise InputError(f"{2 * frames} latent frames exceed rope_max_seq_len {b.rope_max_seq_len}")
        return TokenLayout(self.config.token_order, frames, height // ph, width // pw)

    def _unpatchify(self, tokens: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """``[B, F*h*w, C*pt*ph*pw]`` -> ``[B, C, F*pt, h*ph, w*pw]`` (Wan's patch order)."""
        pt, ph, pw = self.config.backbone.patch_size
        b = tokens.shape[0]
        x = tokens.reshape(b, layout.frames, layout.height, layout.width, pt, ph, pw, -1)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
