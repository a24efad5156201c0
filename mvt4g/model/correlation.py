"""Multi-scale local 4D correlation between DiT queries and keys (paper Sec. 5.2, App. B.2).

For a track n, a view v and a latent frame j the descriptor compares a window of query
features around the query point (taken from Q of the query's own view and frame) with a
window of key features around the current estimate of the track in (v, j) (taken from K):

    Corr^s[a, c] = softmax(q^s_a . k^s_c / sqrt(d)),   a, c in the (2r+1)^2 window offsets

at S scales s (``levels``); the pyramid level s is ``s`` rounds of 2x2 average pooling of the
token grid. Windows are read bilinearly at integer offsets (in level-s cells) from the centre.

Conventions (documented choices where the paper is silent):

* Coordinates: pixel ``x_px`` maps to level-s cell coordinates
  ``x_s = x_px / (stride_x * 2^s) - 0.5`` (cell centres at +0.5, as for tokens). A cell
  outside the level's grid reads as zero features (zero padding), i.e. logit 0.
* ``softmax_over``: ``"keys"`` normalises each of the (2r+1)^2 query-window rows over the
  (2r+1)^2 key-window entries (the attention convention of Eq. 3, default); ``"all"``
  normalises jointly over all (2r+1)^4 entries.
* ``head_mode``: ``"mean"`` averages the per-head correlations (2r+1)^4 values per level,
  so the head's MLP input matches the reference trackers (default); ``"concat"`` keeps every
  head (H (2r+1)^4 values per level).
* Entry order: index ``a * (2r+1)^2 + c`` with a = query offset, c = key offset, each
  row-major over (dy, dx) in -r..r.
* ``recompute``: every (level, frame chunk) is wrapped in activation checkpointing, so only the
  correlations (not the gathered key windows) are kept for backward.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from mvt4g.errors import ConfigError, InputError

HEAD_MODES = ("mean", "concat")
SOFTMAX_OVER = ("keys", "all")


@dataclass
class CorrelationConfig:
    """Options of the local 4D correlation."""

    radius: int = 3
    levels: int = 4
    head_mode: str = "mean"
    softmax_over: str = "keys"
    recompute: bool = True
    frame_chunk: int = 4  # latent frames per checkpointed chunk

    def __post_init__(self) -> None:
        if self.radius < 0 or self.levels < 1 or self.frame_chunk < 1:
            raise ConfigError(f"correlation needs radius >= 0, levels >= 1, frame_chunk >= 1; got {self.radius}, {self.levels}, {self.frame_chunk}")
        if self.head_mode not in HEAD_MODES:
            raise ConfigError(f"correlation head_mode must be one of {HEAD_MODES}, got {self.head_mode!r}")
        if self.softmax_over not in SOFTMAX_OVER:
            raise ConfigError(f"correlation softmax_over must be one of {SOFTMAX_OVER}, got {self.softmax_over!r}")

    @property
    def window(self) -> int:
        """Number of offsets in one window, (2r+1)^2."""
        return (2 * self.radius + 1) ** 2

    def channels(self, num_heads: int) -> int:
        """Correlation values per level for ``num_heads`` attention heads."""
        return self.window ** 2 * (num_heads if self.head_mode == "concat" else 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CorrelationConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown correlation option(s): {sorted(unknown)}")
        return cls(**data)


def build_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Token-grid pyramid by repeated 2x2 average pooling (sizes rounded up).

    x [B, V, F, h, w, C] -> ``levels`` tensors [B, V, F, h_s, w_s, C], level 0 = x.
    """
    B, V, Fr, h, w, C = x.shape
    out = [x]
    maps = x.reshape(B * V * Fr, h, w, C).permute(0, 3, 1, 2)
    for _ in range(1, levels):
        # ceil_mode keeps an odd trailing row/column as a cell of its own (averaged over the
        # tokens it has), so cell i of level s always starts at token i * 2^s.
        maps = F.avg_pool2d(maps, 2, ceil_mode=True)
        out.append(maps.permute(0, 2, 3, 1).reshape(B, V, Fr, maps.shape[-2], maps.shape[-1], C))
    return out


def sample_windows(maps: torch.Tensor, map_index: torch.Tensor, centres: torch.Tensor, radius: int) -> torch.Tensor:
    """Bilinear windows of features at integer offsets around continuous centres.

    maps [B, M, h, w, C]; map_index [B, P] long (which map each centre reads);
    centres [B, P, 2] (x, y) in cell coordinates of these maps (cell centres at integers).
    Returns [B, P, (2r+1)^2, C]; cells outside the grid read as zero.

    All offsets share the centre's fractional part, so the window is a fixed blend of four
    shifted copies of one integer (2r+2)^2 patch: one gather per centre instead of four.
    """
    B, M, h, w, C = maps.shape
    P = centres.shape[1]
    size = 2 * radius + 2
    base = torch.floor(centres.detach())
    frac = (centres - base).to(maps.dtype)
    x0 = base[..., 0].long() - radius
    y0 = base[..., 1].long() - radius
    steps = torch.arange(size, device=maps.device)
    xs = x0[..., None, None] + steps[None, None, None, :]  # [B, P, 1, size]
    ys = y0[..., None, None] + steps[None, None, :, None]  # [B, P, size, 1]
    inside = ((xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)).to(maps.dtype)  # [B, P, size, size]
    flat = map_index[..., None, None] * (h * w) + ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)
    batch = torch.arange(B, device=maps.device)[:, None, None, None]
    patch = maps.reshape(B, M * h * w, C)[batch, flat] * inside[..., None]  # [B, P, size, size, C]
    fx = frac[..., 0, None, None, None]
    fy = frac[..., 1, None, None, None]
    window = ((1 - fy) * ((1 - fx) * patch[:, :, :-1, :-1] + fx * patch[:, :, :-1, 1:])
              + fy * ((1 - fx) * patch[:, :, 1:, :-1] + fx * patch[:, :, 1:, 1:]))
    return window.reshape(B, P, (size - 1) ** 2, C)


