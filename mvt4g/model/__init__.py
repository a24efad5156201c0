"""The MVTrack4Gen model: a camera-conditioned Wan DiT with an attention tap and a tracking head.

Modules (each importable on its own; this package imports nothing heavy at import time):

    config          typed configs and presets (``preset("tiny")``)
    backbone        Wan DiT wrapper: reference + target tokens, camera injection, tap
    camera_encoder  Plücker ray-map encoder and ReCamMaster's pose encoder
    attention_tap   the self-attention processor that exposes Q and K
    autoencoder     space-to-depth (lossless) and Wan VAE autoencoders
    text            null text embedding and the optional umT5 encoder
    mvt4g_model     the composite model (``MVT4GModel``)
    checkpoint      ``save_pretrained`` / ``from_pretrained`` (safetensors + JSON)
    convert         ReCamMaster (DiffSynth naming) checkpoint conversion
    freeze          the paper's fine-tuning scope and parameter counts

Example::

    from mvt4g.model import MVT4GModel, preset
    model = MVT4GModel(preset("tiny"))
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "ModelConfig": "mvt4g.model.config",
    "preset": "mvt4g.model.config",
    "preset_names": "mvt4g.model.config",
    "MVT4GModel": "mvt4g.model.mvt4g_model",
    "MVT4GOutput": "mvt4g.model.mvt4g_model",
    "AttentionTap": "mvt4g.model.attention_tap",
    "build_autoencoder": "mvt4g.model.autoencoder",
    "save_pretrained": "mvt4g.model.checkpoint",
    "from_pretrained": "mvt4g.model.checkpoint",
    "freeze_for_finetuning": "mvt4g.model.freeze",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    # Lazy so that importing one submodule (e.g. the tracking head) does not import them all.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mvt4g.model' has no attribute {name!r}")
