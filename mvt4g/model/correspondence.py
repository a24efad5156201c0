"""Multi-view correspondence loss L_corr on the 3D attention (paper Eq. 20, App. B.5).

For each sampled query point (view ``v1``, latent frame ``i``, pixel position) the loss
takes the row of the attention of the tapped block that belongs to the point's token and
asks it to put its mass, per latent frame ``j`` of each view ``v2``, on the token of the
ground-truth match (cross-entropy of a per-frame softmax, Eq. 3):

    C^{v1,v2}_{i,j} = softmax_{keys of (v2, j)}(q . K_j^{v2 T} / sqrt(d))
    L_corr = reduce over (v2, j) of  o^{v2}_j * CE(C^{v1,v2}_{i,j}(q), token(p^{v2}_j))

Conventions (all documented options live in :class:`CorrespondenceLossConfig`):

* Token geometry: ``x_tok = x_px / stride_x - 0.5`` (pixel centres at +0.5), with
  ``stride_x = W / w`` and ``stride_y = H / h`` taken from ``image_size`` and the token grid.
* Query vector: ``"nearest"`` takes the token whose pixel footprint contains the point
  (``floor(x_px / stride)``); ``"bilinear"`` interpolates the four surrounding tokens at
  ``x_tok`` (clamped at the border), so sub-token positions get a blended query.
* Target label: always the token whose footprint contains the ground-truth position
  (``floor(x_px / stride)``). Matches outside the image, invisible matches, query points
  outside the image and the query's own frame in its own view contribute nothing.
* Heads: ``"mean_ce"`` averages the per-head cross-entropies (default); ``"mean_prob"``
  is the cross-entropy of the head-averaged probabilities; ``"mlp"`` is CAMEO's projection
  head: a small MLP maps the H head logits of every key to one logit before the softmax
  (its weights belong to this module and are trained with it).
* Frames: ``"mean"`` averages over every valid (query, view, frame) term of the batch (the
  paper's text, "averaging"); ``"sum"`` sums over the frames of each query (Eq. 20) and
  averages over queries that have at least one valid term.

Memory: the S x S attention is never built. Queries are processed in chunks of
``chunk_size``; a chunk holds ``H x chunk x S`` logits, and with ``recompute`` each chunk
is wrapped in activation checkpointing so backward recomputes it instead of storing it.
Peak memory is therefore O(H x chunk x S) on top of Q and K, linear in S.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.checkpoint import checkpoint

from mvt4g.errors import ConfigError, InputError

HEAD_MODES = ("mean_ce", "mean_prob", "mlp")
FRAME_REDUCTIONS = ("mean", "sum")
QUERY_SAMPLINGS = ("nearest", "bilinear")


@dataclass
class CorrespondenceLossConfig:
    """Options of L_corr (see the module docstring for what each one means)."""

    head_mode: str = "mean_ce"
    frame_reduction: str = "mean"
    query_sampling: str = "nearest"
    chunk_size: int = 32
    recompute: bool = True
    num_heads: int = 0  # only read by head_mode="mlp" (number of attention heads)
    mlp_hidden: int = 32

    def __post_init__(self) -> None:
        if self.head_mode not in HEAD_MODES:
            raise ConfigError(f"correspondence head_mode must be one of {HEAD_MODES}, got {self.head_mode!r}")
        if self.frame_reduction not in FRAME_REDUCTIONS:
            raise ConfigError(f"correspondence frame_reduction must be one of {FRAME_REDUCTIONS}, got {self.frame_reduction!r}")
        if self.query_sampling not in QUERY_SAMPLINGS:
            raise ConfigError(f"correspondence query_sampling must be one of {QUERY_SAMPLINGS}, got {self.query_sampling!r}")
        if self.chunk_size < 1:
            raise ConfigError(f"correspondence chunk_size must be >= 1, got {self.chunk_size}")
        if self.head_mode == "mlp" and (self.num_heads < 1 or self.mlp_hidden < 1):
            raise ConfigError("correspondence head_mode='mlp' needs num_heads >= 1 and mlp_hidden >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CorrespondenceLossConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown correspondence loss option(s): {sorted(unknown)}")
        return cls(**data)


def token_strides(image_size: tuple[int, int], grid_hw: tuple[int, int]) -> tuple[float, float]:
    """Pixels per token ``(stride_x, stride_y)`` for an image of ``(H, W)`` on an ``(h, w)`` grid."""
    height, width = int(image_size[0]), int(image_size[1])
    h, w = int(grid_hw[0]), int(grid_hw[1])
    if height <= 0 or width <= 0 or h <= 0 or w <= 0:
        raise InputError(f"image size {height}x{width} and token grid {h}x{w} must be positive")
    return width / w, height / h


def footprint_token(xy_px: torch.Tensor, strides: tuple[float, float], grid_hw: tuple[int, int]):
    """Token containing each pixel position and whether it lies on the grid.

    ``xy_px`` [..., 2] pixel (x, y) -> (flat index ``ty * w + tx`` clamped into range [...],
    inside [...] bool).
    """
    h, w = grid_hw
    tx = torch.floor(xy_px[..., 0] / strides[0]).long()
    ty = torch.floor(xy_px[..., 1] / strides[1]).long()
    inside = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h) & torch.isfinite(xy_px).all(-1)
    flat = ty.clamp(0, h - 1) * w + tx.clamp(0, w - 1)
    return flat, inside


def gather_query_vectors(q: torch.Tensor, queries: torch.Tensor, image_size, sampling: str = "nearest"):
    """Query vectors of the query points.

    q [B, V, F, h, w, H, d]; queries [B, N, 4] = (view, latent frame, x_px, y_px).
    Returns (vectors [B, N, H, d], inside [B, N] bool: the point lies in the image).
    """
    B, V, Fr, h, w, H, d = q.shape
    view, frame = _query_view_frame(queries, V, Fr)
    strides = token_strides(image_size, (h, w))
    xy = queries[..., 2:4]
    flat_tok, inside = footprint_token(xy, strides, (h, w))
    maps = q.reshape(B, V * Fr * h * w, H, d)
    base = (view * Fr + frame) * (h * w)  # first token of the query's (view, frame)
    batch = torch.arange(B, device=q.device)[:, None]
    if sampling == "nearest":
        return maps[batch, base + flat_tok], inside
    # Bilinear at x_tok = x / stride - 0.5, neighbours clamped to the grid (border padding).
    x_tok = (xy[..., 0] / strides[0] - 0.5).clamp(0, w - 1)
    y_tok = (xy[..., 1] / strides[1] - 0.5).clamp(0, h - 1)
    x0, y0 = torch.floor(x_tok).long(), torch.floor(y_tok).long()
    fx, fy = (x_tok - x0).to(q.dtype), (y_tok - y0).to(q.dtype)
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    out = 0
    for yy, xx, wt in ((y0, x0, (1 - fy) * (1 - fx)), (y0, x1, (1 - fy) * fx), (y1, x0, fy * (1 - fx)), (y1, x1, fy * fx)):
        out = out + maps[batch, base + yy * w + xx] * wt[..., None, None]
    return out, inside


def _query_view_frame(queries: torch.Tensor, num_views: int, num_frames: int):
    if queries.ndim != 3 or queries.shape[-1] != 4:
        raise InputError(f"queries must be [B, N, 4] (view, frame, x, y), got {tuple(queries.shape)}")
    view = torch.round(queries[..., 0]).long()
    frame = torch.round(queries[..., 1]).long()
    if bool(((view < 0) | (view >= num_views)).any()) or bool(((frame < 0) | (frame >= num_frames)).any()):
        raise InputError(f"query view/frame out of range: views 0..{num_views - 1}, latent frames 0..{num_frames - 1}")
    return view, frame


class HeadLogitMLP(nn.Module):
    """CAMEO projection head: per key, the H head logits -> one logit (H -> hidden -> 1)."""

    def __init__(self, num_heads: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(num_heads, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [..., H] -> [...]."""
        return self.fc2(F.gelu(self.fc1(logits))).squeeze(-1)