def pixel_to_cells(xy_px: torch.Tensor, strides: tuple[float, float], level: int) -> torch.Tensor:
    """Pixel (x, y) -> level-``level`` cell coordinates, ``x_px / (stride * 2^level) - 0.5``."""
    scale = torch.tensor([strides[0] * 2 ** level, strides[1] * 2 ** level], dtype=xy_px.dtype, device=xy_px.device)
    return xy_px / scale - 0.5


def _correlate(q_win: torch.Tensor, k_win: torch.Tensor, num_heads: int, head_mode: str, softmax_over: str) -> torch.Tensor:
    """q_win [B, 1, 1, N, A, H*d], k_win [B, V, f, N, A, H*d] -> [B, V, f, N, channels]."""
    B, V, Fc, N, A, C = k_win.shape
    d = C // num_heads
    qh = q_win.reshape(B, 1, 1, N, A, num_heads, d)
    kh = k_win.reshape(B, V, Fc, N, A, num_heads, d)
    logits = torch.einsum("bxynahd,bvfnchd->bvfnhac", qh, kh) * (1.0 / math.sqrt(d))
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if softmax_over == "keys":
        corr = logits.softmax(dim=-1)
    else:
        corr = logits.flatten(-2).softmax(dim=-1).view_as(logits)
    if head_mode == "mean":
        return corr.mean(dim=4).reshape(B, V, Fc, N, A * A)
    return corr.reshape(B, V, Fc, N, num_heads * A * A)


class LocalCorrelation:
    """Multi-scale local 4D correlation for one (q, k) pair of the attention tap.

    Build once per forward (pyramids and query windows are reused over the refinement
    iterations), then call with the current estimates.

    q, k [B, V, F, h, w, H, d]; queries [B, N, 4] (view, latent frame, x_px, y_px);
    image_size (H_px, W_px).
    """

    def __init__(self, q: torch.Tensor, k: torch.Tensor, queries: torch.Tensor, image_size, config: CorrelationConfig):
        if q.ndim != 7 or q.shape != k.shape:
            raise InputError(f"q and k must both be [B, V, F, h, w, H, d], got {tuple(q.shape)} and {tuple(k.shape)}")
        B, V, Fr, h, w, H, d = q.shape
        self.config, self.num_heads, self.shape = config, H, (B, V, Fr, h, w)
        self.strides = (float(image_size[1]) / w, float(image_size[0]) / h)
        view = torch.round(queries[..., 0]).long()
        frame = torch.round(queries[..., 1]).long()
        if bool(((view < 0) | (view >= V) | (frame < 0) | (frame >= Fr)).any()):
            raise InputError(f"query view/frame out of range: views 0..{V - 1}, latent frames 0..{Fr - 1}")
        q_pyr = build_pyramid(q.reshape(B, V, Fr, h, w, H * d), config.levels)
        self.k_pyr = build_pyramid(k.reshape(B, V, Fr, h, w, H * d), config.levels)
        map_index = view * Fr + frame
        xy = queries[..., 2:4].to(q.dtype)
        self.q_windows = []  # per level [B, N, A, H*d]
        for level, maps in enumerate(q_pyr):
            hs, ws, C = maps.shape[3:]
            cells = pixel_to_cells(xy, self.strides, level)
            self.q_windows.append(sample_windows(maps.reshape(B, V * Fr, hs, ws, C), map_index, cells, config.radius))

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """coords [B, V, F, N, 2] pixels (current estimates) -> [B, V, F, N, levels, channels]."""
        cfg = self.config
        Fr = self.shape[2]
        coords = coords.detach().to(self.q_windows[0].dtype)
        levels = []
        for level, (k_maps, q_win) in enumerate(zip(self.k_pyr, self.q_windows)):
            chunks = []
            for start in range(0, Fr, cfg.frame_chunk):
                stop = min(start + cfg.frame_chunk, Fr)
                args = (k_maps[:, :, start:stop], q_win, coords[:, :, start:stop], level)
                if cfg.recompute and torch.is_grad_enabled():
                    chunks.append(checkpoint(self._level_chunk, *args, use_reentrant=False))
                else:
                    chunks.append(self._level_chunk(*args))
            levels.append(torch.cat(chunks, dim=2))
        return torch.stack(levels, dim=4)

    def _level_chunk(self, k_maps: torch.Tensor, q_win: torch.Tensor, coords: torch.Tensor, level: int) -> torch.Tensor:
        """k_maps [B, V, f, h_s, w_s, C]; q_win [B, N, A, C]; coords [B, V, f, N, 2] pixels."""
        B, V, Fc, hs, ws, C = k_maps.shape
        N = coords.shape[3]
        cells = pixel_to_cells(coords, self.strides, level).reshape(B, V * Fc * N, 2)
        map_index = torch.arange(V * Fc, device=coords.device).repeat_interleave(N)[None].expand(B, -1)
        k_win = sample_windows(k_maps.reshape(B, V * Fc, hs, ws, C), map_index, cells, self.config.radius)
        k_win = k_win.reshape(B, V, Fc, N, -1, C)
        return _correlate(q_win[:, None, None], k_win, self.num_heads, self.config.head_mode, self.config.softmax_over)


def local_correlation(q, k, queries, coords, image_size, config: CorrelationConfig | None = None) -> torch.Tensor:
    """One-shot helper: [B, V, F, N, levels, channels] for estimates ``coords`` [B, V, F, N, 2]."""
    return LocalCorrelation(q, k, queries, image_size, config or CorrelationConfig())(coords)
