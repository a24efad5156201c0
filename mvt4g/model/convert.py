"""Convert a ReCamMaster checkpoint (DiffSynth / original Wan key names) to an mvt4g model.

ReCamMaster fine-tunes Wan2.1-T2V-1.3B in DiffSynth-Studio, whose DiT uses the original Wan
parameter names, and adds two layers per block: ``blocks.i.cam_encoder`` (``Linear(12, dim)``
on the flattened relative pose) and ``blocks.i.projector`` (``Linear(dim, dim)`` on the
self-attention output). :data:`WAN_RENAMES` is the ordered rename table from those names to
diffusers' ``WanTransformer3DModel`` (docs/FACTS.md, section 4); it agrees with diffusers' own
``convert_wan_transformer_to_diffusers`` (a test checks every key of a model both ways).
Each rule is a pair of templates; ``{i}`` stands for a block index, a template ending in
``.`` is a prefix (the rest of the key is kept) and any other template is a whole key.
The first matching rule wins; a key no rule matches is an error.

:func:`convert_recammaster` fills the model from a diffusers-format Wan directory (``--base``)
first, then overwrites with the checkpoint's tensors (a checkpoint may hold only the
fine-tuned subset). Pickled checkpoints are read with ``torch.load(weights_only=True)`` only.

The autoencoder is the base's ``vae/`` (:data:`AUTOENCODER_SOURCES`): a base without one is
refused, because silently pairing the DiT with a random full-size VAE gives noise; the
built-in ``space-to-depth`` or a small ``random-vae`` are there when asked for by name.
:func:`save_converted` writes the model so that it never holds an absolute path: the base's
``vae/``, ``text_encoder/`` and ``tokenizer/`` are either referred to by a path relative to
the model folder (``link``: move the two folders together) or copied into it (``copy``).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mvt4g.errors import ConfigError, InputError
from mvt4g.fs.jsonio import read_json

# (original / DiffSynth name, diffusers WanTransformer3DModel name), in matching order.
WAN_RENAMES: tuple[tuple[str, str], ...] = (
    ("patch_embedding.", "patch_embedding."),
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("head.head.", "proj_out."),
    ("head.modulation", "scale_shift_table"),
    ("blocks.{i}.modulation", "blocks.{i}.scale_shift_table"),
    ("blocks.{i}.self_attn.q.", "blocks.{i}.attn1.to_q."),
    ("blocks.{i}.self_attn.k.", "blocks.{i}.attn1.to_k."),
    ("blocks.{i}.self_attn.v.", "blocks.{i}.attn1.to_v."),
    ("blocks.{i}.self_attn.o.", "blocks.{i}.attn1.to_out.0."),
    ("blocks.{i}.self_attn.norm_q.", "blocks.{i}.attn1.norm_q."),
    ("blocks.{i}.self_attn.norm_k.", "blocks.{i}.attn1.norm_k."),
    ("blocks.{i}.cross_attn.q.", "blocks.{i}.attn2.to_q."),
    ("blocks.{i}.cross_attn.k.", "blocks.{i}.attn2.to_k."),
    ("blocks.{i}.cross_attn.v.", "blocks.{i}.attn2.to_v."),
    ("blocks.{i}.cross_attn.o.", "blocks.{i}.attn2.to_out.0."),
    ("blocks.{i}.cross_attn.norm_q.", "blocks.{i}.attn2.norm_q."),
    ("blocks.{i}.cross_attn.norm_k.", "blocks.{i}.attn2.norm_k."),
    # Original Wan: norm3 is the (affine) cross-attention norm, norm2 the FFN norm; diffusers
    # swaps the two names.
    ("blocks.{i}.norm3.", "blocks.{i}.norm2."),
    ("blocks.{i}.norm2.", "blocks.{i}.norm3."),
    ("blocks.{i}.ffn.0.", "blocks.{i}.ffn.net.0.proj."),
    ("blocks.{i}.ffn.2.", "blocks.{i}.ffn.net.2."),
)

# ReCamMaster's additions -> the composite model's camera modules.
RECAMMASTER_RENAMES: tuple[tuple[str, str], ...] = (
    ("blocks.{i}.cam_encoder.", "camera.pose_encoders.{i}."),
    ("blocks.{i}.projector.", "camera.output_projectors.{i}."),
)

# Prefixes wrappers put in front of the DiT's names (stripped when every tensor key has one).
_WRAPPER_PREFIXES = ("model.diffusion_model.", "pipe.dit.", "dit.", "module.")


def _compile(template: str) -> re.Pattern:
    body = re.escape(template).replace(re.escape("{i}"), r"(?P<i>\d+)")
    return re.compile("^" + body + ("" if template.endswith(".") else "$"))


def _apply(key: str, rules: tuple[tuple[str, str], ...], reverse: bool = False) -> str | None:
    for src, dst in rules:
        if reverse:
            src, dst = dst, src
        match = _compile(src).match(key)
        if match:
            out = dst.replace("{i}", match.group("i")) if "{i}" in dst else dst
            return out + key[match.end():]
    return None


def original_to_diffusers(key: str) -> str | None:
    """The diffusers name of an original Wan / DiffSynth DiT key (None when unmapped)."""
    return _apply(key, WAN_RENAMES)


def diffusers_to_original(key: str) -> str | None:
    """The original Wan / DiffSynth name of a diffusers ``WanTransformer3DModel`` key."""
    return _apply(key, WAN_RENAMES, reverse=True)


def recammaster_to_composite(key: str) -> str | None:
    """Map one ReCamMaster checkpoint key onto the composite model's key (None when unmapped)."""
    cam = _apply(key, RECAMMASTER_RENAMES)
    if cam is not None:
        return "backbone." + cam
    wan = original_to_diffusers(key)
    return None if wan is None else "backbone.transformer." + wan


