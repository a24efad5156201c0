"""Autoencoders: the lossless space-to-depth folding and the (tiny, random) Wan VAE path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import InputError
from mvt4g.model.autoencoder import (
    SpaceToDepthAutoencoder,
    WanVideoAutoencoder,
    build_autoencoder,
)
from mvt4g.model.config import AutoencoderConfig, preset


def s2d(tf: int, sf: int, mean=(0.0,), std=(0.5,)) -> SpaceToDepthAutoencoder:
    return SpaceToDepthAutoencoder(
        AutoencoderConfig(kind="space_to_depth", temporal_factor=tf, spatial_factor=sf, latent_channels=3 * tf * sf * sf,
                          latents_mean=mean, latents_std=std)
    )


@settings(max_examples=25, deadline=None)
@given(
    tf=st.sampled_from([1, 2, 4, 8]),
    sf=st.sampled_from([1, 2, 4]),
    k=st.integers(0, 2),
    hw=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_space_to_depth_is_lossless(tf, sf, k, hw, seed):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(2, 3, tf * k + 1, hw[0] * sf, hw[1] * sf, generator=g) * 2 - 1
    ae = s2d(tf, sf, mean=(0.1,), std=(0.3,))
    z = ae.encode(video)
    assert z.shape == (2, 3 * tf * sf * sf, k + 1, hw[0], hw[1])
    # Bit-exact in raw latent space (the normalisation divides by 0.3, which rounds).
    assert torch.equal(ae.decode(ae.encode(video, normalize=False), normalize=False), video)
    torch.testing.assert_close(ae.decode(z), video, atol=1e-6, rtol=0)


def test_space_to_depth_channel_layout_matches_a_naive_loop():
    tf, sf = 4, 2
    rng = np.random.default_rng(0)
    video = rng.standard_normal((1, 3, 9, 4, 6)).astype(np.float32)
    z = s2d(tf, sf).encode(torch.from_numpy(video), normalize=False).numpy()
    expected = np.zeros_like(z)
    for j in range(3):
        for t in range(tf):
            frame = 0 if j == 0 else tf * (j - 1) + 1 + t
            for c in range(3):
                for dy in range(sf):
                    for dx in range(sf):
                        ch = ((c * tf + t) * sf + dy) * sf + dx
                        expected[0, ch, j] = video[0, c, frame, dy::sf, dx::sf]
    np.testing.assert_array_equal(z, expected)


def test_space_to_depth_normalisation_and_first_frame_mean():
    ae = s2d(4, 1, mean=(0.25,), std=(0.5,))
    video = torch.zeros(1, 3, 5, 2, 2)
    z = ae.encode(video)
    torch.testing.assert_close(z, torch.full_like(z, -0.5))  # (0 - 0.25) / 0.5
    # Decoding averages frame 0's four copies.
    raw = ae.encode(video, normalize=False)
    raw[:, 0:3] = 1.0  # red channel, copies 0-2 of frame 0
    assert ae.decode(raw, normalize=False)[0, 0, 0, 0, 0].item() == pytest.approx(0.75)


def test_space_to_depth_rejects_bad_frame_counts():
    with pytest.raises(InputError, match="4k\\+1"):
        s2d(4, 2).encode(torch.zeros(1, 3, 6, 4, 4))
    with pytest.raises(InputError, match="multiple"):
        s2d(4, 2).encode(torch.zeros(1, 3, 5, 3, 4))


def test_tiny_random_wan_vae_shapes_normalisation_and_seed():
    cfg = preset("tiny-wanvae").autoencoder
    cfg.latents_mean = (0.5,)
    cfg.latents_std = (2.0,)
    a, b = build_autoencoder(cfg), build_autoencoder(cfg)
    assert isinstance(a, WanVideoAutoencoder) and (a.spatial_factor, a.temporal_factor) == (8, 4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name  # seeded: the random VAE is a function of its config
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        raw = a.encode(video, normalize=False)
        z = a.encode(video)
        assert raw.shape == (1, 16, 2, 2, 2)
        torch.testing.assert_close(z, (raw - 0.5) / 2.0)
        assert a.decode(z).shape == video.shape
