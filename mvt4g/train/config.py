"""Training configuration: a TOML file -> typed dataclasses, with ``--set key=value`` overrides.

A config has five sections; every key has a default, so a file only names what it changes::

    [model]  preset, init, tap_layer, tracking_head, head_preset, head_iterations,
             gradient_checkpointing, autoencoder_path, text_encoder_path
    [data]   paths, frames, height, width, queries, reverse_prob, pairs, cache_dir,
             cache_plucker, cache_dtype, num_workers
    [loss]   corr, lambda_track, lambda_corr, shift, weighting, corr_head_mode,
             corr_frame_reduction, corr_query_sampling
    [optim]  lr, betas, eps, weight_decay, grad_clip, schedule, warmup_steps, decay_steps,
             min_lr_ratio, train_groups
    [train]  steps, batch_size, accumulate, seed, precision, device, threads, parallel,
             log_every, checkpoint_every, keep_last, out, tensorboard

Unset: ``model.tap_layer`` left out (``None``) is the preset's tap layer (TOML has no null, so
:func:`to_toml` writes it as a comment); the older key ``model.layer`` still loads (``-1``: unset).
Sentinels elsewhere: ``model.gradient_checkpointing = "auto"`` (or true / false) is the model's own setting
(on for the wan2.1-1.3b preset, off for the small ones, ``model.init``'s saved value); ``data.frames / height / width = 0`` are the preset's video size; ``optim.decay_steps
= 0`` is ``train.steps``; empty strings are "none". ``train.batch_size`` is the GLOBAL batch
(samples per optimizer step over all processes and accumulation steps).

Errors are one line (:class:`~mvt4g.errors.ConfigError`, exit 2): an unknown section or key
(with a did-you-mean from :mod:`difflib`), a value of the wrong type, a value outside its
choices. :func:`to_toml` writes a resolved config back (the run directory's ``config.toml``);
``load_config(to_toml(c))`` gives ``c`` again.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvt4g.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FINETUNE_GROUPS = ["self_attention", "camera", "tracking_head"]


@dataclass
class ModelSection:
    """What to train. ``init``: a model directory (``save_pretrained`` layout) to start from."""

    preset: str = "tiny"
    init: str = ""
    #: DiT block (0-based) whose Q/K feed the tracking head and L_corr; None: the preset's.
    tap_layer: int | None = None
    tracking_head: bool = True
    head_preset: str = ""
    head_iterations: int = 0
    # true, false or "auto" (the model's own setting: on for wan2.1-1.3b, where a training
    # a diffusion-only step on one 81x480x832 sample otherwise peaks at ~169 GiB, not ~18 GiB).
    gradient_checkpointing: bool | str = "auto"
    autoencoder_path: str = ""
    text_encoder_path: str = ""


@dataclass
class DataSection:
    """Where the clips are and how (reference, target) samples are drawn from them."""

    paths: list[str] = field(default_factory=list)
    frames: int = 0
    height: int = 0
    width: int = 0
    queries: int = 64
    reverse_prob: float = 0.5
    pairs: str = "all"
    cache_dir: str = ""
    cache_plucker: bool = True
    cache_dtype: str = "float32"
    num_workers: int = 0


@dataclass
class LossSection:
    """L = L_diff + lambda_track L_track (when the head is on) + lambda_corr L_corr (when ``corr``)."""

    corr: bool = True
    lambda_track: float = 0.01
    lambda_corr: float = 0.01
    shift: float = 5.0
    weighting: str = "bell"
    corr_head_mode: str = "mean_ce"
    corr_frame_reduction: str = "mean"
    corr_query_sampling: str = "nearest"


@dataclass
class OptimSection:
    """AdamW, warmup then constant or cosine, gradient clipping, the trainable groups."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_steps: int = 0
    min_lr_ratio: float = 0.0
    train_groups: list[str] = field(default_factory=lambda: list(FINETUNE_GROUPS))