def composite_to_recammaster(key: str) -> str | None:
    """Inverse of :func:`recammaster_to_composite` (for writing ReCamMaster-named files)."""
    if key.startswith("backbone.camera."):
        return _apply(key[len("backbone."):], RECAMMASTER_RENAMES, reverse=True)
    if key.startswith("backbone.transformer."):
        return diffusers_to_original(key[len("backbone.transformer."):])
    return None


# ---- reading inputs ------------------------------------------------------------------------


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a PyTorch pickle (``weights_only=True``), flattened.

    A Lightning-style ``{"state_dict": {...}}`` is unwrapped when the top level holds no
    tensors; a wrapper prefix shared by every key (``dit.``, ``model.diffusion_model.``, ...) is
    stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint does not exist", path=path)
    if path.suffix == ".safetensors":
        from mvt4g.model.checkpoint import load_state_dict_file

        tensors = load_state_dict_file(path)
    else:
        try:
            with warnings.catch_warnings():  # torch warns before refusing a pickle; the error line says it all
                warnings.simplefilter("ignore")
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 (pickle/zip errors come in many types)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"not a loadable PyTorch checkpoint with weights_only=True ({type(exc).__name__}: {first[:160]})",
                path=path,
            ) from None
        tensors = _tensor_dict(obj, path)
    if not tensors:
        raise InputError("checkpoint holds no tensors", path=path)
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
            break
    return tensors


def _tensor_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict):
        raise InputError(f"checkpoint is a {type(obj).__name__}, not a dictionary of tensors", path=path)
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if tensors:
        return tensors
    for key in ("state_dict", "module", "model"):
        inner = obj.get(key)
        if isinstance(inner, dict):
            return _tensor_dict(inner, path)
    return {}


def find_transformer_dir(base: str | Path) -> Path:
    """The diffusers ``WanTransformer3DModel`` folder of a Wan directory (or the folder itself)."""
    base = Path(base)
    if not base.is_dir():
        raise InputError("base Wan directory does not exist", path=base)
    for folder in (base / "transformer", base):
        cfg = folder / "config.json"
        if cfg.is_file():
            data = read_json(cfg, what="config")
            if data.get("_class_name") == "WanTransformer3DModel":
                return folder
    raise InputError("not a diffusers Wan directory (no transformer/config.json of a WanTransformer3DModel)", path=base)


