"""Find the model a ``--model`` path means: a training run directory or a model directory.

Accepted (checked in this order):

* a model directory written by ``save_pretrained``: ``config.json`` (format ``mvt4g-model``)
  and ``model.safetensors``;
* a training run directory: its ``model/`` subdirectory is such a model directory (the
  run-directory contract of ``mvt4g train``).

Everything else is refused with one line naming the path and what it looks like instead: a
missing path, a directory without the files, a diffusers pipeline directory
(``model_index.json``: convert or fine-tune it first), a single weights file (a ReCamMaster
checkpoint: ``mvt4g convert``), a ``config.json`` of another format, a model directory
without its weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.model.checkpoint import CONFIG_NAME, FORMAT, WEIGHTS_NAME

RUN_MODEL_SUBDIR = "model"
_WEIGHT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")


def _config_format(path: Path) -> str | None:
    """The ``format`` field of a JSON config, or None when it is unreadable or absent."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data.get("format") if isinstance(data, dict) else None


def _is_model_dir(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() and _config_format(path / CONFIG_NAME) == FORMAT


def resolve_model_dir(path: str | Path) -> Path:
    """The ``save_pretrained`` directory ``path`` refers to (see the module docstring)."""
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
