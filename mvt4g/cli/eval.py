"""`mvt4g eval`: score generated novel-view videos on the DAVIS, iPhone or synthetic benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from mvt4g.cli import common


# The core's own lists, read without importing torch/OpenCV (see common.core_constant).
BENCH_NAMES = common.core_constant("mvt4g.eval.bench", "BENCH_NAMES")
CAMERA_CONVENTIONS = common.core_constant("mvt4g.eval.camera_metrics", "CONVENTIONS")
OFFLOAD_MODES = common.core_constant("mvt4g.model.placement", "OFFLOAD_MODES")


def eval_command(
    bench: Annotated[str, typer.Option("--bench", "-b", click_type=click.Choice(BENCH_NAMES), help="Benchmark.")],
    data_root: Annotated[
        Path,
        typer.Option(help="DAVIS 2017 folder, DyCheck iPhone sequence (or folder of them), or synth clip(s)."),
    ],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Generate with this model (run or model dir).")] = None,
    videos: Annotated[
        Path | None, typer.Option(help="Score videos made by any method: `DIR/SEQUENCE/TRAJECTORY.mp4`.")
    ] = None,
    copy_reference: Annotated[
        bool,
        typer.Option("--copy-reference", help="Score each item's reference video as its output: the baseline a model must beat."),
    ] = False,
    sequences: Annotated[str | None, typer.Option(help="Comma-separated sequences (default: all of the benchmark).")] = None,
    traj: Annotated[
        str | None,
        typer.Option(help="Comma-separated trajectories: davis presets or files (default: ReCamMaster's 10); "
                     "iphone cam1,cam2; synthetic view names."),
    ] = None,
    camera_metric: Annotated[
        str,
        typer.Option(click_type=click.Choice(CAMERA_CONVENTIONS),
                     help="Camera-error convention: camctrl (the papers' tables: sums over frames, radians) "
                     "or mean (per frame, degrees)."),
    ] = "camctrl",
    pose_estimator: Annotated[
        str,
        typer.Option(help="Camera poses of the generated videos: builtin (weight-free SfM), colmap (pycolmap) "
                     "or a plug-in MODULE:CALLABLE (module name or .py path; see mvt4g.eval.pose_estimators)."),
    ] = "builtin",
    weights_dir: Annotated[
        Path | None, typer.Option(help="Folder with user-supplied weights for learned metrics (LPIPS, ...).")
    ] = None,
    metrics: Annotated[
        str, typer.Option(help="Comma-separated metric groups, or all (`mvt4g eval --help` lists them).")
    ] = "all",
    frames: Annotated[
        int | None, typer.Option(help="Frames per item (default: the model's; with --videos, each video's own).")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Score at HxW (default: the model's; with --videos, the ground truth's).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Denoising steps with --model.")] = 50,
    seed: Annotated[int, typer.Option(help="Noise seed with --model.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (with --model).")] = "auto",
    offload: Annotated[
        str,
        typer.Option(click_type=click.Choice(OFFLOAD_MODES),
                     help="With --model: none, model or sequential, as `mvt4g generate --offload` (less GPU memory, "
                     "slower; the same videos)."),
    ] = "none",
    fov: Annotated[
        float | None, typer.Option(help="davis: horizontal field of view of the references, degrees (default 24 mm lens).")
    ] = None,
    save_videos: Annotated[
        Path | None, typer.Option(help="With --model: also write the videos as `DIR/SEQUENCE/TRAJECTORY.mp4` (for --videos later).")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write per-video, per-sequence and overall rows as CSV.")] = None,
    report_out: Annotated[
        Path | None, typer.Option("--report", help="Write a markdown report with the paper's table columns.")
    ] = None,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Score generated novel-view videos on a benchmark, with weight-free metrics and optional learned ones.

    Benchmarks: **davis** (DAVIS 2017 val sequences x ReCamMaster's 10 trajectory presets; no
    ground truth; reference camera assumed static), **iphone** (DyCheck: reference = camera 0,
    targets = validation cameras 1 and 2 with their real cameras, frames and covisible masks),
    **synthetic** (`mvt4g synth` clips: reference view vs every other view, exact).

    Either `--model` generates every item, or `--videos` scores existing videos laid out as
    `DIR/SEQUENCE/TRAJECTORY.mp4` (missing and extra videos are reported; the rest are scored),
    or `--copy-reference` scores each reference as if it were the output: the baseline a model
    has to beat to show it moved the camera (synthetic and iphone, which have ground truth).

    Metric groups (`--metrics`): psnr, ssim, masked_psnr, masked_ssim, region_psnr (synthetic
    only: psnr_moving on moving objects, psnr_covisible_static and psnr_covisible_moving on the
    pixels the reference also sees, from exact depth and masks), temporal_flickering, camera (rot_err, trans_err, cam_mc from poses estimated by weight-free SfM), epipolar
    (a geometric-consistency proxy, not MEt3R), tracks (track consistency), and the learned
    lpips, subject_consistency, background_consistency, aesthetic_quality, imaging_quality,
    motion_smoothness, met3r: computed only with their weights in `--weights-dir`, otherwise
    listed as skipped with the file each needs. Every metric is reported with its source and
    settings. PSNR of identical frames is infinite: JSON writes it as the string "inf".

    Many GPUs: `torchrun --nproc-per-node N -m mvt4g eval ...` shares the items out over N
    processes (`cuda:LOCAL_RANK` each); rank 0 merges their scores into the report one
    process makes and alone prints and writes it.

    Examples:

        mvt4g eval --bench synthetic --data-root data/synth --model runs/tiny --steps 4

        mvt4g eval --bench synthetic --data-root data/synth --copy-reference --metrics psnr,ssim

        mvt4g eval --bench davis --data-root DAVIS --videos gen --size 480x832 --report davis.md

        mvt4g eval --bench iphone --data-root iphone --videos out --metrics psnr,ssim,lpips --weights-dir w --json
    """
    from mvt4g.errors import InputError
    from mvt4g.eval.bench import open_bench, parse_names
    from mvt4g.eval.report import (
        check_something_scored,
        csv_text,
        json_ready,
        markdown_report,
        problem_lines,
        run_report,
        source_line,
    )
    from mvt4g.eval.runner import (
        CopySource,
        EvalSettings,
        FolderSource,
        ModelSource,
        parse_metrics,
        run_eval,
    )
    from mvt4g.fs.atomic import check_output_path, write_text_atomic

    if (model is not None) + (videos is not None) + copy_reference != 1:
        raise InputError("give exactly one of --model (generate), --videos (score existing videos) or --copy-reference")
    if save_videos is not None and model is None:
        raise InputError("--save-videos needs --model")
    if offload != "none" and model is None:
        raise InputError("--offload places a model's weights: it needs --model")

    from mvt4g.errors import MVT4GError
    from mvt4g.model.distributed import item_group

    # Under torchrun every rank scores its share of the items (and saves its own videos); rank 0
    # merges them into the one report a single process makes and alone prints and writes it.
    with item_group(device) as ranks:
        if not ranks.is_main:
            common.STATE.quiet = True
        error = None
        try:
            for out in (csv_out, report_out):
                if out is not None:
                    check_output_path(out, overwrite=overwrite)
            settings = EvalSettings(
                groups=parse_metrics(metrics), camera_metric=camera_metric, pose_estimator=pose_estimator,
                weights_dir=weights_dir, frames=frames,
                size=common.parse_size(size) if size is not None else None,
            )  # fmt: skip
            benchmark = open_bench(bench, data_root, sequences=parse_names(sequences, "sequences"),
                                   trajectories=parse_names(traj, "traj"), fov_deg=fov)  # fmt: skip
            keys = benchmark.keys()
            if model is not None:
                source = ModelSource(model, frames=frames, size=settings.size, steps=steps, seed=seed,
                                     device=str(ranks.device) if ranks.distributed else device,
                                     save_dir=save_videos, overwrite=overwrite, offload=offload)  # fmt: skip
                source.check_outputs(keys)
            elif copy_reference:
                source = CopySource(frames=frames, size=settings.size)
            else:
                source = FolderSource(videos, keys)
        except MVT4GError as exc:
            error = exc
        common.agree_ranks(error, ranks)  # every rank checked before any rank writes a video
        _info(source_line(benchmark, source, len(keys)))

        with common.progress() as bar:
            task = bar.add_task("scoring", total=len(keys))
            result = run_eval(benchmark, source, settings, on_item=lambda label, outcome: bar.advance(task), ranks=ranks)
    report = run_report(benchmark, source, settings, result)
    if not ranks.is_main:  # rank 0 reports; this one leaves with its exit code
        try:
            check_something_scored(result, settings.groups)
        except MVT4GError as exc:
            raise typer.Exit(exc.exit_code) from None
        return
    check_something_scored(result, settings.groups)
    for level, line in problem_lines(result, explicit=metrics.strip() != "all" or weights_dir is not None):
        (_warn if level == "warning" else _info)(line)

    if csv_out is not None:
        write_text_atomic(csv_out, csv_text(report))
    if report_out is not None:
        write_text_atomic(report_out, markdown_report(report))
    if json_out:
        common.emit_json(json_ready(report))
    else:
        _print_table(report)
    written = "".join(f"; wrote {p}" for p in (csv_out, report_out) if p is not None)
    _info(f"scored {len(result.results)} video(s), skipped {len(result.skipped_videos)}{written}")
    rescore = report["settings"]["source"].get("rescore")
    if rescore:
        _info(f"to score the saved videos again: mvt4g eval --bench {bench} --data-root {data_root} {rescore}")


def _warn(message: str) -> None:
    """One warning line on stderr, never wrapped (each skipped item or metric is one line), markup-free."""
    from rich.markup import escape

    common.console().print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


def _info(message: str) -> None:
    if not common.STATE.quiet:
        from rich.markup import escape

        common.console().print(escape(message), soft_wrap=True)


def _print_table(report: dict) -> None:
    if common.STATE.quiet:
        return
    import sys

    from rich.measure import Measurement
    from rich.table import Table

    from mvt4g.eval.report import table_rows

    headers, rows = table_rows(report)
    table = Table(title=f"mvt4g eval {report['bench']} (camera metrics: {report['settings']['camera_metric']})")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = common.console()
    if not sys.stderr.isatty():
        # In a log file or a pipe the table keeps its natural width (rich would squeeze it into 80 columns).
        from rich.console import Console

        wide = Console(file=sys.stderr, width=100_000)
        console = Console(file=sys.stderr, width=Measurement.get(wide, wide.options, table).maximum, highlight=False)
    console.print(table)