def read_diffusers_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of a diffusers model folder: one safetensors file, a sharded index, or a .bin.

    Read directly (no model instantiation); keys diffusers itself ignores on load
    (``norm_added_q``) are dropped.
    """
    from mvt4g.model.checkpoint import load_state_dict_file

    single = folder / "diffusion_pytorch_model.safetensors"
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    pickled = folder / "diffusion_pytorch_model.bin"
    if single.is_file():
        tensors = load_state_dict_file(single)
    elif index.is_file():
        weight_map = read_json(index, what="shard index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise InputError("shard index has no weight_map", path=index)
        shards = sorted(set(weight_map.values()))
        tensors = {}
        for shard in shards:
            tensors.update(load_state_dict_file(folder / shard))
    elif pickled.is_file():
        tensors = read_checkpoint(pickled)
    else:
        raise InputError("no diffusion_pytorch_model weights (.safetensors, sharded index or .bin)", path=folder)
    return {k: v for k, v in tensors.items() if "norm_added_q" not in k}


# ---- conversion ----------------------------------------------------------------------------


@dataclass
class ConversionReport:
    """What came from where (key counts) and what was dropped."""

    from_checkpoint: int = 0
    from_base: int = 0
    initialised: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "from_checkpoint": self.from_checkpoint,
            "from_base": self.from_base,
            "initialised": len(self.initialised),
            "initialised_modules": sorted({_module_of(k) for k in self.initialised}),
            "dropped": len(self.dropped),
        }


def _module_of(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[:3]) if key.startswith("backbone.") else parts[0]


def map_checkpoint(tensors: dict[str, torch.Tensor], *, keep_pose_encoders: bool, path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename checkpoint tensors onto composite keys; every key must map (else InputError)."""
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unmapped: list[str] = []
    for key, tensor in tensors.items():
        new = recammaster_to_composite(key)
        if new is None:
            unmapped.append(key)
        elif new.startswith("backbone.camera.pose_encoders.") and not keep_pose_encoders:
            dropped.append(key)
        else:
            mapped[new] = tensor
    if unmapped:
        shown = ", ".join(sorted(unmapped)[:4])
        raise InputError(f"{len(unmapped)} checkpoint keys match no rename rule (e.g. {shown})", path=path)
    return mapped, dropped


AUTOENCODER_SOURCES = ("base", "space-to-depth", "random-vae")
BASE_FILE_MODES = ("link", "copy")
# Folders of a diffusers Wan directory a converted model reads at run time.
_TEXT_FOLDERS = ("text_encoder", "tokenizer")


def base_vae_channels(base: Path) -> int:
    """The latent channels (``z_dim``) of the base's ``vae/``; InputError when there is none."""
    cfg_path = base / "vae" / "config.json"
    if not cfg_path.is_file():
        raise InputError(
            "base has no vae/ folder (diffusers AutoencoderKLWan): a converted model needs the VAE its DiT was "
            "trained with; add it, or pass --autoencoder space-to-depth or --autoencoder random-vae to use a "
            "built-in one on purpose",
            path=base,
        )
    z_dim = read_json(cfg_path, what="VAE config").get("z_dim")
    if not isinstance(z_dim, int):
        raise InputError(f"VAE config has no integer z_dim (got {z_dim!r})", path=cfg_path)
    return z_dim


def converted_autoencoder(base: Path, channels: int, source: str):
    """The :class:`AutoencoderConfig` of a converted model whose DiT has ``channels`` latent channels.

    ``base``: the base's ``vae/`` (its absolute path here; :func:`save_converted` makes it
    relative). ``space-to-depth``: the lossless built-in, which exists only for
    ``12 s^2`` channels (4 frames x s x s pixels x RGB). ``random-vae``: a small seeded
    ``AutoencoderKLWan`` (the tiny-wanvae preset's shape), for tests and CPU experiments.
    """
    from mvt4g.model.config import AutoencoderConfig, preset

    if source == "base":
        z_dim = base_vae_channels(base)
        if z_dim != channels:
            raise InputError(f"the base's VAE has {z_dim} latent channels, its transformer {channels}", path=base / "vae")
        config = preset("wan2.1-1.3b").autoencoder
        config.latent_channels = channels
        config.path = str(base.resolve())
        return config
    if source == "space-to-depth":
        factor = round((channels / 12) ** 0.5)
        if 12 * factor**2 != channels:
            raise InputError(
                f"--autoencoder space-to-depth gives 12 s^2 latent channels (12, 48, 108, ...); this transformer has "
                f"{channels} (use --autoencoder random-vae, or add the base's vae/)"
            )
        return AutoencoderConfig(kind="space_to_depth", spatial_factor=factor, temporal_factor=4, latent_channels=channels)
    if source == "random-vae":
        config = preset("tiny-wanvae").autoencoder
        config.latent_channels = channels
        return config
    raise ConfigError(f"autoencoder must be one of {', '.join(AUTOENCODER_SOURCES)}, got {source!r}")


