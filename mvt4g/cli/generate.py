"""`mvt4g generate`: novel-view videos (and multi-view tracks) from reference videos."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated

import click
import typer

from mvt4g.cli import common


# The core's own lists, read without importing torch/OpenCV (see common.core_constant).
SAMPLERS = common.core_constant("mvt4g.sample.sampler", "SAMPLERS")
FRAME_POLICIES = common.core_constant("mvt4g.io.frames", "FRAME_POLICIES")
OFFLOAD_MODES = common.core_constant("mvt4g.model.placement", "OFFLOAD_MODES")


def generate(
    references: Annotated[
        list[Path], typer.Argument(metavar="REF...", help="Reference videos: mp4 files or DAVIS-style frame folders.")
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="A shipped model (mvtrack4gen: the default, base; `mvt4g info --model NAME` "
                     "shows its model card), a training run directory or a saved model directory."),
    ] = "mvtrack4gen",
    traj: Annotated[
        list[str] | None,
        typer.Option(
            "--traj", "-t", metavar="NAME|FILE[,...]",
            help="Target trajectories: presets (`mvt4g traj list`) or trajectory files, comma-separated or repeated; "
            "each starts at the reference camera's first pose.",
        ),
    ] = None,
    target_cameras: Annotated[
        list[str] | None,
        typer.Option(
            "--target-cameras", metavar="FILE:VIEW",
            help="Absolute target cameras (repeatable): a view of a cameras.json (its intrinsics too) or a camera of "
            "a camera_extrinsics.json, in the same world as --ref-cameras (required), used as they are, not re-based. "
            "The output is named VIEW. E.g. another view of a clip, to score with `mvt4g eval --videos`.",
        ),
    ] = None,
    camera: Annotated[
        str | None, typer.Option(metavar="camNN", help="Camera of a ReCamMaster camera_extrinsics.json trajectory file.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output video (.mp4) for one reference and one trajectory.")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Output folder: `DIR/REF_STEM/TRAJ.mp4` per item (default: the current folder)."),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="Text prompt (used when the model has a text encoder). Default: the reference's caption, "
                     "from its clip's meta.json or a metadata.csv row (file_name,text; ReCamMaster's caption file) "
                     "in its folder or above."),
    ] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from this text file.")] = None,
    negative_prompt: Annotated[
        str | None,
        typer.Option(help="The text guidance steers away from. Default: Wan2.1's standard negative prompt, as "
                     "ReCamMaster's inference uses."),
    ] = None,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale on the text (needs a text encoder).")] = 5.0,
    shift: Annotated[float, typer.Option(help="Timestep shift of the sigma grid (ReCamMaster: 5).")] = 5.0,
    sampler: Annotated[
        str, typer.Option(click_type=click.Choice(SAMPLERS), help="euler: ReCamMaster's; unipc: diffusers' UniPC.")
    ] = "euler",
    seed: Annotated[int, typer.Option(help="Noise seed (the same noise on CPU and GPU).")] = 0,
    frames: Annotated[
        int | None, typer.Option(help="Output frames, 4k+1. Default: the model's (ReCamMaster's preset: 81 = 21 latent frames).")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Output HxW, multiples of the model's stride. Default: the model's (config video).")
    ] = None,
    frame_policy: Annotated[
        str,
        typer.Option(click_type=click.Choice(FRAME_POLICIES),
                     help="A reference shorter than --frames: error (refuse it), pad (repeat its last frame) or trim "
                     "(fewer frames)."),
    ] = "error",
    fov: Annotated[float | None, typer.Option(help="Horizontal field of view of the reference video, degrees.")] = None,
    focal: Annotated[
        float | None, typer.Option(help="Focal length of the reference, mm on a 23.76 mm-wide sensor. Default: 24.")
    ] = None,
    ref_cameras: Annotated[
        str | None,
        typer.Option(
            metavar="FILE[:VIEW]",
            help="Cameras of the reference video (trajectory JSON, camera_extrinsics.json:camNN or cameras.json:VIEW). "
            "Default: a static camera.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16 or float16.")] = "auto",
    offload: Annotated[
        str,
        typer.Option(click_type=click.Choice(OFFLOAD_MODES),
                     help="Where the models wait on the CPU, as diffusers' offloading: none (DiT and VAE stay on the "
                     "GPU: fastest, most memory), model (each model on the GPU only for its stage: the peak is the "
                     "largest stage, at the cost of copying each model in once per video), sequential (each DiT block "
                     "and umT5 layer on the GPU only for its own forward: the least memory, but every forward copies "
                     "all the DiT's weights in, ~3 GB for Wan 1.3B: the slowest, most so for short videos). The text encoder is on the GPU only while it "
                     "encodes, in every mode. `mvt4g info --plan generate --offload MODE` shows each mode's peak; the "
                     "same videos in every mode."),
    ] = "none",
    query_points: Annotated[
        str | None,
        typer.Option(metavar="FILE|grid[:RxC]", help="Also predict multi-view tracks of these points (tracks.npz + overlay)."),
    ] = None,
    track_timestep: Annotated[
        float | None, typer.Option(help="Run the tracking head at the step nearest this timestep (0-1000). Default: the last step.")
    ] = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Also write reference | generated as one video.")] = False,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", help="Keep items this command would write from the same inputs and settings "
                     "(recorded in their .meta.json): a rerun of an interrupted batch does what is missing. Other "
                     "existing outputs are still refused unless --overwrite."),
    ] = False,
    overwrite: common.OverwriteOpt = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Generate the video a camera along `--traj` (or at `--target-cameras`) would have filmed of each reference.

    Every reference is fitted to the output frames and size (the frame policy and a
    centre-cropping resize, reported), encoded, and a target video is sampled with the
    flow-matching sampler (ReCamMaster's: 50 Euler steps, shift 5, guidance 5 on the text
    when the model has a text encoder). A `--traj` trajectory starts at the reference camera's
    first pose; `--target-cameras` are placed where they are in the world of `--ref-cameras`
    (give `--traj`, `--target-cameras` or both; every target is one item). Next to each video:
    `.trajectory.json` (the poses used), `.meta.json` (model, seed, settings, versions),
    optional `.side-by-side.mp4`; with `--query-points`, `.tracks.npz` (views: reference,
    generated) and a `.tracks.mp4` overlay. The model is loaded once for all items; a failed
    item is reported and the others still run (exit 1 or 2 at the end). `--skip-existing`
    keeps items written from the same inputs and settings (a rerun of a stopped batch does
    only what is missing). With `--out-dir`, each reference's folder is this run's while it
    runs: a second `generate` writing the same reference there is refused ("output folder is
    in use by pid N", exit 2).

    Many GPUs: `torchrun --nproc-per-node N -m mvt4g generate ...` shares the items out over N
    processes (`cuda:LOCAL_RANK` each; same seed, so the same videos as one process); each
    writes its own items and rank 0 prints the summary (or `--json`) of all of them.

    Without `--model` the shipped MVTrack4Gen model is used (a small DiT trained on synthetic
    scenes at 32x32, 9 frames: a demonstration of the method on a CPU, not the paper's model;
    `mvt4g info --model mvtrack4gen` shows its card). Frames and size default to the model's.

    Examples:

        mvt4g generate bear.mp4 --traj arc-left

        mvt4g generate bear.mp4 --traj arc-left --model runs/tiny --steps 4

        mvt4g generate a.mp4 b.mp4 --traj arc-left,zoom-in --model runs/exp1 --out-dir gen --json

        mvt4g generate bear.mp4 --traj pan-right --model runs/exp1 --out pan.mp4 --query-points grid:8x8

        mvt4g generate clip/videos/cam01.mp4 --ref-cameras clip/cameras/cameras.json:cam01 --target-cameras clip/cameras/cameras.json:cam02 --model runs/exp1 --out gen/clip/cam02.mp4
    """
    from mvt4g.errors import InputError

    start = time.perf_counter()
    height_width = common.parse_size(size) if size is not None else None
    if not traj and not target_cameras:
        raise InputError("give target cameras: --traj (trajectories) and/or --target-cameras (absolute cameras)")
    if target_cameras and ref_cameras is None:
        raise InputError("--target-cameras needs --ref-cameras: the reference's cameras in the same world")
    if prompt is not None and prompt_file is not None:
        raise InputError("give --prompt or --prompt-file, not both")
    if prompt_file is not None:
        prompt = _read_prompt(prompt_file)
    if out is None and out_dir is None:
        out_dir = Path(".")
    if track_timestep is not None:
        if query_points is None:
            raise InputError("--track-timestep needs --query-points")
        if not 0.0 <= track_timestep <= 1000.0:
            raise InputError(f"--track-timestep must be in [0, 1000], got {track_timestep:g}")

    from mvt4g.model.distributed import item_group

    # Under torchrun every rank plans the same jobs and makes its share (mvt4g.sample.batch);
    # rank 0 prints for all of them, the others only errors. One process: exactly as before.
    with item_group(device) as ranks:
        if not ranks.is_main:
            common.STATE.quiet = True
        _generate(ranks, start=start, references=references, model=model, traj=traj, target_cameras=target_cameras,
                  camera=camera, out=out, out_dir=out_dir, prompt=prompt, negative_prompt=negative_prompt, steps=steps,
                  guidance=guidance, shift=shift, sampler=sampler, seed=seed, frames=frames, height_width=height_width,
                  frame_policy=frame_policy, fov=fov, focal=focal, ref_cameras=ref_cameras,
                  device=str(ranks.device) if ranks.distributed else device, dtype=dtype, offload=offload, query_points=query_points, track_timestep=track_timestep,
                  side_by_side=side_by_side, skip_existing=skip_existing, overwrite=overwrite, json_out=json_out)  # fmt: skip