def _chunk_cross_entropy(q_chunk, keys_t, target, head_mode, mlp, num_frames_total, hw):
    """Per-(query, view-frame) cross-entropy for one chunk of queries.

    q_chunk [n, H, d] (already scaled by 1/sqrt(d)); keys_t [H, d, S] with S = VF * hw;
    target [n, VF] token index inside each frame. Returns ce [n, VF].
    """
    H, n = keys_t.shape[0], q_chunk.shape[0]
    logits = torch.matmul(q_chunk.transpose(0, 1), keys_t)  # [H, n, S]
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    logits = logits.view(H, n, num_frames_total, hw)
    if head_mode == "mlp":
        combined = mlp(logits.permute(1, 2, 3, 0).to(mlp.fc1.weight.dtype)).to(logits.dtype)  # [n, VF, hw]
        picked = combined.gather(-1, target[..., None]).squeeze(-1)
        return torch.logsumexp(combined, dim=-1) - picked
    picked = logits.gather(-1, target[None, ..., None].expand(H, n, num_frames_total, 1)).squeeze(-1)
    log_prob = picked - torch.logsumexp(logits, dim=-1)  # [H, n, VF] log C at the label
    if head_mode == "mean_ce":
        return -log_prob.mean(0)
    return -(torch.logsumexp(log_prob, dim=0) - math.log(H))  # mean_prob


