"""Typed model configurations and the named presets (``tiny``, ``small``, ``wan2.1-1.3b``).

A :class:`ModelConfig` says everything needed to rebuild a model: the Wan DiT's shapes
(:class:`BackboneConfig`), how cameras enter it (:class:`CameraConfig`), its autoencoder
(:class:`AutoencoderConfig`), text conditioning (:class:`TextConfig`), the default video size
(:class:`VideoConfig`), the token order, the tapped layer and the tracking head's settings.
It round-trips through JSON (``to_dict`` / ``from_dict``), which is what checkpoints store.

Conventions:
    * ``tap_layer`` is a 0-based index into the DiT's blocks (the paper's "layer 18 of 30" is
      ``blocks[18]``). Every model has one; whether a forward pass reads it is the model's
      ``tap`` argument, never a special index (a training config's unset ``model.tap_layer``
      means this preset value).
    * ``token_order="target_first"`` is ReCamMaster's layout: target latent frames, then the
      reference's, along the frame axis; RoPE's frame index runs over both halves.
    * A latent frame covers ``temporal_factor`` video frames except the first, which covers
      one: ``T = temporal_factor * k + 1`` video frames give ``k + 1`` latent frames.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mvt4g.errors import ConfigError

TOKEN_ORDERS = ("target_first", "reference_first")
CAMERA_MODES = ("plucker", "recammaster", "none")
PROJECTION_INITS = ("identity", "zero")
AUTOENCODER_KINDS = ("space_to_depth", "wan_vae")


@dataclass
class BackboneConfig:
    """Shapes of the Wan DiT (the arguments of diffusers' ``WanTransformer3DModel``)."""

    num_layers: int = 30
    num_attention_heads: int = 12
    attention_head_dim: int = 128
    ffn_dim: int = 8960
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    patch_size: tuple[int, int, int] = (1, 2, 2)
    cross_attn_norm: bool = True
    qk_norm: str = "rms_norm_across_heads"
    eps: float = 1e-6
    rope_max_seq_len: int = 1024

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    def diffusers_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``WanTransformer3DModel(**kwargs)``."""
        return {
            "patch_size": tuple(self.patch_size),
            "num_attention_heads": self.num_attention_heads,
            "attention_head_dim": self.attention_head_dim,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "text_dim": self.text_dim,
            "freq_dim": self.freq_dim,
            "ffn_dim": self.ffn_dim,
            "num_layers": self.num_layers,
            "cross_attn_norm": self.cross_attn_norm,
            "qk_norm": self.qk_norm,
            "eps": self.eps,
            "rope_max_seq_len": self.rope_max_seq_len,
        }

    @classmethod
    def from_diffusers_config(cls, cfg: dict[str, Any]) -> BackboneConfig:
        """Read the shapes back from a diffusers ``transformer/config.json`` dictionary."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in cfg.items() if k in names}
        if cfg.get("image_dim") is not None or cfg.get("added_kv_proj_dim") is not None:
            raise ConfigError("image-conditioned (I2V) Wan transformers are not supported")
        out = cls(**values)
        out.patch_size = tuple(out.patch_size)
        return out


@dataclass
class CameraConfig:
    """How cameras condition the DiT.

    mode:
        ``plucker`` (the paper): Plücker ray maps of both views -> one zero-initialised conv
        (kernel = stride = pixels per token) -> per-block ``Linear(dim, dim)`` ->
        added to the self-attention input of every block.
        ``recammaster``: ReCamMaster's per-block ``Linear(12, dim)`` (zero init) on the
        flattened relative target pose ``[R|t]`` of each latent frame, broadcast over the
        token grid of both views and added at the same place.
        ``none``: no camera input (an unconditioned baseline).
    projection_init:
        initial per-block projection in ``plucker`` mode (``identity``: the conv's output
        passes unchanged at first; ``zero``: the projection starts at zero too).
    output_projector:
        ReCamMaster's ``projector``: a per-block ``Linear(dim, dim)`` (identity init) applied
        to the self-attention output before the gate. On in ``recammaster`` mode so converted
        checkpoints compute what ReCamMaster computed; optional elsewhere.
    """

    mode: str = "plucker"
    projection_init: str = "identity"
    output_projector: bool = False


@dataclass
class AutoencoderConfig:
    """The video autoencoder between pixels and the DiT's latents.

    kind:
        ``space_to_depth``: lossless pixel-space folding of ``temporal_factor`` frames and
        ``spatial_factor``^2 pixels into channels (``latent_channels = 3 * tf * sf^2``).
        ``wan_vae``: diffusers' ``AutoencoderKLWan``, loaded from ``path`` (a local diffusers
        directory, the ``vae`` folder or its parent) or, when ``path`` is empty, a small
        randomly initialised one (seeded by ``seed``; for tests and CPU experiments).
    latents_mean / latents_std:
        normalisation ``z_norm = (z - mean) / std`` per channel (one value broadcasts). For a
        loaded Wan VAE they are read from its config and these fields are ignored.
    """

    kind: str = "space_to_depth"
    spatial_factor: int = 2
    temporal_factor: int = 4
    latent_channels: int = 48
    path: str | None = None
    base_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 1, 1, 1)
    num_res_blocks: int = 1
    seed: int = 0
    latents_mean: tuple[float, ...] = (0.0,)
    latents_std: tuple[float, ...] = (0.5,)


