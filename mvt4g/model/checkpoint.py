"""Model checkpoints: ``save_pretrained`` / ``from_pretrained`` (safetensors + JSON, never pickle).

A checkpoint directory holds:

    config.json          {"format": "mvt4g-model", "format_version": 1, "model": ModelConfig}
    model.safetensors    every parameter and persistent buffer of the composite model
                         (``backbone.transformer.*``, ``backbone.camera.*``, ``null_text.*``,
                         ``tracking_head.*``), in the dtype it had when saved
    autoencoder/         only for a random (path-less) Wan VAE: its diffusers directory
    vae/, text_encoder/, tokenizer/   only in a model converted with ``--copy`` (its base's folders)

Paths in the config (``autoencoder.path``, ``text.encoder_path``) may be relative: they are
relative to the model folder, and :func:`read_config` returns them absolute. Converted models
store them that way, so a model folder moved together with its base keeps working.

``from_pretrained`` builds the model on the meta device and assigns the stored tensors, so a
1.3B model loads without a throw-away random initialisation; the missing or extra keys are
an error naming the file. The round trip is bit exact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from mvt4g.errors import InputError
from mvt4g.fs.atomic import atomic_dir, check_output_path
from mvt4g.fs.jsonio import read_json
from mvt4g.model.config import ModelConfig

FORMAT = "mvt4g-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(
    model: nn.Module,
    directory: str | Path,
    *,
    overwrite: bool = False,
    autoencoder: nn.Module | None = None,
    metadata: dict[str, str] | None = None,
    extra_folders: dict[str, Path] | None = None,
) -> Path:
    """Write ``model`` (an :class:`~mvt4g.model.mvt4g_model.MVT4GModel`) to ``directory`` atomically.

    ``autoencoder``: pass the model's Wan VAE when it is a random one (no ``path`` in the
    config) so the checkpoint keeps it; loaded VAEs stay where the config points.
    ``extra_folders``: ``{name: source}`` folders copied into the checkpoint (hard links where
    the filesystem allows), e.g. a converted model's own ``vae/``.
    """
    from safetensors.torch import save_file

    directory = check_output_path(directory, overwrite=overwrite, is_dir=True)
    state = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.config.to_dict()}
    with atomic_dir(directory, overwrite=overwrite) as tmp:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT, **(metadata or {})})
        (tmp / CONFIG_NAME).write_text(json.dumps(header, indent=2) + "\n")
        vae = getattr(autoencoder, "vae", None)
        if vae is not None and not model.config.autoencoder.path:
            vae.save_pretrained(str(tmp / "autoencoder"))
        for name, source in (extra_folders or {}).items():
            copy_folder(source, tmp / name)
    return directory


def copy_folder(source: str | Path, dest: str | Path) -> None:
    """Copy a folder, hard-linking its files where possible (a 10 GB text encoder then costs no space)."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another filesystem, or links not allowed: a real copy
            shutil.copy2(src, dst)

    if not Path(source).is_dir():
        raise InputError("folder to copy into the model does not exist", path=source)
    shutil.copytree(source, dest, copy_function=link_or_copy)


def resolve_config_paths(config: ModelConfig, directory: str | Path) -> ModelConfig:
    """Make the config's relative paths absolute against the model folder (see the module docstring)."""
    root = Path(directory).resolve()
    for holder, name in ((config.autoencoder, "path"), (config.text, "encoder_path")):
        value = getattr(holder, name)
        if value:
            path = Path(value).expanduser()
            setattr(holder, name, str(path if path.is_absolute() else (root / path).resolve()))
    return config