def _generate(ranks, *, start, references, model, traj, target_cameras, camera, out, out_dir, prompt, negative_prompt,
              steps, guidance, shift, sampler, seed, frames, height_width, frame_policy, fov, focal, ref_cameras, device, dtype, offload,
              query_points, track_timestep, side_by_side, skip_existing, overwrite, json_out) -> None:  # fmt: skip
    from mvt4g.errors import MVT4GError

    error = planned = None
    try:
        planned = _plan(references=references, model=model, traj=traj, target_cameras=target_cameras, camera=camera,
                        out=out, out_dir=out_dir, prompt=prompt, negative_prompt=negative_prompt, steps=steps,
                        guidance=guidance, shift=shift, sampler=sampler, seed=seed, frames=frames, height_width=height_width, frame_policy=frame_policy,
                        fov=fov, focal=focal, ref_cameras=ref_cameras, device=device, dtype=dtype, offload=offload,
                        query_points=query_points, track_timestep=track_timestep, side_by_side=side_by_side,
                        skip_existing=skip_existing, overwrite=overwrite)  # fmt: skip
    except MVT4GError as exc:
        error = exc
    common.agree_ranks(error, ranks)
    model_dir, config, settings, options, jobs, torch_device, n_frames, height, width, tiled_decode = planned
    if all(job.skip for job in jobs):
        common.info(f"{len(jobs)} item(s) already written from the same inputs and settings; nothing to do")
        if json_out:
            common.emit_json({"items": [{"reference": str(j.reference.path), "trajectory": j.target.name,
                                         "status": "skipped", "outputs": j.paths.to_dict()} for j in jobs],
                              "ok": len(jobs), "failed": 0, "skipped": len(jobs), "model": str(model_dir)})  # fmt: skip
        return

    from mvt4g.sample.batch import ItemRecord, gather_records, lock_item_folders, shard_jobs
    from mvt4g.sample.pipeline import GeneratePipeline

    mine = shard_jobs(jobs, ranks.rank, ranks.world_size)  # every job for one process
    with contextlib.ExitStack() as stack:
        error = pipeline = None
        try:
            # Rank 0 locks the folders for every rank; the others write only once it holds them (common.agree_ranks).
            stack.enter_context(lock_item_folders(jobs, out_dir=out_dir if out is None else None, rank=ranks.rank))
            if mine:  # a rank without items (fewer items than processes) loads nothing
                pipeline = GeneratePipeline(model_dir, device=torch_device, dtype=dtype, offload=offload,
                                            tiled_decode=tiled_decode)  # fmt: skip
        except MVT4GError as exc:
            error = exc
        common.agree_ranks(error, ranks)
        if ranks.is_main:
            if pipeline.text is None and (prompt or pipeline.config.text.encoder_path):
                # A model trained on umT5 text but generating on its null text is not the model it was.
                common.warn(f"{pipeline.text_note}; the prompt is ignored and guidance is skipped")
            spread = f" over {ranks.world_size} processes" if ranks.distributed else ""
            common.info(
                f"model {model_dir} ({config.name}) on {pipeline.device} {str(pipeline.dtype).replace('torch.', '')}"
                f"{'' if offload == 'none' else f' (--offload {offload})'}, "
                f"loaded in {pipeline.load_seconds:.1f} s (+ {pipeline.import_seconds:.1f} s importing diffusers); {len(jobs)} item(s) of {n_frames} frames at {height}x{width}, "
                f"{settings.steps} {settings.sampler} steps{spread}"
            )
        outcomes = _run(pipeline, [jobs[i] for i in mine], options, settings, seed, (prompt, negative_prompt),
                        track_timestep, overwrite,
                        single=len(jobs) == 1) if mine else []  # fmt: skip
        # Every rank's items, in the jobs' order; the folders stay locked until all ranks are done.
        records = gather_records([ItemRecord.of(i, o) for i, o in zip(mine, outcomes, strict=True)], ranks)
    failed = [r for r in records if not r.ok]
    if not ranks.is_main:  # rank 0 reports for every rank; this one leaves with the same exit code
        if failed:
            raise typer.Exit(_failure_kind(failed).exit_code)
        return
    if json_out:
        common.emit_json({
            "items": [r.item for r in records],
            "ok": len(records) - len(failed),
            "failed": len(failed),
            "skipped": sum(r.skipped for r in records),
            "settings": {**settings.to_dict(), "seed": seed, "frames": n_frames, "size": [height, width],
                         "frame_policy": frame_policy, "device": str(pipeline.device),
                         "dtype": str(pipeline.dtype).replace("torch.", ""), "offload": offload,
                         "query_points": query_points,
                         "text_encoder": pipeline.text is not None},
            "model": str(model_dir),
            "timings": {"import_s": round(pipeline.import_seconds, 3), "load_s": round(pipeline.load_seconds, 3),
                        "total_s": round(time.perf_counter() - start, 3)},
        })  # fmt: skip
    if failed:
        _raise_failures(failed, len(records))
    common.info(f"{len(records)} item(s) in {time.perf_counter() - start:.1f} s")