@dataclass
class TrainSection:
    """The loop: length, batch, seed, precision, devices, logging and checkpoint cadence."""

    steps: int = 1000
    batch_size: int = 1
    accumulate: int = 1
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    threads: int = 0
    parallel: str = "auto"
    log_every: int = 1
    checkpoint_every: int = 100
    keep_last: int = 3
    out: str = "runs/train"
    tensorboard: bool = True


@dataclass
class TrainConfig:
    """The whole training configuration (see the module docstring)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def get(self, key: str) -> Any:
        section, name = _split_key(key)
        return getattr(getattr(self, section), name)

    def validate(self) -> TrainConfig:
        """Check choices and ranges; raise one-line :class:`ConfigError`."""
        from mvt4g.model.config import preset_names
        from mvt4g.model.freeze import GROUPS

        m, d, lo, o, t = self.model, self.data, self.loss, self.optim, self.train
        _choice("model.preset", m.preset, preset_names())
        if isinstance(m.gradient_checkpointing, str) and m.gradient_checkpointing != "auto":
            raise ConfigError(f'model.gradient_checkpointing must be true, false or "auto"; got {m.gradient_checkpointing!r}')
        if m.head_preset:
            _choice("model.head_preset", m.head_preset, ["tiny", "reference"])
        _choice("data.pairs", d.pairs, ["all", "from_reference"])
        _choice("data.cache_dtype", d.cache_dtype, ["float32", "bfloat16", "float16"])
        _choice("loss.weighting", lo.weighting, ["bell", "none"])
        _choice("loss.corr_head_mode", lo.corr_head_mode, ["mean_ce", "mean_prob", "mlp"])
        _choice("loss.corr_frame_reduction", lo.corr_frame_reduction, ["mean", "sum"])
        _choice("loss.corr_query_sampling", lo.corr_query_sampling, ["nearest", "bilinear"])
        _choice("optim.schedule", o.schedule, ["constant", "cosine"])
        _choice("train.precision", t.precision, ["auto", "fp32", "bf16"])
        _choice("train.parallel", t.parallel, ["auto", "none", "ddp", "fsdp"])
        for group in o.train_groups:
            _choice("optim.train_groups", group, list(GROUPS))
        checks = [
            ("model.tap_layer", m.tap_layer is None or m.tap_layer >= 0, ">= 0 (leave it out for the preset's)"),
            ("model.head_iterations", m.head_iterations >= 0, ">= 0"),
            ("data.frames", d.frames >= 0, ">= 0"),
            ("data.height", d.height >= 0, ">= 0"),
            ("data.width", d.width >= 0, ">= 0"),
            ("data.queries", d.queries >= 1, ">= 1"),
            ("data.reverse_prob", 0.0 <= d.reverse_prob <= 1.0, "in [0, 1]"),
            ("data.num_workers", d.num_workers >= 0, ">= 0"),
            ("loss.lambda_track", lo.lambda_track >= 0, ">= 0"),
            ("loss.lambda_corr", lo.lambda_corr >= 0, ">= 0"),
            ("loss.shift", lo.shift > 0, "> 0"),
            ("optim.lr", o.lr > 0 and math.isfinite(o.lr), "a finite number > 0"),
            ("optim.betas", len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "two numbers in [0, 1)"),
            ("optim.eps", o.eps > 0, "> 0"),
            ("optim.weight_decay", o.weight_decay >= 0, ">= 0"),
            ("optim.grad_clip", o.grad_clip >= 0, ">= 0 (0 turns clipping off)"),
            ("optim.warmup_steps", o.warmup_steps >= 0, ">= 0"),
            ("optim.decay_steps", o.decay_steps >= 0, ">= 0"),
            ("optim.min_lr_ratio", 0 <= o.min_lr_ratio <= 1, "in [0, 1]"),
            ("train.steps", t.steps >= 1, ">= 1"),
            ("train.batch_size", t.batch_size >= 1, ">= 1"),
            ("train.accumulate", t.accumulate >= 1, ">= 1"),
            ("train.seed", t.seed >= 0, ">= 0"),
            ("train.threads", t.threads >= 0, ">= 0"),
            ("train.log_every", t.log_every >= 1, ">= 1"),
            ("train.checkpoint_every", t.checkpoint_every >= 1, ">= 1"),
            ("train.keep_last", t.keep_last >= 1, ">= 1"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"{key} must be {what}, got {self.get(key)!r}")
        if t.batch_size % t.accumulate:
            raise ConfigError(f"train.batch_size ({t.batch_size}) must be a multiple of train.accumulate ({t.accumulate})")
        return self


_SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "data": DataSection,
    "loss": LossSection,
    "optim": OptimSection,
    "train": TrainSection,
}


def all_keys() -> list[str]:
    """Every ``section.key`` a config accepts."""
    return [f"{s}.{f.name}" for s, kind in _SECTIONS.items() for f in dataclasses.fields(kind)]


def _field_types(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: Names other trainers use for a key of ours (suggested, never accepted).
_NAME_ALIASES = {"learning_rate": "lr", "layer": "tap_layer", "workers": "num_workers", "batch": "batch_size"}


def suggest_key(key: str) -> str:
    """A " (did you mean 'optim.lr'?)" hint for an unknown ``key``, searching every section.

    The name after the dot counts most: a name that exists in another section is that key
    (``train.lr`` -> ``optim.lr``); else the closest name of any section (``optim.lrr`` ->
    ``optim.lr``, ``data.frame`` -> ``data.frames``); else the closest whole key.
    """
    keys = all_keys()
    section, _, name = key.rpartition(".")
    by_name: dict[str, list[str]] = {}
    for full in keys:
        by_name.setdefault(full.partition(".")[2], []).append(full)

    def pick(candidates: list[str]) -> str:  # the key in the section the user named, if any
        return next((c for c in candidates if c.startswith(f"{section}.")), candidates[0])

    name = _NAME_ALIASES.get(name, name)
    if name in by_name:
        return f" (did you mean {pick(by_name[name])!r}?)"
    close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.75)
    if close:
        return f" (did you mean {pick(by_name[close[0]])!r}?)"
    return _did_you_mean(key, keys)


def _choice(key: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}{_did_you_mean(str(value), choices)}")


def _split_key(key: str) -> tuple[str, str]:
    section, dot, name = key.partition(".")
    if not dot or section not in _SECTIONS:
        hint = suggest_key(key) or _did_you_mean(section, list(_SECTIONS))
        raise ConfigError(f"unknown config key {key!r}{hint}; keys look like 'optim.lr'")
    names = [f.name for f in dataclasses.fields(_SECTIONS[section])]
    if name not in names:
        raise ConfigError(f"unknown config key {key!r}{suggest_key(key)}")
    return section, name


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arm) for arm in typing.get_args(kind) if arm is not type(None))
    if origin is list:
        item = typing.get_args(kind)[0]
        return "a list of " + {int: "integers", float: "numbers", bool: "booleans", str: "strings"}[item]
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(kind, str(kind))


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (int, float, bool, str, list[...], a union of those) or a ConfigError naming ``key``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(kind):
            try:
                return _coerce(key, value, arm)
            except ConfigError:
                continue
        raise ConfigError(f"{key} must be {_type_name(kind)}, got {value!r} ({type(value).__name__})")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be {_type_name(kind)}, got {value!r} ({type(value).__name__})")
        (item,) = typing.get_args(kind)
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if kind is type(None):
        if value is not None:
            raise ConfigError(f"{key} must be unset, got {value!r}")
        return None
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[kind]
    if not ok:
        raise ConfigError(f"{key} must be {_type_name(kind)}, got {value!r} ({type(value).__name__})")
    return float(value) if kind is float else value


def from_dict(data: dict[str, Any], *, source: str | Path | None = None) -> TrainConfig:
    """Build a config from a parsed TOML mapping; unknown keys and bad types raise ConfigError."""
    where = f"{source}: " if source is not None else ""
    cfg = TrainConfig()
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{where}unknown config section [{section}]{_did_you_mean(section, list(_SECTIONS))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}[{section}] must be a table of keys")
        types = _field_types(_SECTIONS[section])
        for name, value in values.items():
            if section == "model" and name in _RENAMED and _RENAMED[name] not in values:
                name, value = _RENAMED[name], (None if value == -1 else value)
            key = f"{section}.{name}"
            if name not in types:
                raise ConfigError(f"{where}unknown config key {key!r}{suggest_key(key)}")
            try:
                setattr(getattr(cfg, section), name, _coerce(key, value, types[name]))
            except ConfigError as exc:
                raise ConfigError(f"{where}{exc}") from None
    return cfg


#: Keys of older config files, still read: ``model.layer`` (``-1`` = the preset's) is ``model.tap_layer``.
_RENAMED = {"layer": "tap_layer"}

#: The example configs installed with the package, by name (``mvt4g train --config tiny``).
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def config_names() -> list[str]:
    """Names of the packaged example configs (``tiny``, ``small``, ``base``, ...)."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.toml"))