def read_config(directory: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` of a checkpoint directory (InputError when it is not one)."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not directory.is_dir():
        raise InputError("model directory does not exist", path=directory)
    if not path.is_file():
        raise InputError(f"not an mvt4g model directory (no {CONFIG_NAME})", path=directory)
    header = read_json(path, what="model config")
    if header.get("format") != FORMAT:
        raise InputError(f"not an mvt4g model config (format is not {FORMAT!r})", path=path)
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"model format version {header['format_version']} is newer than this mvt4g reads", path=path)
    try:
        config = ModelConfig.from_dict(header["model"]).validate()
    except InputError as exc:
        raise InputError(str(exc), path=path) from None
    return resolve_config_paths(config, directory)


def build_on_meta(config: ModelConfig) -> nn.Module:
    """The model with every parameter on the meta device (no memory, no initialisation)."""
    from mvt4g.model.mvt4g_model import MVT4GModel

    with torch.device("meta"):
        return MVT4GModel(config)


def materialize_buffers(model: nn.Module, device: torch.device | str = "cpu") -> None:
    """Recompute non-persistent buffers left on the meta device (Wan's RoPE tables)."""
    from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

    for name, module in list(model.named_modules()):
        if isinstance(module, WanRotaryPosEmbed) and module.freqs_cos.is_meta:
            with torch.device(device):
                fresh = WanRotaryPosEmbed(module.attention_head_dim, module.patch_size, module.max_seq_len)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, fresh)
    leftovers = [n for n, b in model.named_buffers() if b.is_meta]
    if leftovers:
        raise RuntimeError(f"buffers still on the meta device: {leftovers[:5]}")


_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}  # fmt: skip


def verify_safetensors_file(path: str | Path, expected: dict[str, tuple[int, ...]] | None = None) -> dict[str, list[int]]:
    """Check a safetensors file without loading it; returns ``{name: shape}``.

    The header must be complete JSON, every tensor's dtype known and its byte range exactly its
    shape's size and inside the file (a truncated or empty file fails here). With ``expected``
    (name -> shape) the names and shapes must match it exactly. Raises :class:`InputError`.
    """
    import json as _json
    import math

    path = Path(path)
    if not path.is_file():
        raise InputError("weights file does not exist", path=path)
    size = path.stat().st_size
    if size == 0:
        raise InputError("weights file is empty", path=path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise InputError(f"not a safetensors file ({size} bytes, shorter than its header)", path=path)
        n = int.from_bytes(head, "little")
        if n <= 0 or 8 + n > size:
            raise InputError(f"truncated or not a safetensors file (header of {n} bytes, file of {size})", path=path)
        try:
            header = _json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise InputError("not a safetensors file (its header is not JSON)", path=path) from None
    if not isinstance(header, dict):
        raise InputError("not a safetensors file (its header is not a JSON object)", path=path)
    data_size = size - 8 - n
    shapes: dict[str, list[int]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"corrupt safetensors header at tensor {name!r}", path=path) from None
        if dtype not in _DTYPE_BYTES:
            raise InputError(f"tensor {name!r} has unknown dtype {dtype!r}", path=path)
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size):
            raise InputError(f"truncated safetensors file: tensor {name!r} lies beyond its end ({size} bytes)", path=path)
        if end - begin != math.prod(shape) * _DTYPE_BYTES[dtype]:
            raise InputError(f"corrupt safetensors file: tensor {name!r} has {end - begin} bytes for shape {shape}", path=path)
        shapes[name] = shape
    if expected is not None:
        missing = sorted(set(expected) - set(shapes))
        extra = sorted(set(shapes) - set(expected))
        if missing or extra:
            parts = ([f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []) + (
                [f"{len(extra)} unexpected (e.g. {extra[0]})"] if extra else [])  # fmt: skip
            raise InputError(f"weights do not match the model config: {', '.join(parts)}", path=path)
        for name, shape in shapes.items():
            if tuple(shape) != tuple(expected[name]):
                raise InputError(f"weight {name} has shape {shape}, the config needs {list(expected[name])}", path=path)
    return shapes


def load_state_dict_file(path: str | Path, *, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, verified first (:func:`verify_safetensors_file`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    verify_safetensors_file(path)
    try:
        tensors = load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"unreadable safetensors file: {str(exc).splitlines()[0]}", path=path) from None
    # Fresh allocations: tensors read from the file can sit at unaligned addresses, and CPU
    # kernels pick different (last-bit different) code paths for those; a copy makes the
    # loaded model compute exactly what the saved one did.
    return {name: t.clone() for name, t in tensors.items()}


def assign_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str | Path) -> None:
    """Load ``state`` into ``model`` by assignment, requiring exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        raise InputError(f"weights do not match the model config: {', '.join(parts)}", path=source)
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise InputError(
                f"weight {name} has shape {list(tensor.shape)}, the config needs {list(expected[name].shape)}", path=source
            )
    model.load_state_dict(state, strict=True, assign=True)


def from_pretrained(directory: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """Load a model written by :func:`save_pretrained` (weights on ``device``, optionally cast)."""
    directory = Path(directory)
    config = read_config(directory)
    model = build_on_meta(config)
    state = load_state_dict_file(directory / WEIGHTS_NAME, device=str(device))
    assign_state_dict(model, state, source=directory / WEIGHTS_NAME)
    materialize_buffers(model, device)
    # The processors hold no tensors, but re-install them in case a caller swapped any.
    model.backbone.install_processors()
    if dtype is None and any(t.dtype == torch.float16 for t in state.values()):
        dtype = torch.float32  # float16 is a storage format (the shipped models): compute in float32
    if dtype is not None:
        model.to(dtype)
    return model


def load_autoencoder(directory: str | Path, config: ModelConfig | None = None, *, dtype: torch.dtype = torch.float32):
    """The autoencoder belonging to a checkpoint (its saved random Wan VAE, or per config)."""
    from mvt4g.model.autoencoder import (
        WanVideoAutoencoder,
        build_autoencoder,
        load_wan_vae,
    )

    directory = Path(directory)
    config = config or read_config(directory)
    saved = directory / "autoencoder"
    if config.autoencoder.kind == "wan_vae" and not config.autoencoder.path and saved.is_dir():
        return WanVideoAutoencoder(load_wan_vae(saved, dtype=dtype).eval())
    return build_autoencoder(config.autoencoder, dtype=dtype)
