"""A model's summary, without weights: parameter counts, fine-tuning scope, tensor shapes, plans.

``mvt4g info`` prints these; they are computed here so the command only parses and prints.
The model is built on PyTorch's meta device, so the 1.3B preset answers instantly. Importing
this module is cheap (torch is imported by the functions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: What ``--plan`` sizes: a training step or a generation.
PLANS = ("train", "generate")


def video_shapes(config) -> dict[str, Any]:
    """Tensor shapes of one (reference, target) pair at ``config.video``'s size: the video, the
    latents and Plücker maps per view, the token grid and counts, the tapped Q/K, the velocity."""
    video = config.video
    frames = config.latent_frames(video.frames)
    sf = config.autoencoder.spatial_factor
    h_tok, w_tok = config.token_grid(video.height, video.width)
    b = config.backbone
    tokens_per_view = frames * h_tok * w_tok
    return {
        "video": [3, video.frames, video.height, video.width],
        "latents_per_view": [b.in_channels, frames, video.height // sf, video.width // sf],
        "plucker": [2, frames, 6, video.height, video.width],
        "token_grid_per_view": [frames, h_tok, w_tok],
        "tokens_per_view": tokens_per_view,
        "tokens_total": 2 * tokens_per_view,
        "tap_qk": [2, frames, h_tok, w_tok, b.num_attention_heads, b.attention_head_dim],
        "velocity": [b.out_channels, frames, video.height // sf, video.width // sf],
    }


def model_summary(*, preset: str | None = None, model_dir: Path | None = None) -> dict[str, Any]:
    """What `mvt4g info` prints as JSON: parameter counts per group and component, the
    fine-tuning scope, backbone sizes and the tensor shapes at the config's video size.

    Give ``preset`` (a :func:`mvt4g.model.config.preset` name) or ``model_dir`` (a saved model,
    whose weights are checked against its config). The model is built on the meta device.
    """
    from mvt4g.model.config import preset as get_preset

    # Resolve the config before importing torch/diffusers: a bad name fails fast.
    config = get_preset(preset) if preset is not None else None
    from mvt4g.model.checkpoint import build_on_meta, read_config
    from mvt4g.model.freeze import freeze_for_finetuning, parameter_report

    config = config or read_config(model_dir)
    net = build_on_meta(config)
    if model_dir is not None:  # a saved model's weights must be complete and match its config
        from mvt4g.model.checkpoint import WEIGHTS_NAME, verify_safetensors_file

        verify_safetensors_file(Path(model_dir) / WEIGHTS_NAME, {k: tuple(v.shape) for k, v in net.state_dict().items()})
    from mvt4g.model.components import component_parameters

    params = parameter_report(net).to_dict()
    components = component_parameters(net, config)
    scope = freeze_for_finetuning(net).to_dict()
    cfg = net.config
    b = cfg.backbone
    return {
        "name": cfg.name,
        "source": str(model_dir) if model_dir is not None else f"preset:{preset}",
        "parameters": {g: v["total"] for g, v in params["groups"].items()},
        "parameters_total": params["total"],
        "components": components,
        "text_encoder_path": config.text.encoder_path or None,
        "trainable_in_finetuning": scope["trainable"],
        "backbone": {
            "layers": b.num_layers,
            "heads": b.num_attention_heads,
            "head_dim": b.attention_head_dim,
            "dim": b.inner_dim,
            "ffn_dim": b.ffn_dim,
            "text_dim": b.text_dim,
            "patch_size": list(b.patch_size),
        },
        "camera_mode": cfg.camera.mode,
        "autoencoder": cfg.autoencoder.kind,
        "token_order": cfg.token_order,
        "tap_layer": cfg.tap_layer,
        "token_stride": cfg.token_stride,
        "tracking_head": cfg.use_tracking_head,
        "shapes": video_shapes(cfg),
    }


def check_plan(kind: str) -> None:
    """InputError unless ``kind`` is one of :data:`PLANS`."""
    if kind not in PLANS:
        from mvt4g.errors import InputError

        raise InputError(f"--plan must be {' or '.join(PLANS)}, got {kind!r}")


def model_plan(kind: str, *, preset: str | None = None, model_dir: Path | None = None, frames: int | None = None,
               size: tuple[int, int] | None = None, offload: str = "none") -> dict[str, Any]:
    """FLOPs and peak memory per stage of a training step (``kind="train"``) or a generation
    (``"generate"``, its peak under offload mode ``offload``) at ``frames`` and ``size = (H, W)``
    (default: the model's video)."""
    from mvt4g.model.checkpoint import read_config
    from mvt4g.model.config import preset as get_preset
    from mvt4g.model.plan import PlanShape, generate_plan, train_plan

    check_plan(kind)
    config = get_preset(preset) if preset is not None else read_config(model_dir)
    height, width = size or (config.video.height, config.video.width)
    shape = PlanShape(frames=config.video.frames if frames is None else frames, height=height, width=width)
    # The tiled VAE decode is priced too: generate chooses it when whole frames would not fit.
    return train_plan(config, shape) if kind == "train" else generate_plan(config, shape, offload=offload, tiled=True)
