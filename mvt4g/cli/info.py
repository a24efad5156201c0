"""`mvt4g info`: parameter counts and tensor shapes of a model preset or a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mvt4g.cli import common


def info(
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="Preset name: tiny, small, tiny-wanvae, wan2.1-1.3b."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="A shipped model (mvtrack4gen, base: also prints its model card), "
                     "a saved model directory (config.json + model.safetensors) or a training run directory."),
    ] = None,
    json_out: common.JsonOpt = False,
) -> None:
    """Print a model's parameter counts per component and per group and its tensor shapes at the preset's video size.

    The model is built on PyTorch's meta device (no memory, no weights), so even the 1.3B
    preset answers instantly. Components: backbone (the Wan DiT), camera modules, tracking
    head, text (the learned null text; text_encoder: the umT5 the model names) and autoencoder.
    "trainable" is the paper's fine-tuning scope: self-attention, camera modules and tracking head.

    Examples:

        mvt4g info --preset tiny

        mvt4g info --preset wan2.1-1.3b --json

        mvt4g info --model mvtrack4gen
    """
    from mvt4g.errors import InputError
    from mvt4g.model.lookup import SHIPPED, resolve_model, shipped_card, shipped_dir

    if (preset is None) == (model is None):
        raise InputError("give exactly one of --preset NAME or --model DIR")
    model_dir = resolve_model(model) if model is not None else None
    summary = model_summary(preset=preset, model_dir=model_dir)
    if model in SHIPPED:
        summary["shipped"] = model
        summary["card"] = shipped_card(model)
    if json_out:
        common.emit_json(summary)
        return
    _print_summary(summary)
    if model in SHIPPED:
        card = shipped_dir(model) / "MODEL_CARD.md"
        common.info(f"\nmodel card ({card}):\n")
        typer.echo(card.read_text(), err=True)


def model_summary(*, preset: str | None = None, model_dir: Path | None = None) -> dict[str, Any]:
    """The JSON object `mvt4g info` prints (also used by the benchmarks)."""
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
    video = cfg.video
    frames = cfg.latent_frames(video.frames)
    sf = cfg.autoencoder.spatial_factor
    h_tok, w_tok = cfg.token_grid(video.height, video.width)
    b = cfg.backbone
    tokens_per_view = frames * h_tok * w_tok
    shapes = {
        "video": [3, video.frames, video.height, video.width],
        "latents_per_view": [b.in_channels, frames, video.height // sf, video.width // sf],
        "plucker": [2, frames, 6, video.height, video.width],
        "token_grid_per_view": [frames, h_tok, w_tok],
        "tokens_per_view": tokens_per_view,
        "tokens_total": 2 * tokens_per_view,
        "tap_qk": [2, frames, h_tok, w_tok, b.num_attention_heads, b.attention_head_dim],
        "velocity": [b.out_channels, frames, video.height // sf, video.width // sf],
    }
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
        "shapes": shapes,
    }


def _fmt(n: int) -> str:
    return f"{n / 1e9:.3f}B" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def _print_summary(s: dict[str, Any]) -> None:
    b = s["backbone"]
    common.info(f"[bold]{s['name']}[/bold] ({s['source']})")
    common.info(
        f"  DiT: {b['layers']} blocks, {b['heads']} heads x {b['head_dim']} (dim {b['dim']}), ffn {b['ffn_dim']}, "
        f"text_dim {b['text_dim']}, patch {tuple(b['patch_size'])}"
    )
    common.info(
        f"  camera: {s['camera_mode']}; autoencoder: {s['autoencoder']}; token order: {s['token_order']}; "
        f"tap layer: {s['tap_layer']}; token stride: {s['token_stride']} px; tracking head: {'on' if s['tracking_head'] else 'off'}"
    )
    common.info("  parameters per component:")
    for name, n in s["components"].items():
        if n is not None:
            count = f"{n:>15,}  {_fmt(n):>9}"
        else:  # only the text encoder can be unknown
            count = "none" if not s["text_encoder_path"] else "unknown (counting umT5 needs transformers)"
        common.info(f"    {name:<16} {count}")
    common.info("  parameters per group (the model itself):")
    for group, n in s["parameters"].items():
        common.info(f"    {group:<16} {_fmt(n):>10}")
    common.info(f"    {'total':<16} {_fmt(s['parameters_total']):>10}")
    common.info(f"    {'trainable*':<16} {_fmt(s['trainable_in_finetuning']):>10}  (*self-attention, camera, tracking head)")
    common.info("  shapes at the preset's video size:")
    for key, value in s["shapes"].items():
        common.info(f"    {key:<20} {value}")