@dataclass
class TextConfig:
    """Text conditioning: precomputed prompt embeddings, or a learned null embedding.

    ``null_length`` x ``text_dim`` is the learned embedding used when no prompt embedding is
    given. ``encoder_path`` names a local umT5 (tokenizer + encoder, diffusers' ``text_encoder``
    / ``tokenizer`` layout) used only when ``transformers`` is installed.
    """

    null_length: int = 8
    max_length: int = 512
    encoder_path: str | None = None


@dataclass
class VideoConfig:
    """The preset's default video size (pixels and frames); the model accepts other sizes."""

    frames: int = 81
    height: int = 480
    width: int = 832


@dataclass
class ModelConfig:
    """Everything needed to rebuild an MVTrack4Gen model (see the module docstring)."""

    name: str = "custom"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    text: TextConfig = field(default_factory=TextConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    token_order: str = "target_first"
    tap_layer: int = 18
    use_tracking_head: bool = False
    tracking_head: dict[str, Any] = field(default_factory=dict)
    gradient_checkpointing: bool = False

    # ---- derived quantities -------------------------------------------------------------
    @property
    def token_stride(self) -> int:
        """Pixels per token along x and y (autoencoder spatial factor x spatial patch)."""
        return self.autoencoder.spatial_factor * self.backbone.patch_size[1]

    def latent_frames(self, frames: int) -> int:
        tf = self.autoencoder.temporal_factor
        if frames < 1 or (frames - 1) % tf:
            raise ConfigError(f"a video needs {tf}k+1 frames for the autoencoder, got {frames}")
        return (frames - 1) // tf + 1

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        s = self.token_stride
        if height % s or width % s:
            raise ConfigError(f"video size {height}x{width} is not a multiple of the token stride {s}")
        return height // s, width // s

    # ---- validation ---------------------------------------------------------------------
    def validate(self) -> ModelConfig:
        """Raise :class:`ConfigError` (one line) for an inconsistent configuration."""
        b, c, a = self.backbone, self.camera, self.autoencoder
        d = b.attention_head_dim
        for name in ("num_layers", "num_attention_heads", "attention_head_dim", "ffn_dim", "in_channels", "text_dim"):
            if int(getattr(b, name)) <= 0:
                raise ConfigError(f"backbone.{name} must be positive")
        if d % 2 or d // 3 != 2 * (d // 6):
            raise ConfigError(
                f"attention_head_dim {d} breaks Wan's 3-axis RoPE split (needs d//3 == 2*(d//6); "
                "12, 24, 32, 48, 96, 128 work)"
            )
        if b.freq_dim % 2:
            raise ConfigError(f"backbone.freq_dim must be even, got {b.freq_dim}")
        if len(b.patch_size) != 3 or b.patch_size[1] != b.patch_size[2]:
            raise ConfigError(f"patch_size must be (t, p, p) with square spatial patches, got {tuple(b.patch_size)}")
        if b.patch_size[0] != 1:
            raise ConfigError("a temporal patch size other than 1 is not supported (one token frame per latent frame)")
        if b.out_channels != b.in_channels:
            raise ConfigError("backbone.out_channels must equal in_channels (velocity in latent space)")
        if self.token_order not in TOKEN_ORDERS:
            raise ConfigError(f"token_order must be one of {TOKEN_ORDERS}, got {self.token_order!r}")
        if not 0 <= self.tap_layer < b.num_layers:
            raise ConfigError(f"tap_layer {self.tap_layer} is outside 0..{b.num_layers - 1}")
        if c.mode not in CAMERA_MODES:
            raise ConfigError(f"camera.mode must be one of {CAMERA_MODES}, got {c.mode!r}")
        if c.projection_init not in PROJECTION_INITS:
            raise ConfigError(f"camera.projection_init must be one of {PROJECTION_INITS}, got {c.projection_init!r}")
        if a.kind not in AUTOENCODER_KINDS:
            raise ConfigError(f"autoencoder.kind must be one of {AUTOENCODER_KINDS}, got {a.kind!r}")
        if a.kind == "space_to_depth":
            if a.temporal_factor not in (1, 2, 4, 8):
                raise ConfigError("space_to_depth temporal_factor must be 1, 2, 4 or 8")
            expected = 3 * a.temporal_factor * a.spatial_factor**2
            if a.latent_channels != expected:
                raise ConfigError(
                    f"space_to_depth with factors {a.temporal_factor}x{a.spatial_factor}x{a.spatial_factor} "
                    f"has {expected} channels, config says {a.latent_channels}"
                )
        if a.spatial_factor <= 0 or a.temporal_factor <= 0:
            raise ConfigError("autoencoder factors must be positive")
        if a.latent_channels != b.in_channels:
            raise ConfigError(
                f"autoencoder.latent_channels ({a.latent_channels}) must equal backbone.in_channels ({b.in_channels})"
            )
        for name in ("latents_mean", "latents_std"):
            values = getattr(a, name)
            if len(values) not in (1, a.latent_channels):
                raise ConfigError(f"autoencoder.{name} needs 1 or {a.latent_channels} values, got {len(values)}")
        if any(float(s) <= 0 for s in a.latents_std):
            raise ConfigError("autoencoder.latents_std must be positive")
        if self.text.null_length <= 0:
            raise ConfigError("text.null_length must be positive")
        self.latent_frames(self.video.frames)
        self.token_grid(self.video.height, self.video.width)
        return self

    # ---- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["backbone"]["patch_size"] = list(self.backbone.patch_size)
        for key in ("dim_mult", "latents_mean", "latents_std"):
            out["autoencoder"][key] = list(getattr(self.autoencoder, key))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are a ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError("model config must be a JSON object")
        sections = {
            "backbone": BackboneConfig,
            "camera": CameraConfig,
            "autoencoder": AutoencoderConfig,
            "text": TextConfig,
            "video": VideoConfig,
        }
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - top
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _section(sections[key], value, key)
            else:
                kwargs[key] = copy.deepcopy(value)
        cfg = cls(**kwargs)
        cfg.backbone.patch_size = tuple(cfg.backbone.patch_size)
        for key in ("dim_mult", "latents_mean", "latents_std"):
            setattr(cfg.autoencoder, key, tuple(getattr(cfg.autoencoder, key)))
        return cfg

    def replace(self, **changes: Any) -> ModelConfig:
        """A deep copy with top-level fields replaced."""
        out = copy.deepcopy(self)
        for key, value in changes.items():
            if not hasattr(out, key):
                raise ConfigError(f"unknown model config key {key!r}")
            setattr(out, key, value)
        return out


def _section(kind: type, value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"model config section {name!r} must be an object")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(value) - names
    if unknown:
        raise ConfigError(f"unknown keys in model config section {name!r}: {', '.join(sorted(unknown))}")
    return kind(**value)


# ---- presets ----------------------------------------------------------------------------


def _tiny() -> ModelConfig:
    # 32x32 pixels, 17 frames -> 5 latent frames of 16x16x48 -> 8x8 tokens per frame:
    # 2 views x 5 x 64 = 640 tokens; 3 blocks of 4 heads x 48. A token carries a 2x2 patch of
    # 48 channels = 192 values, so the width is 192: narrower tokens cannot carry the noise
    # through and samples stay noisy (Wan itself has 64 values per token in 1536 channels).
    return ModelConfig(
        name="tiny",
        backbone=BackboneConfig(
            num_layers=3,
            num_attention_heads=4,
            attention_head_dim=48,
            ffn_dim=384,
            in_channels=48,
            out_channels=48,
            text_dim=32,
            freq_dim=32,
            rope_max_seq_len=256,
        ),
        camera=CameraConfig(mode="plucker"),
        autoencoder=AutoencoderConfig(kind="space_to_depth", spatial_factor=2, temporal_factor=4, latent_channels=48),
        text=TextConfig(null_length=4),
        video=VideoConfig(frames=17, height=32, width=32),
        tap_layer=1,
        use_tracking_head=True,
        tracking_head={"preset": "tiny"},
    )


def _small() -> ModelConfig:
    # 64x64 pixels, 17 frames -> 5 latent frames of 32x32x48 -> 16x16 tokens (4 px each) of
    # 192 values; 6 blocks of 8 heads x 32 (dim 256, wider than the 192 values a token
    # carries, see _tiny). 2 x 5 x 256 = 2,560 tokens.
    return ModelConfig(
        name="small",
        backbone=BackboneConfig(
            num_layers=6,
            num_attention_heads=8,
            attention_head_dim=32,
            ffn_dim=768,
            in_channels=48,
            out_channels=48,
            text_dim=64,
            freq_dim=64,
            rope_max_seq_len=256,
        ),
        camera=CameraConfig(mode="plucker"),
        autoencoder=AutoencoderConfig(kind="space_to_depth", spatial_factor=2, temporal_factor=4, latent_channels=48),
        text=TextConfig(null_length=8),
        video=VideoConfig(frames=17, height=64, width=64),
        tap_layer=3,
        use_tracking_head=True,
        tracking_head={"preset": "tiny"},
    )


def _tiny_wanvae() -> ModelConfig:
    # The tiny DiT on a small random AutoencoderKLWan (8x spatial, 4x temporal, 16 channels):
    # exercises the Wan VAE code path on CPU. 64x64 pixels -> 8x8 latents -> 4x4 tokens.
    cfg = _tiny()
    cfg.name = "tiny-wanvae"
    cfg.backbone.in_channels = cfg.backbone.out_channels = 16
    cfg.autoencoder = AutoencoderConfig(
        kind="wan_vae",
        spatial_factor=8,
        temporal_factor=4,
        latent_channels=16,
        base_dim=16,
        dim_mult=(1, 1, 1, 1),
        num_res_blocks=1,
        latents_mean=(0.0,),
        latents_std=(1.0,),
    )
    cfg.video = VideoConfig(frames=17, height=64, width=64)
    return cfg


def _wan21_13b() -> ModelConfig:
    # Wan2.1-T2V-1.3B / ReCamMaster shapes (docs/FACTS.md, section 1); the Wan VAE comes from a local
    # diffusers directory (autoencoder.path), never downloaded.
    return ModelConfig(
        name="wan2.1-1.3b",
        backbone=BackboneConfig(),
        camera=CameraConfig(mode="plucker"),
        autoencoder=AutoencoderConfig(
            kind="wan_vae",
            spatial_factor=8,
            temporal_factor=4,
            latent_channels=16,
            base_dim=96,
            dim_mult=(1, 2, 4, 4),
            num_res_blocks=2,
            latents_mean=(0.0,),
            latents_std=(1.0,),
        ),
        text=TextConfig(null_length=512),
        video=VideoConfig(frames=81, height=480, width=832),
        tap_layer=18,
        use_tracking_head=True,
        tracking_head={"preset": "reference"},
        # Training default (as ReCamMaster trains): a diffusion-only step on one 81x480x832
        # sample peaks at ~169 GiB without it, ~18 GiB with it (`mvt4g info --plan train`).
        gradient_checkpointing=True,
    )


_PRESETS = {
    "tiny": _tiny,
    "small": _small,
    "tiny-wanvae": _tiny_wanvae,
    "wan2.1-1.3b": _wan21_13b,
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def preset(name: str) -> ModelConfig:
    """A fresh copy of the named preset; an unknown name is a ConfigError naming the choices."""
    try:
        factory = _PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r} (choose from: {', '.join(_PRESETS)})") from None
    return factory().validate()
