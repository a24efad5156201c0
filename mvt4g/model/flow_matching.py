"""Rectified-flow training objective with ReCamMaster's timestep table and weighting.

    x_t = (1 - sigma) x0 + sigma eps,     target v = eps - x0,     L_diff = w(t) ||v_pred - v||^2

Timestep table (ReCamMaster / DiffSynth's Wan training, docs/FACTS.md, section 1): the 1,000 sigmas
``linspace(1, 0, 1001)[:-1]`` shifted by ``sigma' = shift s / (1 + (shift - 1) s)`` with
shift 5; the model's timestep is ``1000 sigma'``; training draws one entry uniformly.
Weighting ("bell"): ``y = exp(-2 ((t - 500) / 1000)^2)`` on the table's timesteps, minus its
minimum over the table (as DiffSynth does), scaled to mean 1 over the table. "none" gives 1.

Inference grid (``inference_sigmas``): ``linspace(1, 0, steps + 1)[:-1]`` shifted the same
way; an Euler sampler steps from each sigma to the next and from the last one to 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from mvt4g.errors import ConfigError, InputError

WEIGHTINGS = ("bell", "none")


@dataclass
class FlowMatchingConfig:
    """Rectified-flow training options."""

    num_train_timesteps: int = 1000
    shift: float = 5.0
    weighting: str = "bell"

    def __post_init__(self) -> None:
        if self.num_train_timesteps < 2 or self.shift <= 0:
            raise ConfigError(f"flow matching needs num_train_timesteps >= 2 and shift > 0, got {self.num_train_timesteps}, {self.shift}")
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"flow matching weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FlowMatchingConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown flow matching option(s): {sorted(unknown)}")
        return cls(**data)


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """Timestep shift ``shift s / (1 + (shift - 1) s)`` (maps [0, 1] onto itself, monotone)."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def training_sigmas(num_train_timesteps: int = 1000, shift: float = 5.0) -> torch.Tensor:
    """[num] float64 shifted sigmas, descending from 1 (the training table)."""
    base = torch.linspace(1.0, 0.0, num_train_timesteps + 1, dtype=torch.float64)[:-1]
    return shift_sigmas(base, shift)


def inference_sigmas(steps: int, shift: float = 5.0) -> torch.Tensor:
    """[steps] float64 shifted sigmas of an Euler sampler, descending from 1 (0 not included)."""
    if steps < 1:
        raise InputError(f"number of sampling steps must be >= 1, got {steps}")
    return shift_sigmas(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)[:-1], shift)


def bell_weights(timesteps: torch.Tensor, num_train_timesteps: int) -> torch.Tensor:
    """DiffSynth's bell-shaped weights over a timestep table, minimum subtracted, mean 1."""
    n = float(num_train_timesteps)
    y = torch.exp(-2 * ((timesteps - n / 2) / n) ** 2)
    y = y - y.min()
    return y * (len(timesteps) / y.sum())


class RectifiedFlow:
    """Timestep table, noising and targets for rectified-flow training (float64 tables)."""

    def __init__(self, config: FlowMatchingConfig | None = None):
        self.config = cfg = config or FlowMatchingConfig()
        self.sigmas = training_sigmas(cfg.num_train_timesteps, cfg.shift)
        self.timesteps = self.sigmas * cfg.num_train_timesteps
        if cfg.weighting == "bell":
            self.weights = bell_weights(self.timesteps, cfg.num_train_timesteps)
        else:
            self.weights = torch.ones_like(self.sigmas)

    def sample(self, batch_size: int, generator: torch.Generator | None = None, device=None) -> dict:
        """Uniform draw from the table: {"index", "sigma", "timestep", "weight"}, each [batch_size] float32."""
        index = torch.randint(0, len(self.sigmas), (batch_size,), generator=generator)
        pick = {"sigma": self.sigmas[index], "timestep": self.timesteps[index], "weight": self.weights[index]}
        out = {key: value.to(device=device, dtype=torch.float32) for key, value in pick.items()}
        out["index"] = index.to(device)
        return out

    def weight_for(self, timestep: torch.Tensor) -> torch.Tensor:
        """Weight of the table entry nearest to each timestep [B] -> [B]."""
        table = self.timesteps.to(timestep.device)
        index = (table[None, :] - timestep.double()[:, None]).abs().argmin(dim=1)
        return self.weights.to(timestep.device)[index].to(torch.float32)

    @staticmethod
    def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x_t = (1 - sigma) x0 + sigma noise; sigma [B] broadcast over the other dims of x0."""
        s = sigma.to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
        return (1 - s) * x0 + s * noise

    @staticmethod
    def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """v = noise - x0."""
        return noise - x0


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted MSE: mean over each sample's elements, times its weight [B], mean over the batch.

    pred and target hold only the tokens the loss covers (the target view's latents).
    Computed in float32 at least, whatever the model's dtype.
    """
    if pred.shape != target.shape:
        raise InputError(f"diffusion loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    dtype = torch.promote_types(pred.dtype, torch.float32)
    per_sample = ((pred.to(dtype) - target.to(dtype)) ** 2).flatten(1).mean(dim=1)
    if weight is not None:
        per_sample = per_sample * weight.to(dtype).view(-1)
    return per_sample.mean()
