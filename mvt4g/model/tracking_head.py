"""Multi-view point-tracking head on the DiT's queries and keys (paper Sec. 5.2; MV-TAP style).

Every query point is tracked in every latent frame of both views. One token per
(view, frame, track) is built from

    [visibility logit, confidence logit, is-query-frame flag,
     per-level MLP of the local 4D correlation (correlation.py),
     sin/cos encoding of the estimate's displacement from the query position]

plus a fixed sinusoidal frame embedding and a learned view embedding. A transformer refines
the tokens with ``rounds`` rounds of factorised attention:

    time  : over the F latent frames of one track in one view (virtual tracks included)
    view  : over the V views of one track at one frame
    space : K learned virtual tracks read all point tokens of a (view, frame), attend among
            themselves, and the point tokens read them back (CoTracker3-style).

The output predicts residuals (dP, dV, dC). ``iterations`` refinements start from the query
position in every view and frame with V = C = 0; coordinates are detached between
iterations (the gradient reaches q and k through the correlations, not through positions).
dP is predicted in token units and scaled by the stride to pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.correlation import CorrelationConfig, LocalCorrelation


@dataclass
class TrackingHeadConfig:
    """Sizes of the tracking head. Defaults are MV-TAP's reference configuration."""

    hidden: int = 384
    heads: int = 8
    rounds: int = 3
    virtual_tracks: int = 64
    iterations: int = 4
    mlp_ratio: float = 4.0
    corr_mlp_hidden: int = 384
    corr_mlp_out: int = 256
    share_corr_mlp: bool = True  # one correlation MLP for every level (reference trackers)
    disp_freqs: int = 8  # sin/cos frequencies of the displacement encoding
    num_views: int = 2
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)

    def __post_init__(self) -> None:
        if isinstance(self.correlation, dict):
            self.correlation = CorrelationConfig.from_dict(self.correlation)
        positive = {k: getattr(self, k) for k in ("hidden", "heads", "rounds", "iterations", "corr_mlp_hidden", "corr_mlp_out", "num_views")}
        bad = [k for k, v in positive.items() if v < 1]
        if bad or self.virtual_tracks < 0 or self.disp_freqs < 0 or self.mlp_ratio <= 0:
            raise ConfigError(f"tracking head sizes must be positive: {bad or 'virtual_tracks/disp_freqs/mlp_ratio'}")
        if self.hidden % self.heads:
            raise ConfigError(f"tracking head hidden {self.hidden} is not divisible by heads {self.heads}")

    @classmethod
    def reference(cls) -> TrackingHeadConfig:
        """MV-TAP reference sizes (hidden 384, 8 heads, 3 rounds, 64 virtual tracks, r = 3, 4 levels)."""
        return cls()

    @classmethod
    def tiny(cls) -> TrackingHeadConfig:
        """CPU-sized head for tests and the tiny preset."""
        return cls(hidden=64, heads=4, rounds=2, virtual_tracks=16, iterations=4, mlp_ratio=2.0,
                   corr_mlp_hidden=64, corr_mlp_out=32, disp_freqs=4,
                   correlation=CorrelationConfig(radius=2, levels=3, frame_chunk=8))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrackingHeadConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown tracking head option(s): {sorted(unknown)}")
        return cls(**data)


def displacement_encoding(delta_px: torch.Tensor, image_size, num_freqs: int) -> torch.Tensor:
    """delta_px [..., 2] pixels -> [..., 2 + 4 num_freqs]: delta / max(H, W) and sin/cos of it at 2^k pi."""
    scaled = delta_px / float(max(image_size))
    parts = [scaled]
    for k in range(num_freqs):
        parts += [torch.sin(scaled * (math.pi * 2 ** k)), torch.cos(scaled * (math.pi * 2 ** k))]
    return torch.cat(parts, dim=-1)


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions [P] -> [P, dim] fixed sin/cos embedding (transformer style, base 10000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=positions.device) / max(half, 1))
    angles = positions.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    return F.pad(emb, (0, dim - 2 * half))


