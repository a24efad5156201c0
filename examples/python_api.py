"""The mvt4g job in one Python process: scenes -> tracks -> ray maps -> train -> generate -> score.

The same steps as ``examples/pipeline.sh``, through the Python API instead of the shell:

1. render synthetic multi-view scenes with exact ground truth (``mvt4g synth``),
2. check each clip's multi-view tracks, and score geometry tracks against the exact ones,
3. cache every view's Plücker ray map (``mvt4g plucker``),
4. train the tiny model on every scene but the last (``mvt4g train``),
5. generate the last scene's cam02 from its cam01 video and cam02's exact cameras,
6. score it against cam02's exact render, next to simply copying the reference.

Run (about a minute on one CPU core with the defaults):

    python examples/python_api.py --out /tmp/mvt4g_api
    python examples/python_api.py --out /tmp/mvt4g_api_big --scenes 12 --steps 400 --size 32

Writes OUT/synth/scene_NNNN/ (clips), OUT/run/ (the training run; OUT/run/model is the model)
and OUT/generated.mp4. Prints one line per step and the scores. A run this short does not
learn much: raise --scenes and --steps to see the model beat copying the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mvt4g.errors import MVT4GError
from mvt4g.eval import psnr, ssim
from mvt4g.io import read_clip, write_video
from mvt4g.io.plucker_cache import plan_plucker_jobs, read_plucker, run_plucker_job
from mvt4g.sample import GeneratePipeline, PreparedReference, SamplingSettings
from mvt4g.synth import SynthSettings, synthesize
from mvt4g.tracks import TrackOptions, compute_tracks, plan_track_jobs, read_tracks, run_track_job, score_tracks
from mvt4g.train import Trainer, from_dict

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (must not hold an earlier run)")
    parser.add_argument("--scenes", type=int, default=4, help="synthetic scenes; the last one is held out")
    parser.add_argument("--frames", type=int, default=5, help="frames per video, 4k+1")
    parser.add_argument("--size", type=int, default=16, help="square video size in pixels (even)")
    parser.add_argument("--steps", type=int, default=60, help="training steps")
    parser.add_argument("--gen-steps", type=int, default=4, help="denoising steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny models gain nothing from more)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. Scenes: each is a clip directory (videos/, cameras/, depth/, masks/, tracks.npz, meta.json).
    settings = SynthSettings(views=2, frames=args.frames, height=args.size, width=args.size, seed=0, points=64)
    scenes = synthesize(settings, args.out / "synth", args.scenes)
    train_scenes, held_out = scenes[:-1], scenes[-1]
    print(f"synth: {len(scenes)} scenes of 2 views x {args.frames} frames at {args.size}x{args.size}")

    # 2. Tracks, as `mvt4g tracks` makes them: "auto" keeps exact tracks (synth writes them); a
    #    real clip would get geometry (with depth) or flow tracks. Every clip is checked first.
    rows = [run_track_job(job) for job in plan_track_jobs(scenes, TrackOptions())]
    print(f"tracks: {len(rows)} clips: {', '.join(sorted({r['status'] for r in rows}))} ({rows[-1]['reason']})")
    clip = read_clip(held_out)
    exact = read_tracks(clip.tracks_path)
    options = TrackOptions(method="geometry", queries_from=clip.tracks_path)  # the same query points
    scores = score_tracks(compute_tracks(clip, options).trackset, exact)["all"]
    print(f"tracks: geometry vs exact on {exact.queries.shape[0]} points: delta_avg {scores['delta_avg']:.3f}")

    # 3. Plücker ray maps [F, 6, H, W] per view, relative to cam01's first pose, as `mvt4g plucker`
    #    writes them (CLIP/plucker/VIEW.safetensors); a current file is kept.
    rows = [run_plucker_job(job) for job in plan_plucker_jobs(scenes, relative_to_view="cam01")]
    rays, _ = read_plucker(held_out / "plucker" / "cam02.safetensors")
    print(f"plucker: {len(rows)} maps, e.g. cam02 {list(rays.shape)}")

    # 4. Train: the same keys as a TOML config (`mvt4g train --config tiny`: mvt4g/train/configs/tiny.toml); unset keys keep defaults.
    config = from_dict({
        "model": {"preset": "tiny"},
        "data": {"paths": [str(s) for s in train_scenes], "frames": args.frames,
                 "height": args.size, "width": args.size, "queries": 16},
        "optim": {"lr": 3e-3, "warmup_steps": 10, "schedule": "cosine"},
        "train": {"steps": args.steps, "batch_size": 4, "threads": args.threads, "out": str(args.out / "run"),
                  "log_every": args.steps, "checkpoint_every": args.steps, "tensorboard": False},
    }).validate()  # fmt: skip
    result = Trainer(config).run()
    print(f"train: {result.step} steps, final loss {result.final['loss']:.4f}, model in {result.model_dir}")

    # 5. Generate the held-out scene's cam02 from cam01, with both views' exact cameras.
    pipe = GeneratePipeline(result.model_dir, device="cpu")
    reference = PreparedReference.from_clip(clip, "cam01")  # its frames and exact cameras, as they are
    generated = pipe.generate(reference, clip.cameras["cam02"], settings=SamplingSettings(steps=args.gen_steps), seed=0)
    write_video(args.out / "generated.mp4", generated.frames, fps=clip.fps)
    print(f"generate: {args.out / 'generated.mp4'}")

    # 6. Score against the exact render of cam02; copying the reference is the baseline to beat.
    target = clip.read_video("cam02")
    generated_psnr, generated_ssim = psnr(generated.frames, target), ssim(generated.frames, target)
    print(f"psnr generated vs target: {generated_psnr:.2f} dB (ssim {generated_ssim:.3f})")
    print(f"psnr reference vs target: {psnr(reference.frames, target):.2f} dB (copying the reference)")


if __name__ == "__main__":
    try:
        main()
    except MVT4GError as exc:  # one line and the CLI's exit code: 2 bad input, 1 work failed
        print(f"python_api.py: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
