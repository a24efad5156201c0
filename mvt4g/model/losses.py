"""Tracking loss L_track (paper Eq. 18-19, App. B.5) and the total-loss combination (Sec. 5.3).

    L_track = seq_weight L_seq + conf_weight L_conf + vis_weight L_vis      (0.05, 1, 1)
    L       = L_diff + lambda_track L_track + lambda_corr L_corr           (0.01, 0.01)

* L_seq: visibility-weighted Huber loss (delta 6 px) on the pixel coordinates of every
  refinement iteration, iteration i of n weighted by gamma^(n - i - 1) (gamma 0.8) and the
  weighted terms summed (RAFT / CoTracker convention). Per iteration the Huber value is
  averaged over x and y and over the visible (view, frame, track) entries (Eq. 19).
* L_conf: BCE of the confidence logits against "final error <= 12 px", on visible entries;
  the error is detached (confidence calibrates itself, it does not move the positions).
* L_vis: BCE of the visibility logits against the ground-truth visibility, all entries.
* ``vis_conf_all_iterations``: apply L_vis and L_conf to every iteration with the same gamma
  weights (each iteration's confidence against its own error) instead of the final one only.
* ``valid`` (optional [B, V, F, N] bool) removes padded entries from every term.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from mvt4g.errors import ConfigError, InputError


@dataclass
class TrackLossConfig:
    """Weights and thresholds of L_track."""

    seq_weight: float = 0.05
    conf_weight: float = 1.0
    vis_weight: float = 1.0
    huber_delta: float = 6.0
    gamma: float = 0.8
    conf_threshold_px: float = 12.0
    vis_conf_all_iterations: bool = False

    def __post_init__(self) -> None:
        if self.huber_delta <= 0 or self.conf_threshold_px <= 0 or not 0 < self.gamma <= 1:
            raise ConfigError(f"track loss needs huber_delta > 0, conf_threshold_px > 0 and 0 < gamma <= 1; got {self.huber_delta}, {self.conf_threshold_px}, {self.gamma}")
        if min(self.seq_weight, self.conf_weight, self.vis_weight) < 0:
            raise ConfigError("track loss weights must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrackLossConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown track loss option(s): {sorted(unknown)}")
        return cls(**data)


@dataclass
class TotalLossConfig:
    """Weights of the auxiliary losses in L = L_diff + lambda_track L_track + lambda_corr L_corr."""

    lambda_track: float = 0.01
    lambda_corr: float = 0.01

    def __post_init__(self) -> None:
        if self.lambda_track < 0 or self.lambda_corr < 0:
            raise ConfigError(f"loss weights must be >= 0, got lambda_track={self.lambda_track} lambda_corr={self.lambda_corr}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TotalLossConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown total loss option(s): {sorted(unknown)}")
        return cls(**data)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def _iteration_weights(n: int, gamma: float) -> list[float]:
    return [gamma ** (n - i - 1) for i in range(n)]


def track_loss(prediction: dict, tracks: torch.Tensor, visible: torch.Tensor,
               config: TrackLossConfig | None = None, valid: torch.Tensor | None = None) -> dict:
    """L_track and its parts.

    prediction: the tracking head's dict (``coords`` list of [B, V, F, N, 2] pixels,
    ``vis_logits`` / ``conf_logits`` [B, V, F, N], and the ``*_iters`` lists);
    tracks [B, V, F, N, 2] pixels; visible [B, V, F, N] bool.
    Returns {"loss", "seq", "conf", "vis"} (scalars; parts unweighted).
    """
    cfg = config or TrackLossConfig()
    coords = prediction["coords"]
    if not coords or tuple(coords[-1].shape) != tuple(tracks.shape) or tuple(visible.shape) != tuple(tracks.shape[:-1]):
        raise InputError(f"track loss: predictions {tuple(coords[-1].shape) if coords else None}, tracks {tuple(tracks.shape)}, visible {tuple(visible.shape)} do not match")
    # Losses in float32 whatever precision the head ran in (bf16 logits and fp32 tracks otherwise
    # meet in the Huber term, and BCE in bf16 loses the small-probability tail).
    dtype = torch.promote_types(torch.promote_types(coords[-1].dtype, tracks.dtype), torch.float32)
    coords = [c.to(dtype) for c in coords]
    prediction = {k: ([t.to(dtype) for t in v] if isinstance(v, list) else v.to(dtype)) for k, v in prediction.items()
                  if k in ("vis_logits", "conf_logits", "vis_logits_iters", "conf_logits_iters")}
    tracks = tracks.to(dtype)
    valid = torch.ones_like(visible, dtype=torch.bool) if valid is None else valid.bool()
    visible = visible.bool()
    seen = visible & valid
    gt = torch.where(seen[..., None], tracks, torch.zeros_like(tracks))  # NaN-safe for occluded entries
    n = len(coords)
    weights = _iteration_weights(n, cfg.gamma)
    seq = sum(w * _masked_mean(F.huber_loss(p, gt, reduction="none", delta=cfg.huber_delta).mean(-1), seen)
              for w, p in zip(weights, coords))

    def conf_term(conf_logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        error = torch.linalg.vector_norm(p.detach() - gt, dim=-1)
        target = (error <= cfg.conf_threshold_px).to(conf_logits.dtype)
        return _masked_mean(F.binary_cross_entropy_with_logits(conf_logits, target, reduction="none"), seen)

    def vis_term(vis_logits: torch.Tensor) -> torch.Tensor:
        return _masked_mean(F.binary_cross_entropy_with_logits(vis_logits, visible.to(vis_logits.dtype), reduction="none"), valid)

    if cfg.vis_conf_all_iterations:
        vis = sum(w * vis_term(v) for w, v in zip(weights, prediction["vis_logits_iters"]))
        conf = sum(w * conf_term(c, p) for w, c, p in zip(weights, prediction["conf_logits_iters"], coords))
    else:
        vis = vis_term(prediction["vis_logits"])
        conf = conf_term(prediction["conf_logits"], coords[-1])
    loss = cfg.seq_weight * seq + cfg.conf_weight * conf + cfg.vis_weight * vis
    return {"loss": loss, "seq": seq, "conf": conf, "vis": vis}


def total_loss(diffusion: torch.Tensor, track: torch.Tensor | None = None, corr: torch.Tensor | None = None,
               config: TotalLossConfig | None = None) -> dict:
    """L = L_diff + lambda_track L_track + lambda_corr L_corr; missing parts count as 0.

    Returns {"loss", "diff", "track", "corr"} (parts unweighted; absent parts are 0-d zeros).
    """
    cfg = config or TotalLossConfig()
    zero = diffusion.new_zeros(())
    track = zero if track is None else track
    corr = zero if corr is None else corr
    loss = diffusion + cfg.lambda_track * track + cfg.lambda_corr * corr
    return {"loss": loss, "diff": diffusion, "track": track, "corr": corr}