class CorrespondenceLoss(nn.Module):
    """L_corr. ``forward(q, k, queries, tracks, visible, image_size) -> scalar``.

    q, k [B, V, F, h, w, H, d] from the attention tap; queries [B, N, 4] (view, latent frame,
    x_px, y_px); tracks [B, V, F, N, 2] pixels; visible [B, V, F, N] bool.
    Holds parameters only with ``head_mode="mlp"``.
    """

    def __init__(self, config: CorrespondenceLossConfig | None = None):
        super().__init__()
        self.config = config or CorrespondenceLossConfig()
        cfg = self.config
        self.head_mlp = HeadLogitMLP(cfg.num_heads, cfg.mlp_hidden) if cfg.head_mode == "mlp" else None

    def per_term(self, q, k, queries, tracks, visible, image_size):
        """Cross-entropy of every (query, view, frame) and its validity.

        Returns (ce [B, N, V, F] with invalid terms zeroed, valid [B, N, V, F] bool).
        """
        cfg = self.config
        if q.ndim != 7 or q.shape != k.shape:
            raise InputError(f"q and k must both be [B, V, F, h, w, H, d], got {tuple(q.shape)} and {tuple(k.shape)}")
        B, V, Fr, h, w, H, d = q.shape
        N = queries.shape[1]
        if tuple(tracks.shape) != (B, V, Fr, N, 2) or tuple(visible.shape) != (B, V, Fr, N):
            raise InputError(f"tracks must be [{B}, {V}, {Fr}, {N}, 2] and visible [{B}, {V}, {Fr}, {N}], got {tuple(tracks.shape)} and {tuple(visible.shape)}")
        if cfg.head_mode == "mlp" and H != cfg.num_heads:
            raise InputError(f"correspondence MLP was built for {cfg.num_heads} heads, the attention has {H}")
        strides = token_strides(image_size, (h, w))
        view, frame = _query_view_frame(queries, V, Fr)
        q_vec, q_inside = gather_query_vectors(q, queries, image_size, cfg.query_sampling)
        target, t_inside = footprint_token(tracks.to(torch.float64), strides, (h, w))  # [B, V, F, N]
        own = (torch.arange(V, device=q.device)[None, :, None, None] == view[:, None, None, :]) & (
            torch.arange(Fr, device=q.device)[None, None, :, None] == frame[:, None, None, :])
        valid = visible.bool() & t_inside & ~own & q_inside[:, None, None, :]
        target = target.permute(0, 3, 1, 2).reshape(B, N, V * Fr)
        valid = valid.permute(0, 3, 1, 2)  # [B, N, V, F]
        q_vec = q_vec * (1.0 / math.sqrt(d))
        ce_rows = []
        for b in range(B):
            keys_t = k[b].permute(4, 5, 0, 1, 2, 3).reshape(H, d, V * Fr * h * w)
            for start in range(0, N, cfg.chunk_size):
                stop = min(start + cfg.chunk_size, N)
                args = (q_vec[b, start:stop], keys_t, target[b, start:stop], cfg.head_mode, self.head_mlp, V * Fr, h * w)
                if cfg.recompute and torch.is_grad_enabled():
                    ce_rows.append(checkpoint(_chunk_cross_entropy, *args, use_reentrant=False))
                else:
                    ce_rows.append(_chunk_cross_entropy(*args))
        ce = torch.cat(ce_rows, dim=0).view(B, N, V, Fr)
        return ce * valid, valid

    def forward(self, q, k, queries, tracks, visible, image_size) -> torch.Tensor:
        ce, valid = self.per_term(q, k, queries, tracks, visible, image_size)
        weight = valid.to(ce.dtype)
        if self.config.frame_reduction == "mean":
            return ce.sum() / weight.sum().clamp(min=1.0)
        per_query = ce.sum(dim=(2, 3))
        has_terms = weight.sum(dim=(2, 3)) > 0
        return (per_query * has_terms).sum() / has_terms.sum().clamp(min=1)


