"""Kept for imports written before model lookup moved to :mod:`mvt4g.model.lookup`."""

from mvt4g.model.lookup import RUN_MODEL_SUBDIR, resolve_model, resolve_model_dir

__all__ = ["RUN_MODEL_SUBDIR", "resolve_model", "resolve_model_dir"]