def find_config(name_or_path: str | Path) -> Path:
    """The config file ``--config`` means: a packaged example's name first, then a path.

    An unknown name (or a missing file) is a one-line :class:`ConfigError` listing the names.
    """
    text = str(name_or_path)
    names = config_names()
    if text in names:
        return CONFIGS_DIR / f"{text}.toml"
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError("not a config file (a folder?)", path=path)
    if "/" in text or "\\" in text or path.suffix:
        raise ConfigError(f"config file does not exist (or give an example config by name: {', '.join(names)})",
                          path=path)  # fmt: skip
    raise ConfigError(f"no example config named {text!r}{_did_you_mean(text, names)} and no such file "
                      f"(example configs: {', '.join(names)})")  # fmt: skip


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML config file, or a packaged example by name (not yet validated: overrides come first)."""
    path = find_config(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not a valid TOML file ({str(exc).splitlines()[0]})", path=path) from None
    if not data:  # policy (README, "Conventions"): an empty file is a mistake, not "all defaults"
        raise ConfigError("config file is empty; leave out --config to train on the defaults", path=path)
    return from_dict(data, source=path)


def parse_override(text: str) -> tuple[str, str]:
    """``"optim.lr=5e-5"`` -> ``("optim.lr", "5e-5")``."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"--set needs key=value (e.g. optim.lr=5e-5), got {text!r}")
    return key, value.strip()


