"""`mvt4g info`: parameter counts and tensor shapes of a model preset or a saved model."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer

from mvt4g.cli import common
from mvt4g.model.config import preset_names
from mvt4g.model.summary import PLANS

# The core's own list, read without importing torch (see common.core_constant).
OFFLOAD_MODES = common.core_constant("mvt4g.model.placement", "OFFLOAD_MODES")


def info(
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help=f"Preset name: {', '.join(preset_names())}."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="A shipped model (mvtrack4gen, base: also prints its model card), "
                     "a saved model directory (config.json + model.safetensors) or a training run directory."),
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option("--plan", metavar="|".join(PLANS),
                     help="Also print FLOPs and peak memory per stage for training or generation (takes a minute at Wan size)."),
    ] = None,
    frames: Annotated[int | None, typer.Option(help="Video frames for --plan (default: the model's).")] = None,
    size: Annotated[str | None, typer.Option(metavar="HxW", help="Video size for --plan (default: the model's).")] = None,
    offload: Annotated[
        str | None,
        typer.Option(click_type=click.Choice(OFFLOAD_MODES),
                     help="With --plan generate: the peak under this `mvt4g generate --offload` mode (default: none)."),
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

        mvt4g info --preset wan2.1-1.3b --plan train --frames 81 --size 480x832

        mvt4g info --preset wan2.1-1.3b --plan generate --frames 81 --size 480x832 --offload model

    --plan runs the model on PyTorch's meta device under torch's FLOP counter: FLOPs and peak
    tensor memory (bfloat16) per stage, training with and without gradient checkpointing,
    tracking head and L_corr, and the full-method / diffusion-only ratios; for generation, the
    peak under each `mvt4g generate --offload` mode (--offload picks the one reported as the plan's).
    """
    from mvt4g.errors import InputError
    from mvt4g.model.lookup import SHIPPED, resolve_model, shipped_card, shipped_dir
    from mvt4g.model.summary import check_plan, model_plan, model_summary

    if (preset is None) == (model is None):
        raise InputError("give exactly one of --preset NAME or --model DIR")
    if plan is not None:
        check_plan(plan)
    if plan is None and (frames is not None or size is not None):
        raise InputError("--frames and --size size a --plan: add --plan train or --plan generate")
    if offload is not None and plan != "generate":
        raise InputError("--offload plans a generation: add --plan generate")
    height_width = common.parse_size(size) if size else None
    model_dir = resolve_model(model) if model is not None else None
    summary = model_summary(preset=preset, model_dir=model_dir)
    if model in SHIPPED:
        summary["shipped"] = model
        summary["card"] = shipped_card(model)
    if plan is not None:
        summary["plan"] = model_plan(plan, preset=preset, model_dir=model_dir, frames=frames, size=height_width,
                                     offload=offload or "none")  # fmt: skip
    if json_out:
        common.emit_json(summary)
        return
    _print_summary(summary)
    if plan is not None:
        _print_plan(summary["name"], summary["plan"])
    if model in SHIPPED:
        card = shipped_dir(model) / "MODEL_CARD.md"
        common.info(f"\nmodel card ({card}):\n")
        typer.echo(card.read_text(), err=True)


def _gib(n: float) -> str:
    # GiB at Wan sizes, MiB for the CPU presets (which would all read 0.0 GiB)
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _tflop(n: float) -> str:
    return f"{n / 1e12:,.1f} TFLOP" if n >= 1e12 else f"{n / 1e9:,.2f} GFLOP"


def _print_plan(name: str, p: dict[str, Any]) -> None:
    s = p["shape"]
    common.info(f"\n[bold]plan: {p['plan']}[/bold] {name} at {s['frames']}x{s['height']}x{s['width']} "
                f"({p['tokens']:,} tokens, batch {s['batch']}), {p['dtype']}; FLOPs from torch's FlopCounterMode "
                f"and peak tensor memory, both on the meta device (CUDA context and fragmentation not included)")  # fmt: skip
    if p["plan"] == "train":
        _print_train_plan(p)
    else:
        _print_generate_plan(p)


def _print_train_plan(p: dict[str, Any]) -> None:
    text = p["text_encoder"]
    if text:
        common.info(f"  {text['name']}: {_tflop(text['flops'])}, {_gib(text['peak_bytes'])} per caption "
                    "(once per clip, in `train prepare`; not held during training)")  # fmt: skip
    queries = p["shape"]["queries"]
    common.info(f"  DiT train step ({queries} query points): peak = weights + Adam moments + what the step allocates")
    common.info(f"    {'variant':<10} {'checkpointing':<14} {'FLOPs':>15} {'peak':>11} {'weights':>10} {'grads':>10} "
                f"{'Adam':>10} {'step':>11}")  # fmt: skip
    for r in p["rows"]:
        parts = r["parts"]
        common.info(f"    {r['variant']:<10} {'on' if r['checkpointing'] else 'off':<14} {_tflop(r['flops']):>15} "
                    f"{_gib(r['peak_bytes']):>11} {_gib(parts['weights']):>10} {_gib(parts['grads']):>10} "
                    f"{_gib(parts['adam']):>10} {_gib(parts['step']):>11}")  # fmt: skip
    common.info("    diffusion: L_diff only; corr: + L_corr on the tapped Q/K; full: + tracking head and L_track (the method)")
    for key, label in (("checkpointing", "with checkpointing"), ("no_checkpointing", "without")):
        r = p["ratios"][key]
        common.info(f"  full / diffusion {label}: FLOPs {r['flops']:.3f}x, memory {r['memory']:.3f}x (goal <= 1.10)")


def _print_generate_plan(p: dict[str, Any]) -> None:
    common.info(f"  {p['steps']} steps{', guidance (2 DiT forwards per step)' if p['guidance'] else ''}")
    common.info(f"    {'stage':<26} {'FLOPs':>16} {'peak':>11} {'weights':>10}")
    for st in p["stages"]:
        common.info(f"    {st['name']:<26} {_tflop(st['flops']):>16} {_gib(st['peak_bytes']):>11} "
                    f"{_gib(st['parts'].get('weights', 0.0)):>10}")  # fmt: skip
    dit = next(st for st in p["stages"] if st["name"] == "DiT sampling")
    common.info(f"  DiT per step: {_tflop(dit['parts']['flops_per_step'])}; total {_tflop(p['flops'])}")
    common.info(f"  peak with every model on the device at once (text encoder too): {_gib(p['peak_bytes_resident'])}; "
                f"the largest stage alone: {_gib(p['peak_bytes_staged'])}")  # fmt: skip
    from mvt4g.model.placement import OFFLOAD_COST

    common.info("  peak per `generate --offload` mode:")
    tiled = p.get("tiled") or {}
    if tiled:
        common.info(f"  (with the VAE decoding in tiles: {_gib(tiled['stage']['peak_bytes'])} for that stage, which "
                    "`generate` chooses by itself when whole frames would not fit)")  # fmt: skip
    for mode, peak in p["peak_bytes_by_offload"].items():
        chosen = "  <- --offload " + mode if mode == p["offload"] else ""
        in_tiles = f" ({_gib(tiled['peak_bytes_by_offload'][mode])} in tiles)" if tiled else ""
        common.info(f"    {mode:<11} {_gib(peak):>11}{in_tiles}  {OFFLOAD_COST[mode]}{chosen}")


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
