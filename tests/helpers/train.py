"""Training-test inputs: small synth clips and the tiny training config the trainer tests share."""

from __future__ import annotations

from pathlib import Path


def synth_clips(factory, name="train_synth", scenes=2, views=3, size=(32, 32), frames=17, points=256) -> Path:
    """Synth clips shared by the training tests of one session (rendered once)."""
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    out = factory.getbasetemp() / name
    if not (out / f"scene_{scenes - 1:04d}" / "tracks.npz").is_file():
        settings_ = SynthSettings(views=views, frames=frames, height=size[0], width=size[1], seed=3, points=points)
        synthesize(settings_, out, scenes, overwrite=True)
    return out


#: A tiny training config (preset tiny, one thread, a checkpoint every 3 steps).
CONFIG = """
[model]
preset = "tiny"
head_iterations = 1

[data]
queries = 8

[optim]
lr = 1e-3
schedule = "cosine"
warmup_steps = 2
decay_steps = 6

[train]
batch_size = 2
threads = 1
log_every = 1
checkpoint_every = 3
keep_last = 1
"""
