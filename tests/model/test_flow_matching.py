"""Rectified flow: sigma tables against diffusers, DiffSynth's weighting formula, noising and the loss."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import ConfigError, InputError
from mvt4g.model.flow_matching import (
    FlowMatchingConfig,
    RectifiedFlow,
    diffusion_loss,
    inference_sigmas,
    shift_sigmas,
    training_sigmas,
)


def test_training_table_matches_diffusers():
    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0)
    ours = training_sigmas(1000, 5.0)
    assert len(ours) == 1000 and ours[0] == 1.0
    np.testing.assert_allclose(ours.numpy(), sched.sigmas.double().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose((ours * 1000).numpy(), sched.timesteps.double().numpy(), rtol=0, atol=1e-3)


@pytest.mark.parametrize("steps,shift", [(50, 5.0), (20, 3.0), (1, 5.0)])
def test_inference_grid_matches_diffusers(steps, shift):
    sched = FlowMatchEulerDiscreteScheduler(shift=shift)
    sched.set_timesteps(sigmas=np.linspace(1, 0, steps + 1)[:-1])
    ours = inference_sigmas(steps, shift)
    np.testing.assert_allclose(ours.numpy(), sched.sigmas[:-1].double().numpy(), rtol=0, atol=1e-6)
    assert sched.sigmas[-1] == 0
    np.testing.assert_allclose((ours * 1000).numpy(), sched.timesteps.double().numpy(), rtol=0, atol=1e-3)


def test_bell_weights_follow_diffsynth_formula():
    flow = RectifiedFlow()
    t = 1000 * (5 * np.linspace(1, 0, 1001)[:-1] / (1 + 4 * np.linspace(1, 0, 1001)[:-1]))
    y = np.exp(-2 * ((t - 500) / 1000) ** 2)
    y = y - y.min()
    np.testing.assert_allclose(flow.weights.numpy(), y * 1000 / y.sum(), rtol=1e-12)
    assert flow.weights.mean().item() == pytest.approx(1.0)
    assert flow.weights.min().item() == pytest.approx(0.0, abs=1e-12)
    assert abs(flow.timesteps[flow.weights.argmax()].item() - 500) < 2  # peak at mid-range timesteps
    assert torch.all(RectifiedFlow(FlowMatchingConfig(weighting="none")).weights == 1)


@settings(max_examples=30, deadline=None)
@given(shift=st.floats(0.2, 10), s=st.floats(0, 1))
def test_shift_is_monotone_map_of_unit_interval(shift, s):
    a = shift_sigmas(torch.tensor([0.0, s, min(s + 1e-3, 1.0), 1.0], dtype=torch.float64), shift)
    assert a[0] == 0 and a[3] == pytest.approx(1.0) and 0 <= a[1] <= a[2] <= 1


def test_noising_target_and_exact_euler_path():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    xt = RectifiedFlow.add_noise(x0, eps, sigma)
    v = RectifiedFlow.velocity_target(x0, eps)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], eps[2])
    torch.testing.assert_close(xt, x0 + sigma.view(-1, 1, 1) * v)
    # The straight path: Euler with the true velocity over the inference grid lands on x0.
    x = eps.clone()
    grid = torch.cat([inference_sigmas(50, 5.0), torch.zeros(1, dtype=torch.float64)])
    for s, s_next in itertools.pairwise(grid):
        x = x + (s_next - s) * v
    torch.testing.assert_close(x, x0)


def test_sampling_is_uniform_over_the_table():
    flow = RectifiedFlow()
    draw = flow.sample(20_000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draw["index"], minlength=1000).double()
    assert counts.min() > 0 and counts.max() < 60  # mean 20; a biased sampler would leave gaps or piles
    torch.testing.assert_close(draw["sigma"], flow.sigmas[draw["index"]].float())
    torch.testing.assert_close(draw["weight"], flow.weights[draw["index"]].float())
    torch.testing.assert_close(flow.weight_for(draw["timestep"][:50]), draw["weight"][:50])


def test_diffusion_loss_weights_each_sample():
    pred = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    assert diffusion_loss(pred, target).item() == pytest.approx((5.0 + 4.0) / 2)
    assert diffusion_loss(pred, target, torch.tensor([2.0, 0.5])).item() == pytest.approx((10.0 + 2.0) / 2)
    low = diffusion_loss(pred.bfloat16(), target.bfloat16())
    assert low.dtype == torch.float32
    with pytest.raises(InputError):
        diffusion_loss(pred, target[:1])


def test_config_validation_and_round_trip():
    with pytest.raises(ConfigError):
        FlowMatchingConfig(shift=0)
    with pytest.raises(ConfigError):
        FlowMatchingConfig(weighting="logit_normal")
    with pytest.raises(ConfigError):
        FlowMatchingConfig.from_dict({"shift": 5, "steps": 3})
    with pytest.raises(InputError):
        inference_sigmas(0)
    cfg = FlowMatchingConfig(shift=3.0, weighting="none")
    assert FlowMatchingConfig.from_dict(cfg.to_dict()) == cfg
