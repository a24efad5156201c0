"""Parameter counts per component of a model, its autoencoder and its text encoder.

Components (what a user sizes a GPU by; the finer groups of :mod:`mvt4g.model.freeze` say
what trains):

    backbone       backbone.transformer.*   the Wan DiT (diffusers' WanTransformer3DModel)
    camera         backbone.camera.*        camera encoders and per-block projections
    tracking_head  tracking_head.*
    text           null_text.*              the learned null text embedding
    text_encoder   the umT5 encoder the config names (None: none, or transformers missing)
    autoencoder    the video autoencoder (0 for space-to-depth)

Everything is counted on the meta device, so the 1.3B preset costs no memory.
"""

from __future__ import annotations

from torch import nn

from mvt4g.model.config import ModelConfig

COMPONENTS = ("backbone", "camera", "tracking_head", "text", "text_encoder", "autoencoder")
_PREFIXES = {
    "backbone.transformer.": "backbone",
    "backbone.camera.": "camera",
    "tracking_head.": "tracking_head",
    "null_text.": "text",
}


def component_parameters(model: nn.Module, config: ModelConfig) -> dict[str, int | None]:
    """``{component: parameters}`` in :data:`COMPONENTS` order (see the module docstring)."""
    from mvt4g.model.autoencoder import autoencoder_parameters
    from mvt4g.model.text import text_encoder_parameters

    counts: dict[str, int | None] = {name: 0 for name in COMPONENTS}
    for name, param in model.named_parameters():
        component = next((c for prefix, c in _PREFIXES.items() if name.startswith(prefix)), None)
        if component is None:
            raise ValueError(f"parameter {name!r} belongs to no known component")
        counts[component] += param.numel()
    counts["text_encoder"] = text_encoder_parameters(config.text.encoder_path)
    counts["autoencoder"] = autoencoder_parameters(config.autoencoder)
    return counts
