"""A model trained on synthetic scenes generates held-out target views better than copying the reference.

The whole path: `mvt4g synth` scenes -> the trainer (Python API) -> GeneratePipeline on held-out
scenes with their exact cameras -> PSNR against the exact target video.

Training config (about 400 x 0.1 s steps on one free CPU core): 16 scenes of 2 views x 5 frames
at 16x16, diffusion loss only (no tracking head, no L_corr: the fastest thing that learns),
every parameter group, AdamW 3e-3, uniform loss weighting (the bell weighting gives the
timesteps near 1000, which a few-step sampler leans on, almost no weight).

The DiT is the tiny preset: 4 heads x 48 = 192 channels, as wide as the 192 latent values a
token carries (a 2x2 patch of 48 channels). Narrower tokens cannot carry the noise part of
the velocity, and their samples keep much of their starting noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mvt4g.train.trainer", reason="the trainer (mvt4g/train/) is not in this checkout")

FRAMES, SIZE, TRAIN_SCENES, HELD_OUT = 5, 16, 16, 6


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.slow
def test_trained_model_beats_copying_the_reference(tmp_path):
    from mvt4g.io.clip import read_clip
    from mvt4g.io.video import read_video
    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel
    from mvt4g.sample.pipeline import GeneratePipeline
    from mvt4g.sample.reference import PreparedReference
    from mvt4g.sample.sampler import SamplingSettings
    from mvt4g.synth.pipeline import SynthSettings, synthesize
    from mvt4g.threads import torch_threads
    from mvt4g.train.config import from_dict
    from mvt4g.train.trainer import Trainer

    scenes = synthesize(
        SynthSettings(views=2, frames=FRAMES, height=SIZE, width=SIZE, seed=0, points=64),
        tmp_path / "synth", TRAIN_SCENES + HELD_OUT,
    )  # fmt: skip
    train, held_out = scenes[:TRAIN_SCENES], scenes[TRAIN_SCENES:]

    config = preset("tiny")
    config.video.frames, config.video.height, config.video.width = FRAMES, SIZE, SIZE
    config.use_tracking_head = False
    torch.manual_seed(0)
    save_pretrained(MVT4GModel(config), tmp_path / "init")

    cfg = from_dict({
        "model": {"init": str(tmp_path / "init"), "tracking_head": False},
        "data": {"paths": [str(p) for p in train], "frames": FRAMES, "queries": 8},
        "loss": {"corr": False, "weighting": "none"},
        "optim": {"lr": 3e-3, "warmup_steps": 10, "schedule": "cosine",
                  "train_groups": ["self_attention", "camera", "feed_forward", "modulation", "embeddings", "output"]},
        "train": {"steps": 400, "batch_size": 8, "seed": 0, "out": str(tmp_path / "run"), "log_every": 100,
                  "checkpoint_every": 400},
    }).validate()  # fmt: skip
    with torch_threads(1):  # tiny matrices: one thread, no oversubscription of a shared CPU
        Trainer(cfg).run()

    def scores(model_dir) -> tuple[list[float], list[float]]:
        pipe = GeneratePipeline(model_dir, device="cpu")
        generated, copied = [], []
        for scene in held_out:
            clip = read_clip(scene)
            ref, tgt = read_video(clip.videos["cam01"]).frames, read_video(clip.videos["cam02"]).frames
            reference = PreparedReference(scene, ref, clip.fps, clip.cameras["cam01"], {})
            out = pipe.generate(reference, clip.cameras["cam02"], settings=SamplingSettings(steps=4), seed=0).frames
            generated.append(psnr(out, tgt))
            copied.append(psnr(ref, tgt))
        return generated, copied

    with torch_threads(1):
        trained, copied = scores(tmp_path / "run")  # a run directory: its model/ is used
        untrained, _ = scores(tmp_path / "init")
    # Training is what makes the difference: the initial weights do far worse than copying.
    assert np.mean(untrained) < np.mean(copied) - 2.0, (untrained, copied)
    assert np.mean(trained) > np.mean(copied) + 0.5, (trained, copied)
    assert sum(g > c for g, c in zip(trained, copied)) >= HELD_OUT // 2, (trained, copied)
