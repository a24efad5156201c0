"""Procedural multi-view dynamic scenes with exact ground truth (``mvt4g synth``).

    >>> from mvt4g.synth import SynthSettings, build_scene
    >>> scene, renders, tracks = build_scene(SynthSettings(views=2, frames=5, height=48, width=80), 0)
    >>> renders["cam01"].rgb.shape, tracks.tracks.shape
    ((5, 48, 80, 3), (2, 5, 2048, 2))

Modules: ``scene`` (the description), ``sampling`` (random scenes), ``textures``, ``raycast``
(vectorised intersections), ``render`` (colour, depth, masks), ``tracks_gt`` (exact tracks),
``writer`` (clip directories), ``pipeline`` (many scenes, workers), ``naive`` (a slow
per-pixel reference renderer for tests and benchmarks).
"""

from mvt4g.synth.pipeline import SynthSettings, build_scene, synthesize, synthesize_one
from mvt4g.synth.render import ViewRender, render_scene, render_view
from mvt4g.synth.sampling import sample_scene
from mvt4g.synth.scene import Motion, Scene, SceneObject
from mvt4g.synth.textures import Texture
from mvt4g.synth.tracks_gt import (
    ExactTracks,
    exact_tracks,
    sample_queries,
    track_queries,
)
from mvt4g.synth.writer import write_clip

__all__ = [
    "ExactTracks",
    "Motion",
    "Scene",
    "SceneObject",
    "SynthSettings",
    "Texture",
    "ViewRender",
    "build_scene",
    "exact_tracks",
    "render_scene",
    "render_view",
    "sample_queries",
    "sample_scene",
    "synthesize",
    "synthesize_one",
    "track_queries",
    "write_clip",
]
