"""Flow-matching samplers for generation: Euler on ReCamMaster's sigma grid, or UniPC.

The model predicts the rectified-flow velocity ``v = eps - x0`` of ``x_s = (1 - s) x0 + s eps``
(``mvt4g.model.flow_matching``). Sampling integrates ``dx/ds = v(x, s)`` from pure noise at
``s = 1`` down to ``s = 0``.

Grid (both samplers): ``linspace(1, 0, steps + 1)[:-1]`` shifted by
``s' = shift s / (1 + (shift - 1) s)`` (shift 5 for ReCamMaster), then a final 0. The model
sees Wan's timestep ``1000 s'``.

* ``euler`` (default; ReCamMaster's sampler): ``x <- x + (s'_{i+1} - s'_i) v``, computed in
  float32 from the float64 grid rounded to float32. It reproduces diffusers'
  ``FlowMatchEulerDiscreteScheduler(shift=shift)`` with
  ``set_timesteps(sigmas=linspace(1, 0, steps + 1)[:-1])`` step for step
  (``tests/test_sampler.py``); our grid is the correctly rounded one, diffusers' (shifted in
  float32) differs from it in the last bits (at most 1.2e-7).
* ``unipc``: diffusers' ``UniPCMultistepScheduler`` in flow mode (``use_flow_sigmas``,
  ``prediction_type="flow_prediction"``, second order, UniC corrector) on the same grid
  (its first sigma is ``1 - 1e-6``, which UniPC needs to stay finite). Higher order: fewer
  steps for the same error on smooth flows.

Classifier-free guidance (:func:`guided_velocity`): ``v = v_u + g (v_c - v_u)`` with ``v_c``
conditioned on the prompt and ``v_u`` on the negative prompt; ``g = 1`` is the conditional
prediction alone.

Nothing here prints; progress goes through the ``callback(step, steps)`` argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from mvt4g.errors import InputError
from mvt4g.model.flow_matching import inference_sigmas

SAMPLERS = ("euler", "unipc")
NUM_TRAIN_TIMESTEPS = 1000


@dataclass(frozen=True)
class SamplingSettings:
    """What a generation's denoising loop does (defaults: ReCamMaster's inference, docs/FACTS.md, section 1)."""

    steps: int = 50
    shift: float = 5.0
    sampler: str = "euler"
    guidance: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise InputError(f"--steps must be a positive integer, got {self.steps}")
        if not (self.shift > 0 and self.shift < float("inf")):
            raise InputError(f"--shift must be a positive number, got {self.shift}")
        if self.sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {self.sampler!r} (choose from: {', '.join(SAMPLERS)})")
        if not (self.guidance >= 0 and self.guidance < float("inf")):
            raise InputError(f"--guidance must be a number >= 0, got {self.guidance}")

    def to_dict(self) -> dict:
        return asdict(self)


class EulerFlowSampler:
    """Euler steps on the shifted grid; ``sigmas`` float32 ``[steps + 1]`` ending in 0."""

    name = "euler"

    def __init__(self, steps: int, shift: float = 5.0, device: torch.device | str | None = None):
        grid = inference_sigmas(steps, shift)  # float64, descending from 1
        self.sigmas = torch.cat([grid, grid.new_zeros(1)]).to(torch.float32).to(device)
        self.timesteps = self.sigmas[:-1] * NUM_TRAIN_TIMESTEPS

    def step(self, velocity: torch.Tensor, index: int, sample: torch.Tensor) -> torch.Tensor:
        """``x_{i+1}`` from ``x_i`` and the velocity at step ``index`` (float32 arithmetic)."""
        dt = self.sigmas[index + 1] - self.sigmas[index]
        return sample.to(torch.float32) + dt * velocity.to(torch.float32)


class UniPCFlowSampler:
    """diffusers' UniPC multistep solver in flow-prediction mode on the shifted grid.

    The model is given ``1000 s`` as a float (the sigma the solver steps with); diffusers'
    own timesteps for UniPC are that value truncated to an integer, used here only to drive
    the scheduler.
    """

    name = "unipc"

    def __init__(self, steps: int, shift: float = 5.0, device: torch.device | str | None = None):
        from diffusers import UniPCMultistepScheduler

        self.scheduler = UniPCMultistepScheduler(
            num_train_timesteps=NUM_TRAIN_TIMESTEPS,
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=float(shift),
            solver_order=2,
            final_sigmas_type="zero",
        )
        import numpy as np

        self._base = np.linspace(1.0, 0.0, steps + 1)[:-1]
        self._device = device
        self.reset()
        self.sigmas = self.scheduler.sigmas.to(device=device, dtype=torch.float32)
        self.timesteps = self.sigmas[:-1] * NUM_TRAIN_TIMESTEPS

    def reset(self) -> None:
        """Forget the solver's history (``set_timesteps`` starts a new trajectory)."""
        self.scheduler.set_timesteps(sigmas=self._base, device=self._device)

    def step(self, velocity: torch.Tensor, index: int, sample: torch.Tensor) -> torch.Tensor:
        if index == 0:
            self.reset()
        t = self.scheduler.timesteps[index]
        out = self.scheduler.step(velocity.to(torch.float32), t, sample.to(torch.float32), return_dict=False)[0]
        return out.to(torch.float32)


def make_sampler(settings: SamplingSettings, device: torch.device | str | None = None):
    """The sampler ``settings.sampler`` names, on ``settings``' grid."""
    if settings.sampler == "euler":
        return EulerFlowSampler(settings.steps, settings.shift, device)
    return UniPCFlowSampler(settings.steps, settings.shift, device)


def guided_velocity(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``v_u + scale (v_c - v_u)``."""
    return unconditional + scale * (conditional - unconditional)


VelocityFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def sample_flow(
    velocity_fn: VelocityFn,
    noise: torch.Tensor,
    sampler,
    *,
    callback: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Integrate from ``noise`` (``s = 1``) to ``s = 0``; returns float32 latents.

    ``velocity_fn(x, timestep, index)`` gets the current float32 sample, the timestep
    ``[B]`` float32 in Wan's units (``1000 s``) and the step index, and returns the velocity
    (any dtype; it is used in float32). ``callback(done, total)`` runs after each step.
    """
    x = noise.to(torch.float32)
    steps = len(sampler.timesteps)
    for index in range(steps):
        t = sampler.timesteps[index].expand(x.shape[0]).to(x.device)
        velocity = velocity_fn(x, t, index)
        if velocity.shape != x.shape:
            raise InputError(f"velocity has shape {list(velocity.shape)}, the sample {list(x.shape)}")
        x = sampler.step(velocity, index, x)
        if callback is not None:
            callback(index + 1, steps)
    return x


def nearest_step(sampler, timestep: float) -> int:
    """Index of the grid step whose timestep (Wan units, 0..1000) is nearest ``timestep``."""
    if not (0.0 <= float(timestep) <= NUM_TRAIN_TIMESTEPS):
        raise InputError(f"--track-timestep must be in [0, {NUM_TRAIN_TIMESTEPS}], got {timestep}")
    return int((sampler.timesteps.double().cpu() - float(timestep)).abs().argmin())
