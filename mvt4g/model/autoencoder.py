"""Video autoencoders between pixels and the DiT's latents (docs/ARCHITECTURE.md, "Two scales").

Both kinds share one interface: ``encode(video) -> latents`` and ``decode(latents) -> video``,
with ``video`` ``[B, 3, T, H, W]`` in ``[-1, 1]`` (``T = tf*k + 1`` frames) and latents
``[B, C, k+1, H/sf, W/sf]`` NORMALISED: ``z_norm = (z - latents_mean) / latents_std`` per
channel (``normalize=False`` gives raw latents). Caches of latents store the normalised ones.

* :class:`SpaceToDepthAutoencoder`: lossless. Latent frame 0 holds video frame 0 repeated
  ``tf`` times (Wan's first latent frame also covers one frame); latent frame ``j >= 1`` holds
  frames ``tf*(j-1)+1 .. tf*j``. Each ``sf x sf`` pixel block of those frames folds into
  channels ordered (rgb, frame-in-group, dy, dx). Decoding frame 0 averages its ``tf`` copies
  by pairwise sums, exact when they are equal, so ``decode(encode(x)) == x`` bit for bit.
* :class:`WanVideoAutoencoder`: diffusers' ``AutoencoderKLWan`` (8x spatial, 4x temporal),
  from a local diffusers directory, or small and random (seeded) for tests. Encoding takes
  the posterior mean; the normalisation statistics are the VAE config's
  ``latents_mean`` / ``latents_std`` (what Wan's pipelines use).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mvt4g.errors import InputError
from mvt4g.model.config import AutoencoderConfig


class _Normalizer(nn.Module):
    def __init__(self, mean: list[float], std: list[float], channels: int):
        super().__init__()
        mean_t = torch.tensor([float(m) for m in mean], dtype=torch.float32)
        std_t = torch.tensor([float(s) for s in std], dtype=torch.float32)
        self.register_buffer("latents_mean", mean_t.expand(channels).clone().view(1, channels, 1, 1, 1), persistent=False)
        self.register_buffer("latents_std", std_t.expand(channels).clone().view(1, channels, 1, 1, 1), persistent=False)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return ((z - self.latents_mean.to(z)) / self.latents_std.to(z)).to(z.dtype)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z * self.latents_std.to(z) + self.latents_mean.to(z)).to(z.dtype)


def _check_video(video: torch.Tensor, tf: int, sf: int) -> None:
    if video.ndim != 5 or video.shape[1] != 3:
        raise InputError(f"video must be [B, 3, T, H, W], got {list(video.shape)}")
    t, h, w = video.shape[2:]
    if (t - 1) % tf:
        raise InputError(f"video has {t} frames; the autoencoder needs {tf}k+1")
    if h % sf or w % sf:
        raise InputError(f"video size {h}x{w} is not a multiple of the autoencoder's factor {sf}")


def _pairwise_mean(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean over ``dim`` (a power-of-two length) by pairwise sums: exact for equal values."""
    while x.shape[dim] > 1:
        a, b = x.chunk(2, dim=dim)
        x = a + b
        # Halving is exact in binary floating point; doing it per level keeps magnitudes bounded.
        x = x * 0.5
    return x.squeeze(dim)


