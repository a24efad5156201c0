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

from mvt4g._lazy import lazy_exports

_LAZY = {
    "ModelConfig": "config",
    "preset": "config",
    "preset_names": "config",
    "MVT4GModel": "mvt4g_model",
    "MVT4GOutput": "mvt4g_model",
    "AttentionTap": "attention_tap",
    "build_autoencoder": "autoencoder",
    "save_pretrained": "checkpoint",
    "from_pretrained": "checkpoint",
    "freeze_for_finetuning": "freeze",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports("mvt4g.model", _LAZY, globals())