def converted_config(backbone_cfg: dict, base: Path, *, camera: str, tap_layer: int | None, tracking_head: bool,
                     autoencoder: str = "base"):  # fmt: skip
    """The mvt4g ModelConfig for a ReCamMaster model on the given Wan transformer config."""
    from mvt4g.model.config import BackboneConfig, CameraConfig, preset

    config = preset("wan2.1-1.3b")
    config.name = "recammaster-converted"
    config.backbone = BackboneConfig.from_diffusers_config(backbone_cfg)
    config.autoencoder = converted_autoencoder(base, config.backbone.in_channels, autoencoder)
    if (base / "text_encoder").is_dir():
        config.text.encoder_path = str(base.resolve())
    layers = config.backbone.num_layers
    config.tap_layer = tap_layer if tap_layer is not None else (18 if layers == 30 else (3 * layers) // 5)
    if camera not in ("recammaster", "plucker"):
        raise ConfigError(f"camera mode must be recammaster or plucker, got {camera!r}")
    config.camera = CameraConfig(mode=camera, output_projector=True)
    config.use_tracking_head = tracking_head
    return config.validate()


def _fresh_state(config) -> dict[str, torch.Tensor]:
    """Initial weights of everything outside the transformer (camera, null text, head)."""
    from mvt4g.model.camera_encoder import CameraConditioning
    from mvt4g.model.mvt4g_model import resolve_tracking_head_config
    from mvt4g.model.text import NullTextEmbedding

    b = config.backbone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        parts = {
            "backbone.camera.": CameraConditioning(
                mode=config.camera.mode,
                dim=b.inner_dim,
                num_layers=b.num_layers,
                token_stride=config.token_stride,
                projection_init=config.camera.projection_init,
                output_projector=True,
            ),
            "null_text.": NullTextEmbedding(config.text.null_length, b.text_dim),
        }
        if config.use_tracking_head:
            from mvt4g.model.tracking_head import TrackingHead

            parts["tracking_head."] = TrackingHead(
                resolve_tracking_head_config(config.tracking_head), num_attention_heads=b.num_attention_heads
            )
    return {prefix + k: v for prefix, module in parts.items() for k, v in module.state_dict().items()}


def convert_recammaster(
    checkpoint: str | Path,
    base: str | Path,
    *,
    camera: str = "recammaster",
    tap_layer: int | None = None,
    tracking_head: bool = True,
    dtype: torch.dtype = torch.float32,
    autoencoder: str = "base",
):
    """Build an :class:`MVT4GModel` from a ReCamMaster checkpoint over a Wan base directory.

    Returns ``(model, report)``. ``camera="recammaster"`` keeps ReCamMaster's pose encoders
    and projectors (its 12-value conditioning); ``"plucker"`` keeps the projectors, drops the
    pose encoders and starts a zero Plücker encoder (to fine-tune with ray maps).
    ``autoencoder``: one of :data:`AUTOENCODER_SOURCES` (see :func:`converted_autoencoder`).
    """
    from mvt4g.model.checkpoint import (
        assign_state_dict,
        build_on_meta,
        materialize_buffers,
    )

    checkpoint = Path(checkpoint)
    folder = find_transformer_dir(base)
    backbone_cfg = read_json(folder / "config.json", what="config")
    # The config first: a base without a VAE fails before a multi-GB checkpoint is read.
    config = converted_config(backbone_cfg, Path(base), camera=camera, tap_layer=tap_layer, tracking_head=tracking_head,
                              autoencoder=autoencoder)
    tensors = read_checkpoint(checkpoint)
    mapped, dropped = map_checkpoint(tensors, keep_pose_encoders=camera == "recammaster", path=checkpoint)
    if camera == "recammaster" or any(k.startswith("backbone.camera.") for k in mapped):
        layers = config.backbone.num_layers
        needed = ("pose_encoders", "output_projectors") if camera == "recammaster" else ("output_projectors",)
        for part in needed:
            have = {k.split(".")[3] for k in mapped if k.startswith(f"backbone.camera.{part}.")}
            if len(have) != layers:
                raise InputError(
                    f"checkpoint has ReCamMaster {part.replace('_', ' ')} for {len(have)} of {layers} blocks", path=checkpoint
                )
    state = _fresh_state(config)
    fresh_keys = set(state)
    state.update({"backbone.transformer." + k: v for k, v in read_diffusers_weights(folder).items()})
    base_keys = set(state) - fresh_keys
    model = build_on_meta(config)
    expected = model.state_dict()
    for key, tensor in mapped.items():
        if key not in expected:
            raise InputError(f"checkpoint key maps to {key}, which this model does not have", path=checkpoint)
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise InputError(
                f"checkpoint tensor for {key} has shape {list(tensor.shape)}, the base model needs {list(expected[key].shape)}",
                path=checkpoint,
            )
        state[key] = tensor
    # Fresh (aligned) copies in the output dtype, one tensor at a time to bound peak memory.
    for key in list(state):
        tensor = state.pop(key)
        state[key] = tensor.to(dtype, copy=True) if tensor.is_floating_point() else tensor.clone()
    assign_state_dict(model, state, source=checkpoint)
    materialize_buffers(model)
    model.backbone.install_processors()
    report = ConversionReport(
        from_checkpoint=len(mapped),
        from_base=len(base_keys - set(mapped)),
        initialised=sorted(fresh_keys - set(mapped)),
        dropped=dropped,
    )
    return model, report


# ---- writing -------------------------------------------------------------------------------


def portable_paths(config, out: str | Path, files: str) -> dict[str, Path]:
    """Rewrite ``config``'s absolute base paths for a model saved at ``out``; returns the folders to copy.

    ``link``: paths relative to ``out`` (read back against the model folder by
    :func:`~mvt4g.model.checkpoint.read_config`), nothing copied. ``copy``: the paths become
    ``"."`` (the model folder itself) and ``{name: base/name}`` lists what to copy there.
    """
    if files not in BASE_FILE_MODES:
        raise ConfigError(f"base files must be one of {', '.join(BASE_FILE_MODES)}, got {files!r}")
    out = Path(out).resolve()
    copies: dict[str, Path] = {}
    for section, name in (("autoencoder", "path"), ("text", "encoder_path")):
        holder = getattr(config, section)
        value = getattr(holder, name)
        if not value:
            continue
        base = Path(value)
        if files == "copy":
            wanted = ["vae"] if section == "autoencoder" else [n for n in _TEXT_FOLDERS if (base / n).is_dir()]
            copies.update({folder: base / folder for folder in wanted})
            setattr(holder, name, ".")
        else:
            setattr(holder, name, os.path.relpath(base, out))
    return copies


def save_converted(model, out: str | Path, *, files: str = "link", overwrite: bool = False,
                   metadata: dict[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    """Write a converted model to ``out`` (atomically, parents created) with no absolute path in it.

    ``files``: ``link`` or ``copy`` (see :func:`portable_paths`). A random Wan VAE
    (``--autoencoder random-vae``) is saved with the model. Returns the stored paths.
    """
    from mvt4g.model.checkpoint import save_pretrained

    copies = portable_paths(model.config, out, files)
    vae = None
    if model.config.autoencoder.kind == "wan_vae" and not model.config.autoencoder.path:
        from mvt4g.model.autoencoder import build_autoencoder

        vae = build_autoencoder(model.config.autoencoder)
    save_pretrained(model, out, overwrite=overwrite, autoencoder=vae, metadata=metadata, extra_folders=copies)
    return {"autoencoder_path": model.config.autoencoder.path, "text_encoder_path": model.config.text.encoder_path}
