"""The flow-matching samplers: diffusers' Euler scheduler step for step, convergence on an exact
flow, guidance, settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import InputError
from mvt4g.sample.sampler import (
    EulerFlowSampler,
    SamplingSettings,
    UniPCFlowSampler,
    guided_velocity,
    make_sampler,
    nearest_step,
    sample_flow,
)


def _nonlinear_velocity(x: torch.Tensor, t: torch.Tensor, index: int = 0) -> torch.Tensor:
    """A velocity that depends on the sample and the timestep nonlinearly (float32 in and out)."""
    s = (t.view(-1, *[1] * (x.ndim - 1)) / 1000.0).to(x.dtype)
    return torch.sin(3 * x) * (1 - s) + x * s**2 - 0.3


@pytest.mark.parametrize("steps,shift", [(50, 5.0), (4, 5.0), (13, 3.0), (20, 1.0)])
def test_euler_reproduces_diffusers_scheduler_step_for_step(steps, shift):
    from diffusers import FlowMatchEulerDiscreteScheduler

    ref = FlowMatchEulerDiscreteScheduler(shift=shift)
    ref.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1])
    ours = EulerFlowSampler(steps, shift)
    assert len(ours.timesteps) == len(ref.timesteps) == steps
    # Our grid is float64 rounded once to float32; diffusers shifts in float32: last bits differ.
    assert torch.allclose(ours.sigmas, ref.sigmas, rtol=0, atol=1.2e-7)
    assert torch.allclose(ours.timesteps, ref.timesteps, rtol=0, atol=2.5e-4)
    assert ours.sigmas[-1] == 0 and ours.sigmas[0] == 1

    x0 = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def velocity(x, t, index):
        seen.append((x.clone(), t.clone()))
        return _nonlinear_velocity(x, t)

    out = sample_flow(velocity, x0, ours)
    x = x0.clone()
    for index, t in enumerate(ref.timesteps):
        ours_x, ours_t = seen[index]
        assert torch.allclose(ours_x, x, rtol=0, atol=2e-6), index
        assert torch.allclose(ours_t, t.expand(2), rtol=0, atol=2.5e-4)
        x = ref.step(_nonlinear_velocity(x, t.expand(2)), t, x).prev_sample
    assert torch.allclose(out, x, rtol=0, atol=2e-6)


def _gaussian_flow(mu: float, s: float):
    """Rectified flow from N(0, 1) noise to N(mu, s^2) data: x_t = (1-t) mu + sqrt((1-t)^2 s^2 + t^2) eps.

    Returns the exact velocity field and the exact map noise -> data (mu + s eps).
    """

    def velocity(x, t, index=0):
        t = t.double().view(-1, 1) / 1000.0
        g = (1 - t) ** 2 * s * s + t * t
        return (-mu + (t - (1 - t) * s * s) / g * (x.double() - (1 - t) * mu)).float()

    return velocity, (lambda eps: mu + s * eps)


@pytest.mark.parametrize("shift", [1.0, 5.0])
def test_samplers_converge_to_the_exact_flow_at_their_order(shift):
    velocity, exact = _gaussian_flow(0.7, 0.3)
    eps = torch.randn(4, 256, generator=torch.Generator().manual_seed(1))
    target = exact(eps)

    def error(sampler_name, steps):
        sampler = make_sampler(SamplingSettings(steps=steps, shift=shift, sampler=sampler_name))
        return float((sample_flow(velocity, eps, sampler) - target).abs().max())

    e_euler = [error("euler", n) for n in (50, 200)]
    e_unipc = [error("unipc", n) for n in (50, 200)]
    # Euler is first order: 4x the steps -> about 4x smaller error.
    assert 3.0 < e_euler[0] / e_euler[1] < 5.0
    # UniPC (2nd order predictor + corrector) gains at least 8x, and beats Euler at equal steps.
    assert e_unipc[0] / e_unipc[1] > 8.0
    assert e_unipc[0] < e_euler[0] and e_unipc[1] < e_euler[1]
    assert e_unipc[1] < 0.005


@pytest.mark.parametrize("name", ["euler", "unipc"])
def test_single_point_data_is_recovered_exactly(name):
    # Data = one point x0: the velocity (x - x0) / s is exact for every flow sampler's step.
    x0 = torch.tensor([[0.25, -1.5, 2.0]])

    def velocity(x, t, index):
        return (x - x0) / (t.view(-1, 1) / 1000.0)

    sampler = make_sampler(SamplingSettings(steps=7, sampler=name))
    out = sample_flow(velocity, torch.randn(1, 3, generator=torch.Generator().manual_seed(2)), sampler)
    assert torch.allclose(out, x0, atol=1e-4)


def test_unipc_sampler_restarts_cleanly_when_reused():
    velocity, _ = _gaussian_flow(0.2, 0.5)
    eps = torch.randn(2, 64, generator=torch.Generator().manual_seed(3))
    sampler = UniPCFlowSampler(10, 5.0)
    first = sample_flow(velocity, eps, sampler)
    second = sample_flow(velocity, eps, sampler)
    assert torch.equal(first, second)
    assert torch.allclose(sampler.timesteps, sampler.sigmas[:-1] * 1000)
    assert sampler.sigmas[0] == pytest.approx(1.0, abs=2e-6) and sampler.sigmas[-1] == 0


def test_callback_counts_steps():
    calls = []
    sample_flow(lambda x, t, i: x * 0, torch.zeros(1, 2), EulerFlowSampler(6), callback=lambda d, n: calls.append((d, n)))
    assert calls == [(i, 6) for i in range(1, 7)]


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.0, 12.0), seed=st.integers(0, 1000))
def test_guidance_is_the_cfg_combination(scale, seed):
    g = torch.Generator().manual_seed(seed)
    cond, uncond = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    out = guided_velocity(cond, uncond, scale)
    assert torch.allclose(out, (1 - scale) * uncond + scale * cond, atol=1e-12)
    assert torch.allclose(guided_velocity(cond, uncond, 1.0), cond, atol=1e-12)
    assert torch.equal(guided_velocity(cond, uncond, 0.0), uncond)


def test_nearest_step_and_settings_validation():
    sampler = EulerFlowSampler(4, 5.0)  # timesteps 1000, 937.5, 833.3, 625
    assert nearest_step(sampler, 0) == 3
    assert nearest_step(sampler, 900) == 1
    assert nearest_step(sampler, 1000) == 0
    with pytest.raises(InputError, match="track-timestep"):
        nearest_step(sampler, 1001)
    for bad in ({"steps": 0}, {"shift": 0.0}, {"sampler": "ddim"}, {"guidance": -1.0}, {"guidance": float("nan")}):
        with pytest.raises(InputError):
            SamplingSettings(**bad)
    assert SamplingSettings().to_dict() == {"steps": 50, "shift": 5.0, "sampler": "euler", "guidance": 5.0}
