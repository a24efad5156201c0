"""Training: `mvt4g train` and its Python API.

Modules (each usable on its own):

    config         TOML config -> typed dataclasses, ``--set`` overrides, did-you-mean errors
    data           (reference, target) pair samples, reversal, tracks and queries, step sampler
    cache          latent / Plücker / text-embedding cache keyed by its inputs
    builders       model config, model, dataset, train module, AdamW, LR schedule
    step           the train module: the model and its losses in one forward
    trainer        the loop: accumulation, clipping, NaN stop, signals, checkpoints, logging
    checkpointing  run directory layout, atomic train-state checkpoints, resume
    distributed    torchrun environment, DDP / FSDP2 wrapping
    logging        metrics.jsonl, TensorBoard, progress callback

Example::

    from mvt4g.train import Trainer, load_config
    cfg = load_config("examples/train_tiny.toml")
    cfg.train.steps = 50
    result = Trainer(cfg).run()          # writes cfg.train.out (see checkpointing's layout)
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "TrainConfig": "mvt4g.train.config",
    "load_config": "mvt4g.train.config",
    "apply_overrides": "mvt4g.train.config",
    "Trainer": "mvt4g.train.trainer",
    "TrainResult": "mvt4g.train.trainer",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    # Lazy: `mvt4g.train.config` must not import torch through this package.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mvt4g.train' has no attribute {name!r}")