class _Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x [L, T, C], context [L, S, C] -> [L, T, C]."""
        context = x if context is None else context
        L, T, C = x.shape
        q = self.to_q(x).view(L, T, self.heads, -1).transpose(1, 2)
        k, v = self.to_kv(context).view(L, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(L, T, C))


class _Block(nn.Module):
    """Pre-norm (cross-)attention + MLP block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cross: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim) if cross else None
        self.attn = _Attention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = None if self.norm_context is None else self.norm_context(context)
        x = x + self.attn(self.norm(x), ctx)
        return x + self.mlp(self.norm_mlp(x))


class _Round(nn.Module):
    """One round of time -> view -> space (virtual-track) attention."""

    def __init__(self, cfg: TrackingHeadConfig):
        super().__init__()
        dim, heads, ratio = cfg.hidden, cfg.heads, cfg.mlp_ratio
        self.time = _Block(dim, heads, ratio)
        self.view = _Block(dim, heads, ratio)
        self.use_virtual = cfg.virtual_tracks > 0
        if self.use_virtual:
            self.virtual_read = _Block(dim, heads, ratio, cross=True)
            self.virtual_self = _Block(dim, heads, ratio)
            self.point_read = _Block(dim, heads, ratio, cross=True)

    def forward(self, x: torch.Tensor, z: torch.Tensor, num_points: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, V, F, N, C] point tokens, z [B, V, F, K, C] virtual tokens."""
        B, V, Fr, _, C = x.shape
        t = torch.cat([x, z], dim=3)
        P = t.shape[3]
        t = self.time(t.permute(0, 1, 3, 2, 4).reshape(B * V * P, Fr, C)).view(B, V, P, Fr, C).permute(0, 1, 3, 2, 4)
        t = self.view(t.permute(0, 2, 3, 1, 4).reshape(B * Fr * P, V, C)).view(B, Fr, P, V, C).permute(0, 3, 1, 2, 4)
        x, z = t[:, :, :, :num_points], t[:, :, :, num_points:]
        if self.use_virtual:
            xs = x.reshape(B * V * Fr, num_points, C)
            zs = z.reshape(B * V * Fr, -1, C)
            zs = self.virtual_self(self.virtual_read(zs, xs))
            xs = self.point_read(xs, zs)
            x, z = xs.view(B, V, Fr, num_points, C), zs.view(B, V, Fr, -1, C)
        return x, z


class TrackingHead(nn.Module):
    """``TrackingHead(config)(q, k, queries, image_size) -> dict``.

    q, k [B, V, F, h, w, H, d] from the attention tap; queries [B, N, 4] = (view, latent frame,
    x_px, y_px); image_size (H_px, W_px). Returns

        coords           list (one per iteration) of [B, V, F, N, 2] pixel positions
        vis_logits       [B, V, F, N] final visibility logits
        conf_logits      [B, V, F, N] final confidence logits
        vis_logits_iters, conf_logits_iters: per-iteration lists (for per-iteration losses)

    The attention head count H is read from q at call time; with correlation head_mode
    "concat" it must be fixed at construction (``num_attention_heads``).
    """

    def __init__(self, config: TrackingHeadConfig | None = None, num_attention_heads: int = 1):
        super().__init__()
        self.config = cfg = config or TrackingHeadConfig()
        corr = cfg.correlation
        self.num_attention_heads = num_attention_heads
        corr_in = corr.channels(num_attention_heads)

        def corr_mlp() -> nn.Module:
            return nn.Sequential(nn.Linear(corr_in, cfg.corr_mlp_hidden), nn.GELU(), nn.Linear(cfg.corr_mlp_hidden, cfg.corr_mlp_out))

        self.corr_mlps = nn.ModuleList([corr_mlp() for _ in range(1 if cfg.share_corr_mlp else corr.levels)])
        token_in = 3 + corr.levels * cfg.corr_mlp_out + 2 + 4 * cfg.disp_freqs
        self.input_proj = nn.Linear(token_in, cfg.hidden)
        self.view_embed = nn.Parameter(torch.zeros(cfg.num_views, cfg.hidden))
        self.virtual = nn.Parameter(torch.randn(max(cfg.virtual_tracks, 1), cfg.hidden) * 0.02)
        self.rounds = nn.ModuleList([_Round(cfg) for _ in range(cfg.rounds)])
        self.gradient_checkpointing = False  # set with the backbone's (MVT4GModel.set_gradient_checkpointing)
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.out = nn.Linear(cfg.hidden, 4)  # dx, dy (tokens), dvis, dconf
        # Zero-initialised output: the first estimate is the query position with V = C = 0.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, q: torch.Tensor, k: torch.Tensor, queries: torch.Tensor, image_size) -> dict:
        cfg = self.config
        if q.ndim != 7 or q.shape != k.shape:
            raise InputError(f"q and k must both be [B, V, F, h, w, H, d], got {tuple(q.shape)} and {tuple(k.shape)}")
        B, V, Fr, h, w, H, _ = q.shape
        if V > cfg.num_views:
            raise InputError(f"tracking head was built for {cfg.num_views} views, got {V}")
        if cfg.correlation.head_mode == "concat" and H != self.num_attention_heads:
            raise InputError(f"tracking head correlation was built for {self.num_attention_heads} heads, got {H}")
        if queries.ndim != 3 or queries.shape[0] != B or queries.shape[-1] != 4:
            raise InputError(f"queries must be [{B}, N, 4] (view, frame, x, y), got {tuple(queries.shape)}")
        N = queries.shape[1]
        dtype = self.input_proj.weight.dtype
        q, k, queries = q.to(dtype), k.to(dtype), queries.to(dtype)
        correlation = LocalCorrelation(q, k, queries, image_size, cfg.correlation)
        stride = torch.tensor([image_size[1] / w, image_size[0] / h], dtype=dtype, device=q.device)

        query_xy = queries[:, None, None, :, 2:4].expand(B, V, Fr, N, 2)
        view_idx = torch.round(queries[..., 0]).long()
        frame_idx = torch.round(queries[..., 1]).long()
        is_query = ((torch.arange(V, device=q.device)[None, :, None, None] == view_idx[:, None, None, :])
                    & (torch.arange(Fr, device=q.device)[None, None, :, None] == frame_idx[:, None, None, :])).to(dtype)
        frame_embed = sinusoidal_embedding(torch.arange(Fr, device=q.device), cfg.hidden).to(dtype)
        position_embed = frame_embed[None, None, :, None, :] + self.view_embed[:V][None, :, None, None, :]

        coords = query_xy.clone()
        vis = torch.zeros(B, V, Fr, N, dtype=dtype, device=q.device)
        conf = torch.zeros_like(vis)
        out = {"coords": [], "vis_logits_iters": [], "conf_logits_iters": []}

        def iteration(coords, vis, conf):
            corr = correlation(coords).to(dtype)  # [B, V, F, N, L, channels]
            embeds = [self.corr_mlps[0 if cfg.share_corr_mlp else lvl](corr[..., lvl, :]) for lvl in range(corr.shape[4])]
            disp = displacement_encoding(coords - query_xy, image_size, cfg.disp_freqs)
            tokens = torch.cat([vis[..., None], conf[..., None], is_query[..., None], *embeds, disp], dim=-1)
            x = self.input_proj(tokens) + position_embed
            z = (self.virtual[: cfg.virtual_tracks][None, None, None] + position_embed).expand(B, V, Fr, -1, -1)
            for rnd in self.rounds:
                x, z = rnd(x, z, N)
            delta = self.out(self.out_norm(x))
            return coords + delta[..., :2] * stride, vis + delta[..., 2], conf + delta[..., 3]

        # With gradient checkpointing an iteration keeps only its outputs; its correlation
        # samples and transformer activations (most of the head's memory) are recomputed.
        use_ckpt = self.gradient_checkpointing and torch.is_grad_enabled()
        for _ in range(cfg.iterations):
            args = (coords.detach(), vis, conf)
            coords, vis, conf = checkpoint(iteration, *args, use_reentrant=False) if use_ckpt else iteration(*args)
            out["coords"].append(coords)
            out["vis_logits_iters"].append(vis)
            out["conf_logits_iters"].append(conf)
        out["vis_logits"] = vis
        out["conf_logits"] = conf
        return out