class _LiveTensorBytes(TorchDispatchMode):
    """Counts bytes of tensor storages created by ops while active, and their peak.

    Every op output's storage is counted once (views share it) until Python frees it.
    """

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._keys: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self._track(t.untyped_storage())
        return out

    def _track(self, storage) -> None:
        key = storage._cdata
        if key in self._keys:
            return
        self._keys.add(key)
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._release, key, storage.nbytes())

    def _release(self, key: int, nbytes: int) -> None:
        if key in self._keys:
            self._keys.discard(key)
            self.live -= nbytes


def measure_memory(grid_hw=(15, 26), frames: int = 4, heads: int = 4, head_dim: int = 32,
                   num_queries: int = 256, scales=(1, 4), config: CorrespondenceLossConfig | None = None,
                   device: str = "cpu", seed: int = 0) -> dict:
    """Peak memory of one L_corr forward+backward at S and ``scale x S`` tokens (benchmark helper).

    The token count grows by widening the grid (w x scale). ``peak_bytes`` counts Q, K, their
    gradients and everything the loss allocates; ``extra_bytes`` leaves out Q and K themselves.
    On CUDA it reads the allocator's peak; on CPU it tracks live tensor storages.
    Returns {"tokens": [...], "peak_bytes": [...], "extra_bytes": [...], "peak_ratio", "extra_ratio"}.
    """
    gen = torch.Generator().manual_seed(seed)
    loss_fn = CorrespondenceLoss(config or CorrespondenceLossConfig()).to(device)
    result = {"tokens": [], "peak_bytes": [], "extra_bytes": []}
    for scale in scales:
        h, w = grid_hw[0], grid_hw[1] * scale
        shape = (1, 2, frames, h, w, heads, head_dim)
        q = torch.randn(shape, generator=gen).to(device).requires_grad_()
        k = torch.randn(shape, generator=gen).to(device).requires_grad_()
        size = (h * 16, w * 16)
        queries = torch.stack([torch.randint(0, 2, (num_queries,), generator=gen).float(),
                               torch.randint(0, frames, (num_queries,), generator=gen).float(),
                               torch.rand(num_queries, generator=gen) * size[1],
                               torch.rand(num_queries, generator=gen) * size[0]], -1)[None].to(device)
        tracks = (torch.rand(1, 2, frames, num_queries, 2, generator=gen) * torch.tensor([size[1], size[0]])).to(device)
        visible = torch.ones(1, 2, frames, num_queries, dtype=torch.bool, device=device)
        inputs = q.nbytes + k.nbytes
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            loss_fn(q, k, queries, tracks, visible, size).backward()
            torch.cuda.synchronize()
            extra = torch.cuda.max_memory_allocated() - base
        else:
            with _LiveTensorBytes() as tracker:
                loss_fn(q, k, queries, tracks, visible, size).backward()
            extra = tracker.peak
        result["tokens"].append(2 * frames * h * w)
        result["peak_bytes"].append(int(inputs + extra))
        result["extra_bytes"].append(int(extra))
    result["peak_ratio"] = result["peak_bytes"][-1] / result["peak_bytes"][0]
    result["extra_ratio"] = result["extra_bytes"][-1] / result["extra_bytes"][0]
    return result