class SpaceToDepthAutoencoder(nn.Module):
    """Lossless pixel-space folding (see the module docstring)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.spatial_factor = config.spatial_factor
        self.temporal_factor = config.temporal_factor
        self.latent_channels = 3 * config.temporal_factor * config.spatial_factor**2
        self.normalizer = _Normalizer(list(config.latents_mean), list(config.latents_std), self.latent_channels)

    def encode(self, video: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        tf, sf = self.temporal_factor, self.spatial_factor
        _check_video(video, tf, sf)
        b, c, _, h, w = video.shape
        first = video[:, :, :1].expand(b, c, tf, h, w)
        grouped = torch.cat([first, video[:, :, 1:]], dim=2)  # [B, 3, tf*(k+1), H, W]
        frames = grouped.shape[2] // tf
        x = grouped.reshape(b, c, frames, tf, h // sf, sf, w // sf, sf)
        x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)  # [B, 3, tf, dy, dx, F, h, w]
        z = x.reshape(b, self.latent_channels, frames, h // sf, w // sf)
        return self.normalizer.normalize(z) if normalize else z

    def decode(self, latents: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        tf, sf = self.temporal_factor, self.spatial_factor
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise InputError(f"latents must be [B, {self.latent_channels}, F, h, w], got {list(latents.shape)}")
        z = self.normalizer.denormalize(latents) if normalize else latents
        b, _, frames, h, w = z.shape
        x = z.reshape(b, 3, tf, sf, sf, frames, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        x = x.reshape(b, 3, frames, tf, h * sf, w * sf)  # [B, 3, F, tf, H, W]
        first = _pairwise_mean(x[:, :, 0], dim=2).unsqueeze(2)
        rest = x[:, :, 1:].flatten(2, 3)
        return torch.cat([first, rest], dim=2)


class WanVideoAutoencoder(nn.Module):
    """diffusers' ``AutoencoderKLWan`` with normalised latents (see the module docstring)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.latent_channels = int(cfg.z_dim)
        self.spatial_factor = int(getattr(cfg, "scale_factor_spatial", 8) or 8)
        self.temporal_factor = int(getattr(cfg, "scale_factor_temporal", 4) or 4)
        self.normalizer = _Normalizer(list(cfg.latents_mean), list(cfg.latents_std), self.latent_channels)

    def encode(self, video: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        _check_video(video, self.temporal_factor, self.spatial_factor)
        z = self.vae.encode(video.to(self.vae.dtype)).latent_dist.mode()
        return self.normalizer.normalize(z) if normalize else z

    def decode(self, latents: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        z = self.normalizer.denormalize(latents) if normalize else latents
        return self.vae.decode(z.to(self.vae.dtype)).sample


def _wan_vae_kwargs(config: AutoencoderConfig) -> dict:
    """``AutoencoderKLWan`` arguments of a path-less (random) Wan VAE config."""
    channels = config.latent_channels
    return {
        "base_dim": config.base_dim,
        "z_dim": channels,
        "dim_mult": list(config.dim_mult),
        "num_res_blocks": config.num_res_blocks,
        "temperal_downsample": [False, True, True],
        "latents_mean": list(config.latents_mean) * (channels if len(config.latents_mean) == 1 else 1),
        "latents_std": list(config.latents_std) * (channels if len(config.latents_std) == 1 else 1),
    }


def _random_wan_vae(config: AutoencoderConfig) -> nn.Module:
    from diffusers import AutoencoderKLWan

    # A fixed seed makes the random VAE a pure function of its config (reproducible latents).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return AutoencoderKLWan(**_wan_vae_kwargs(config))


def autoencoder_parameters(config: AutoencoderConfig) -> int:
    """Parameter count of the autoencoder a config describes, built on the meta device (no weights read).

    The space-to-depth autoencoder has none; a Wan VAE is counted from its ``config.json``
    when ``path`` names one, else from the config's own shape.
    """
    if config.kind == "space_to_depth":
        return 0
    from diffusers import AutoencoderKLWan

    if config.path:
        root = Path(config.path)
        folder = root / "vae" if (root / "vae" / "config.json").is_file() else root
        if not (folder / "config.json").is_file():
            raise InputError("not a diffusers AutoencoderKLWan directory (no config.json)", path=root)
        with torch.device("meta"):
            vae = AutoencoderKLWan.from_config(AutoencoderKLWan.load_config(str(folder)))
    else:
        with torch.device("meta"):
            vae = AutoencoderKLWan(**_wan_vae_kwargs(config))
    return sum(p.numel() for p in vae.parameters())


def load_wan_vae(path: str | Path, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """``AutoencoderKLWan`` from a local diffusers directory (its ``vae`` folder or the folder itself)."""
    from diffusers import AutoencoderKLWan

    root = Path(path)
    if not root.exists():
        # The usual cause: a converted model moved without its base (it refers to it by a relative path).
        raise InputError("the Wan VAE folder does not exist (keep a converted model beside its base, or convert "
                         "with --copy)", path=root)  # fmt: skip
    folder = root / "vae" if (root / "vae" / "config.json").is_file() else root
    if not (folder / "config.json").is_file():
        raise InputError("not a diffusers AutoencoderKLWan directory (no config.json)", path=root)
    from diffusers.utils import logging as diffusers_logging

    # diffusers warns on every load (no `accelerate`; an empty "keep in float32" list): the
    # core prints nothing, and neither changes what is loaded.
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        return AutoencoderKLWan.from_pretrained(folder, local_files_only=True, torch_dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the Wan VAE: {str(exc).splitlines()[0]}", path=folder) from None
    finally:
        diffusers_logging.set_verbosity(verbosity)


def build_autoencoder(config: AutoencoderConfig, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The autoencoder a config describes (loads a Wan VAE from ``config.path`` when given)."""
    if config.kind == "space_to_depth":
        return SpaceToDepthAutoencoder(config)
    if config.path:
        vae = load_wan_vae(config.path, dtype=dtype)
    else:  # built in float32; cast only when asked (diffusers warns on every dtype .to())
        vae = _random_wan_vae(config)
        vae = vae if dtype == torch.float32 else vae.to(dtype)
    if int(vae.config.z_dim) != config.latent_channels:
        raise InputError(
            f"the Wan VAE has {vae.config.z_dim} latent channels, the model expects {config.latent_channels}",
            path=config.path,
        )
    return WanVideoAutoencoder(vae.eval())