def apply_override(cfg: TrainConfig, key: str, raw: str) -> None:
    """Set ``key`` from its command-line text, parsed as a TOML value and type-checked.

    String keys take the text as it is (quotes optional); other keys need a TOML value
    (``1e-4``, ``true``, ``["a", "b"]``).
    """
    section, name = _split_key(key)
    kind = _field_types(_SECTIONS[section])[name]
    if kind is str:
        value: Any = raw
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            value = _parse_toml_value(raw, key)
    else:
        value = _parse_toml_value(raw, key)
    setattr(getattr(cfg, section), name, _coerce(key, value, kind))


def _parse_toml_value(raw: str, key: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # not a TOML value: kept as text, so the type check names what was expected


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    for text in overrides:
        apply_override(cfg, *parse_override(text))
    return cfg


def override_keys(overrides: list[str]) -> set[str]:
    """The keys a list of ``--set key=value`` names."""
    return {parse_override(text)[0] for text in overrides}


def toml_value(value: Any) -> str:
    """A config value as TOML text, the way ``--set`` takes it (``unset`` for None)."""
    return "unset" if value is None else _toml_value(value)


# ---- writing ----------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\uXXXX."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_toml(cfg: TrainConfig) -> str:
    """The config as TOML text (every key, so the file documents the resolved run)."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        # TOML has no null: an unset key is a comment, and reads back as unset.
        lines.extend(f"# {name}: unset" if value is None else f"{name} = {_toml_value(value)}"
                     for name, value in values.items())  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def diff_keys(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Keys whose values differ between two configs, in file order."""
    return [key for key in all_keys() if a.get(key) != b.get(key)]
