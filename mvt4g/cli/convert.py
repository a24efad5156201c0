"""`mvt4g convert`: bring outside checkpoints into mvt4g's model format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from mvt4g.cli import common
from mvt4g.model.config import CAMERA_MODES as MODEL_CAMERA_MODES

app = typer.Typer(
    help="Convert outside checkpoints to mvt4g models (safetensors + JSON).",
    no_args_is_help=True,
)


# The core's lists: camera modes a converted ReCamMaster can have (not "none"), autoencoder
# sources (read without importing torch, see common.core_constant), weight dtypes written.
CAMERA_MODES = tuple(mode for mode in MODEL_CAMERA_MODES if mode != "none")
AUTOENCODER_SOURCES = common.core_constant("mvt4g.model.convert", "AUTOENCODER_SOURCES")
DTYPES = ("float32", "bfloat16")


@app.command("recammaster")
def recammaster(
    checkpoint: Annotated[Path, typer.Argument(help="ReCamMaster checkpoint: .ckpt/.pt/.pth (pickle) or .safetensors.")],
    base: Annotated[
        Path, typer.Option("--base", help="Local diffusers-format Wan2.1 directory (transformer/, vae/; "
                           "text_encoder/ and tokenizer/ when present).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model directory (missing parent folders are created).")],
    camera: Annotated[
        str,
        typer.Option(click_type=click.Choice(CAMERA_MODES),
                     help="recammaster: keep its 12-value pose conditioning; plucker: start a zero Plücker encoder."),
    ] = "recammaster",
    tap_layer: Annotated[
        int | None, typer.Option("--tap-layer", help="Block whose Q/K feed the tracking head (default 18 of 30).")
    ] = None,
    tracking_head: Annotated[
        bool, typer.Option("--tracking-head/--no-tracking-head", help="Add a freshly initialised tracking head.")
    ] = True,
    dtype: Annotated[str, typer.Option(click_type=click.Choice(DTYPES), help="Weight dtype of the output.")] = "float32",
    autoencoder: Annotated[
        str,
        typer.Option(click_type=click.Choice(AUTOENCODER_SOURCES), help="base: the base's vae/ (a base without one is refused); space-to-depth: the built-in "
                     "lossless one (only for 12*s^2 latent channels); random-vae: a small random Wan VAE "
                     "(tests, CPU experiments)."),
    ] = "base",
    link: Annotated[
        bool,
        typer.Option("--link/--copy", help="--link: the model refers to the base's vae/, text_encoder/ and "
                     "tokenizer/ by a path relative to the model folder (move the two folders together); "
                     "--copy: copy them into the model folder (hard links where possible), so it stands alone."),
    ] = True,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Convert a ReCamMaster (DiffSynth naming) checkpoint to an mvt4g model directory.

    Weights missing from the checkpoint (it may hold only the fine-tuned layers) come from
    --base. Pickles are opened with torch.load(weights_only=True) only; keys that match no
    rename rule are an error. Nothing is downloaded. The model folder stores no absolute
    path: see --link/--copy.

    Example:

        mvt4g convert recammaster step20000.ckpt --base ~/models/Wan2.1-T2V-1.3B-Diffusers --out models/recammaster
    """
    import time

    import torch

    from mvt4g.errors import InputError
    from mvt4g.fs.atomic import check_output_path
    from mvt4g.model.convert import convert_recammaster, find_transformer_dir, save_converted

    check_output_path(out, overwrite=overwrite, is_dir=True)
    if not checkpoint.is_file():
        raise InputError("checkpoint does not exist", path=checkpoint)
    find_transformer_dir(base)
    start = time.perf_counter()
    model, report = convert_recammaster(
        checkpoint,
        base,
        camera=camera,
        tap_layer=tap_layer,
        tracking_head=tracking_head,
        dtype=getattr(torch, dtype),
        autoencoder=autoencoder,
    )
    files = "link" if link else "copy"
    stored = save_converted(model, out, files=files, overwrite=overwrite, metadata={"converted_from": str(checkpoint.name)})
    summary = {
        "out": str(out),
        "checkpoint": str(checkpoint),
        "base": str(base),
        "camera_mode": camera,
        "autoencoder": autoencoder,
        "base_files": files,
        **stored,
        "tap_layer": model.config.tap_layer,
        "seconds": round(time.perf_counter() - start, 3),
        **report.to_dict(),
    }
    if json_out:
        common.emit_json(summary)
        return
    common.info(
        f"wrote {out}: {report.from_checkpoint} tensors from the checkpoint, {summary['from_base']} from the base, "
        f"{summary['initialised']} newly initialised ({', '.join(summary['initialised_modules']) or 'none'}), "
        f"{summary['dropped']} dropped"
    )