def _plan(*, references, model, traj, target_cameras, camera, out, out_dir, prompt, negative_prompt, steps, guidance,
          shift, sampler, seed, frames, height_width, frame_policy, fov, focal, ref_cameras, device, dtype, offload, query_points,
          track_timestep, side_by_side, skip_existing, overwrite):  # fmt: skip
    """Every check before any work, and the jobs (see mvt4g.sample.batch.plan_jobs)."""
    from mvt4g.errors import InputError

    from mvt4g.model.checkpoint import read_config
    from mvt4g.model.lookup import resolve_model
    from mvt4g.sample.pipeline import check_video_shape, resolve_device, resolve_dtype
    from mvt4g.sample.sampler import SamplingSettings

    settings = SamplingSettings(steps=steps, shift=shift, sampler=sampler, guidance=guidance)
    model_dir = resolve_model(model)
    config = read_config(model_dir)
    n_frames = config.video.frames if frames is None else frames
    height, width = height_width or (config.video.height, config.video.width)
    check_video_shape(config, n_frames, height, width)
    torch_device = resolve_device(device)
    resolve_dtype(dtype, torch_device)
    tiled_decode = None  # the pipeline's default: whole frames (tiles only after running out of memory)
    if torch_device.type == "cuda":  # refuse what cannot fit before loading anything (the memory plan)
        from mvt4g.model.device_fit import check_device_fits
        from mvt4g.model.plan import GIB

        fits = check_device_fits(config, frames=n_frames, height=height, width=width, steps=steps,
                                 guidance=guidance > 0, dtype=resolve_dtype(dtype, torch_device), device=torch_device,
                                 offload=offload)  # fmt: skip
        if fits["tiled_decode"]:
            tiled_decode = True
            common.info(f"whole-frame VAE decoding would not fit: it will decode in tiles, ~{fits['peak_bytes'] / GIB:.1f} "
                        "GiB at the peak (the memory plan)")  # fmt: skip
    if query_points is not None and not config.use_tracking_head:
        raise InputError("this model has no tracking head (use_tracking_head is off): drop --query-points", path=model_dir)

    from mvt4g.sample.batch import plan_jobs
    from mvt4g.sample.reference import ReferenceOptions, plan_reference
    from mvt4g.sample.targets import camera_targets, trajectory_targets

    options = ReferenceOptions(frames=n_frames, height=height, width=width, frame_policy=frame_policy,
                               fov_deg=fov, focal_mm=focal, camera_file=ref_cameras)  # fmt: skip
    plans = [plan_reference(path, options) for path in references]
    if camera is not None and not traj:
        raise InputError("--camera picks a camera of a --traj camera_extrinsics.json file: use --target-cameras FILE:camNN")
    targets = trajectory_targets(traj, camera) if traj else []
    targets += camera_targets(target_cameras or [], targets)
    # Everything an item's pixels depend on besides its reference and trajectory (--skip-existing compares it).
    request = {"model": str(model_dir.resolve()), "weights": _stamp(model_dir / "model.safetensors"),
               "settings": settings.to_dict(), "seed": seed, "frames": n_frames, "size": [height, width],
               "frame_policy": frame_policy, "fov": fov, "focal": focal, "ref_cameras": ref_cameras,
               "prompt": prompt, "negative_prompt": negative_prompt, "dtype": dtype, "query_points": query_points, "track_timestep": track_timestep,
               "side_by_side": side_by_side}  # fmt: skip
    jobs = plan_jobs(plans, targets, out=out, out_dir=out_dir, side_by_side=side_by_side,
                     query_spec=query_points, size=(height, width), token_stride=config.token_stride,
                     overwrite=overwrite, request=request, skip_existing=skip_existing)  # fmt: skip
    return model_dir, config, settings, options, jobs, torch_device, n_frames, height, width, tiled_decode


