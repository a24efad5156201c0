"""Training: `mvt4g train` and its Python API.

Modules (each usable on its own):

    config         TOML config -> typed dataclasses, ``--set`` overrides, did-you-mean errors,
                   the example configs by name (``configs/NAME.toml``: tiny, small, base, ...)
    data           (reference, target) pair samples, reversal, tracks and queries, step sampler
    cache          latent / Plücker / text-embedding cache keyed by its inputs
    builders       model config, model, dataset, train module, AdamW, LR schedule
    step           the train module: the model and its losses in one forward
    trainer        the loop: accumulation, clipping, NaN stop, signals, checkpoints, logging
    checkpointing  run directory layout, atomic train-state checkpoints, resume
    distributed    torchrun environment, DDP / FSDP2 wrapping
    logging        metrics.jsonl, TensorBoard, progress callback

Example::

    from mvt4g.train import Trainer, from_dict, load_config
    cfg = load_config("tiny")            # an example by name, a TOML path, or from_dict({"model": {...}})
    cfg.train.steps = 50
    result = Trainer(cfg).run()          # writes cfg.train.out (see checkpointing's layout)
"""

from __future__ import annotations

from mvt4g._lazy import lazy_exports

_LAZY = {
    "TrainConfig": "config",
    "load_config": "config",
    "from_dict": "config",
    "apply_overrides": "config",
    "Trainer": "trainer",
    "TrainResult": "trainer",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports("mvt4g.train", _LAZY, globals())
