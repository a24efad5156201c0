"""Camera encoders and the per-block camera terms added to the DiT's self-attention input.

Two conditioning modes (``CameraConfig.mode``):

``plucker`` (the paper, App. B.1): the Plücker ray maps of both views at full pixel
resolution, ``[B, 2, F, 6, H, W]`` (view 0 reference, view 1 target, one map per latent frame),
go through ONE shared ``Conv2d(6, dim, kernel=stride=s)`` with ``s`` the token stride, so each
output sits on one token; the conv starts at zero, so at initialisation the camera path adds
nothing. Block ``l`` adds ``P_l(features)`` to its self-attention input, ``P_l`` a
``Linear(dim, dim)`` (identity or zero init). ``h' = h + P_l(CamEnc([r_ref, r_tgt]))``.

``recammaster`` (ReCamMaster): block ``l`` has ``Linear(12, dim)`` (zero init) on the flattened
relative target pose ``[R|t]`` (3x4, row-major) of each latent frame, ``[B, F, 12]``; the
embedding of latent frame ``f`` is added to every token of frame ``f`` of BOTH views.

Either mode may carry ReCamMaster's ``projector``: a per-block ``Linear(dim, dim)`` (identity
init) on the self-attention output.

Layouts: a "view grid" tensor is ``[B, 2, F, h, w, C]``; the DiT's token sequence is
``[B, S, C]`` with ``S = 2 F h w`` in the order given by :class:`TokenLayout`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mvt4g.errors import InputError


@dataclass(frozen=True)
class TokenLayout:
    """Where each view's tokens sit in the DiT sequence.

    The sequence is two blocks of ``F*h*w`` tokens, each in (frame, row, column) order;
    ``order="target_first"`` puts the target block first (ReCamMaster).
    """

    order: str
    frames: int
    height: int
    width: int

    @property
    def tokens_per_view(self) -> int:
        return self.frames * self.height * self.width

    @property
    def target_index(self) -> int:
        """Position (0 or 1) of the target block in the sequence."""
        return 0 if self.order == "target_first" else 1

    def target_slice(self) -> slice:
        n = self.tokens_per_view
        start = self.target_index * n
        return slice(start, start + n)

    def views_to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2, F, h, w, ...]`` (view 0 = reference) -> ``[B, S, ...]`` in DiT order."""
        ref, tgt = x[:, 0], x[:, 1]
        first, second = (tgt, ref) if self.order == "target_first" else (ref, tgt)
        both = torch.stack([first, second], dim=1)
        return both.flatten(1, 4)

    def sequence_to_views(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, ...]`` in DiT order -> ``[B, 2, F, h, w, ...]`` with view 0 = reference."""
        grid = x.unflatten(1, (2, self.frames, self.height, self.width))
        if self.order == "target_first":
            grid = grid.flip(1)
        return grid


def _identity_linear(dim: int) -> nn.Linear:
    layer = nn.Linear(dim, dim)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
        layer.bias.zero_()
    return layer


def _zero_linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class PluckerEncoder(nn.Module):
    """Full-resolution Plücker maps -> one feature per token: ``Conv2d(6, dim, s, stride=s)``.

    ``forward`` maps ``[B, V, F, 6, H, W]`` to ``[B, V, F, H/s, W/s, dim]``.
    """

    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(6, dim, kernel_size=stride, stride=stride)
        # Zero-initialised so that camera conditioning starts as an exact no-op.
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, rays: torch.Tensor) -> torch.Tensor:
        if rays.ndim != 6 or rays.shape[3] != 6:
            raise InputError(f"Plücker maps must be [B, V, F, 6, H, W], got {list(rays.shape)}")
        b, v, f, _, h, w = rays.shape
        if h % self.stride or w % self.stride:
            raise InputError(f"Plücker map size {h}x{w} is not a multiple of the token stride {self.stride}")
        feats = self.conv(rays.flatten(0, 2).to(self.conv.weight.dtype))
        return feats.unflatten(0, (b, v, f)).permute(0, 1, 2, 4, 5, 3)


class CameraConditioning(nn.Module):
    """Camera modules of the whole DiT: the shared encoder and the per-block layers.

    Use: ``ctx = cam.prepare(layout, plucker=..., pose=...)`` once per forward, then
    ``cam.block_input(i, ctx)`` (the ``[B, S, dim]`` term for block ``i``, or None) inside
    each block, and ``cam.output_projector(i)`` for the optional projector.
    """

    def __init__(
        self,
        *,
        mode: str,
        dim: int,
        num_layers: int,
        token_stride: int,
        projection_init: str = "identity",
        output_projector: bool = False,
    ):
        super().__init__()
        self.mode = mode
        self.dim = dim
        self.num_layers = num_layers
        if mode == "plucker":
            self.plucker_encoder = PluckerEncoder(dim, token_stride)
            make = _identity_linear if projection_init == "identity" else (lambda d: _zero_linear(d, d))
            self.block_projections = nn.ModuleList(make(dim) for _ in range(num_layers))
        elif mode == "recammaster":
            self.pose_encoders = nn.ModuleList(_zero_linear(12, dim) for _ in range(num_layers))
        elif mode != "none":
            raise ValueError(f"unknown camera mode {mode!r}")
        self.output_projectors = (
            nn.ModuleList(_identity_linear(dim) for _ in range(num_layers)) if output_projector else None
        )

    def prepare(
        self,
        layout: TokenLayout,
        batch: int,
        *,
        plucker: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Shared per-forward camera context.

        plucker: ``[B, 2, F, 6, H, W]`` (``plucker`` mode) -> returns ``[B, S, dim]`` features.
        pose: ``[B, F, 12]`` (``recammaster`` mode) -> returns the pose itself.
        """
        if self.mode == "plucker":
            if plucker is None:
                raise InputError("this model is conditioned on Plücker ray maps; none were given")
            expected = (batch, 2, layout.frames, 6, layout.height * self.plucker_encoder.stride)
            if tuple(plucker.shape[:5]) != expected or plucker.shape[5] != layout.width * self.plucker_encoder.stride:
                raise InputError(
                    f"Plücker maps must be [B, 2, F, 6, H, W] = {list(expected) + [layout.width * self.plucker_encoder.stride]}"
                    f" for these latents, got {list(plucker.shape)}"
                )
            return layout.views_to_sequence(self.plucker_encoder(plucker))
        if self.mode == "recammaster":
            if pose is None:
                raise InputError("this model is conditioned on ReCamMaster relative poses [B, F, 12]; none were given")
            if tuple(pose.shape) != (batch, layout.frames, 12):
                raise InputError(f"poses must be [B, F, 12] = {[batch, layout.frames, 12]}, got {list(pose.shape)}")
            return pose
        return None

    def block_input(self, index: int, context: torch.Tensor | None, layout: TokenLayout) -> torch.Tensor | None:
        """The ``[B, S, dim]`` term added to block ``index``'s self-attention input."""
        if context is None:
            return None
        if self.mode == "plucker":
            return self.block_projections[index](context)
        emb = self.pose_encoders[index](context.to(self.pose_encoders[index].weight.dtype))  # [B, F, dim]
        b = emb.shape[0]
        hw = layout.height * layout.width
        # The same per-frame embedding for both views (ReCamMaster repeats it for both halves).
        grid = emb[:, None, :, None, :].expand(b, 2, layout.frames, hw, self.dim)
        return grid.reshape(b, 2 * layout.tokens_per_view, self.dim)

    def output_projector(self, index: int) -> nn.Module | None:
        return None if self.output_projectors is None else self.output_projectors[index]


def recammaster_pose_embedding(c2w_reference0: np.ndarray, c2w_target: np.ndarray) -> np.ndarray:
    """ReCamMaster's camera input: target poses relative to the reference's first camera.

    ``c2w_reference0`` is ``[4, 4]``, ``c2w_target`` ``[F, 4, 4]`` (one per latent frame);
    returns float32 ``[F, 12]``: the rows of ``(inv(ref0) @ c2w_target)[:3, :4]``, flattened.
    """
    from mvt4g.camera.pose import relative_to

    rel = relative_to(c2w_target, c2w_reference0)
    return rel[:, :3, :4].reshape(rel.shape[0], 12).astype(np.float32)
