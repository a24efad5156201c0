"""What a ``--model`` value means: a shipped model's name, a model directory or a training run.

Every command that takes ``--model`` (generate, eval, analyze, info, train's ``model.init``)
calls :func:`resolve_model`. Accepted, in this order:

* a shipped model's name (:data:`SHIPPED`: ``mvtrack4gen``, the default of ``generate``, and
  ``base``): the folder ``mvt4g/model/shipped/NAME`` installed with the package, its weights
  checked against the SHA-256 in its ``card.json`` (:func:`verify_shipped`): a missing or
  altered file is refused, never replaced by a random initialisation;
* a model directory written by ``save_pretrained``: ``config.json`` (format ``mvt4g-model``)
  and ``model.safetensors``;
* a training run directory: its ``model/`` subdirectory is such a model directory.

Everything else is refused with one line naming the path and what it looks like instead: a
missing path (or an unknown name, with the shipped names listed), a directory without the
files, a diffusers pipeline directory (``model_index.json``: convert or fine-tune it first), a
single weights file (a ReCamMaster checkpoint: ``mvt4g convert``), a ``config.json`` of another
format, a model directory without its weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.fs.jsonio import read_json
from mvt4g.model.checkpoint import CONFIG_NAME, FORMAT, WEIGHTS_NAME

RUN_MODEL_SUBDIR = "model"
SHIPPED_ROOT = Path(__file__).resolve().parent / "shipped"
#: Shipped models, the default first (see each folder's MODEL_CARD.md).
SHIPPED = ("mvtrack4gen", "base")
DEFAULT_MODEL = SHIPPED[0]
CARD_JSON = "card.json"
CARD_MD = "MODEL_CARD.md"
_WEIGHT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_dir(name: str) -> Path:
    """The folder of shipped model ``name`` (InputError listing the names for an unknown one)."""
    if name not in SHIPPED:
        raise InputError(f"unknown model name {name!r} (shipped models: {', '.join(SHIPPED)}; or give a model or run directory)")
    return SHIPPED_ROOT / name


def shipped_card(name: str) -> dict:
    """``card.json`` of a shipped model: sha256 of its weights, recipe, steps, held-out metrics."""
    path = shipped_dir(name) / CARD_JSON
    if not path.is_file():
        raise InputError(f"shipped model {name!r} is not installed (no {CARD_JSON}; reinstall mvt4g)", path=path)
    card = read_json(path, what="model card")
    if not isinstance(card.get("sha256"), str):
        raise InputError("model card has no sha256 of the weights", path=path)
    return card


def verify_shipped(name: str) -> Path:
    """The shipped model's folder after checking its weights' SHA-256 against its card."""
    folder = shipped_dir(name)
    card = shipped_card(name)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise InputError(f"shipped model {name!r} has no {WEIGHTS_NAME} (reinstall mvt4g)", path=weights)
    found = sha256_file(weights)
    if found != card["sha256"]:
        raise InputError(f"shipped weights are corrupt: sha256 {found[:12]}... but the model card says "
                         f"{card['sha256'][:12]}... (reinstall mvt4g)", path=weights)  # fmt: skip
    return folder


def _config_format(path: Path) -> str | None:
    """The ``format`` field of a JSON config, or None when it is unreadable or absent."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data.get("format") if isinstance(data, dict) else None


def _is_model_dir(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() and _config_format(path / CONFIG_NAME) == FORMAT


def resolve_model(model: str | Path) -> Path:
    """The ``save_pretrained`` directory that ``model`` names (see the module docstring)."""
    text = str(model)
    if text in SHIPPED:
        return verify_shipped(text)
    path = Path(model)
    if not path.exists():
        if "/" not in text and "\\" not in text and not path.suffix:
            raise InputError(f"no model named {text!r} and no such directory (shipped models: {', '.join(SHIPPED)})")
        raise InputError("no such model or run directory", path=path)
    return resolve_model_dir(path)


def resolve_model_dir(path: str | Path) -> Path:
    """The ``save_pretrained`` directory a path refers to: a model or run directory (no names)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such model or run directory", path=path)
    if path.is_file():
        if path.suffix.lower() in _WEIGHT_SUFFIXES:
            raise InputError(
                "a weights file, not an mvt4g model directory (convert a ReCamMaster checkpoint with "
                "`mvt4g convert`, or pass the directory that holds config.json)",
                path=path,
            )
        raise InputError("not a directory: --model takes a model directory or a training run directory", path=path)
    for candidate in (path, path / RUN_MODEL_SUBDIR):
        if _is_model_dir(candidate):
            if not (candidate / WEIGHTS_NAME).is_file():
                raise InputError(f"model directory has no {WEIGHTS_NAME} (incomplete copy or save?)", path=candidate)
            return candidate
    if (path / "model_index.json").is_file():
        raise InputError(
            "a diffusers pipeline directory, not an mvt4g model: fine-tune it with `mvt4g train` "
            "(as the base model) or convert a ReCamMaster checkpoint with `mvt4g convert`",
            path=path,
        )
    if (path / CONFIG_NAME).is_file():
        found = _config_format(path / CONFIG_NAME)
        what = f"format {found!r}" if found else "no mvt4g format field"
        raise InputError(f"config.json is not an mvt4g model config ({what})", path=path / CONFIG_NAME)
    if (path / RUN_MODEL_SUBDIR).is_dir():
        raise InputError(
            f"run directory has a {RUN_MODEL_SUBDIR}/ folder without an mvt4g {CONFIG_NAME} (training not finished?)",
            path=path,
        )
    raise InputError(
        f"not an mvt4g model directory ({CONFIG_NAME} + {WEIGHTS_NAME}) or training run directory "
        f"({RUN_MODEL_SUBDIR}/{CONFIG_NAME})",
        path=path,
    )