def _stamp(path: Path) -> list | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _read_prompt(path: Path) -> str:
    from mvt4g.errors import InputError

    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise InputError("no such prompt file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable prompt file ({exc})", path=path) from None


def _run(pipeline, jobs, options, settings, seed, prompts, track_timestep, overwrite, *, single: bool):
    from mvt4g.io.captions import WAN_NEGATIVE_PROMPT
    from mvt4g.sample.batch import run_jobs

    prompt, negative_prompt = prompts
    seen_refs: set[str] = set()
    with common.progress() as bar:
        items_task = bar.add_task("items", total=len(jobs))
        steps_task = bar.add_task("steps", total=settings.steps)

        def on_start(job, number, total):
            bar.update(steps_task, completed=0, description=job.label)

        def on_step(done, total):
            bar.update(steps_task, completed=done)

        def on_done(outcome):
            bar.advance(items_task)
            job = outcome.job
            if job.skip:
                common.info(f"{job.label}: kept {job.paths.video} (written from the same inputs and settings)")
            elif outcome.ok:
                ref = outcome.info["reference"]
                key = str(job.reference.path)
                if key not in seen_refs:
                    seen_refs.add(key)
                    common.info(f"{job.reference.path}: {ref['frames']['message']}; {ref['size']['message']}; camera {ref['camera']['motion']}")
                if outcome.info.get("trajectory_note"):
                    common.info(f"{job.label}: {outcome.info['trajectory_note']}")
                common.info(f"{job.label}: wrote {job.paths.video} ({outcome.seconds:.1f} s)")
            elif not single:
                common.warn(f"{job.label} failed: {outcome.error}")
            if outcome.traceback and common.STATE.debug:
                common.console().print(outcome.traceback)

        return run_jobs(pipeline, jobs, options, settings=settings, seed=seed, prompt=prompt,
                        negative_prompt=WAN_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt,
                        track_timestep=track_timestep, overwrite=overwrite,
                        extra_metadata={"generated_by": "mvt4g generate"},
                        on_start=on_start, on_step=on_step, on_done=on_done)  # fmt: skip


def _failure_kind(failed) -> type:
    from mvt4g.errors import InputError, WorkFailed

    return InputError if all(r.exit_code == 2 for r in failed) else WorkFailed


def _raise_failures(failed, total: int) -> None:
    first = failed[0]
    kind = _failure_kind(failed)
    if total == 1:
        raise kind(first.error)
    raise kind(f"{len(failed)} of {total} items failed (first: {first.label}: {first.error})")
