"""Writing one rendered scene as a clip directory (docs/ARCHITECTURE.md, "Clip directory").

Layout::

    scene_0000/
      videos/cam01.mp4 ...      H.264 (mvt4g.io.video.write_video)
      cameras/cameras.json      native cameras, every view and frame
      depth/cam01.npz ...       "depth" float32 [T, H, W]: z-depth in metres, finite everywhere
                                (the far dome closes the scene)
      masks/cam01.npz ...       "masks" uint8 [T, H, W]: 0 = ground and dome, k + 1 = object k
      tracks.npz                exact multi-view tracks (mvt4g.tracks.format), method "synth"
      meta.json                 fps, frames, size, caption, seed, provenance, the scene description

The directory is assembled under a temporary name and renamed into place, so a failure leaves
nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvt4g.camera.rig import write_cameras_json
from mvt4g.fs.atomic import atomic_dir, write_json_atomic
from mvt4g.io.video import write_video
from mvt4g.synth.render import ViewRender
from mvt4g.synth.scene import Scene
from mvt4g.synth.tracks_gt import ExactTracks
from mvt4g.tracks.format import TrackSet, write_tracks

GENERATOR = "mvt4g synth"
TRACK_METHOD = "synth"


def _save_npz(path: Path, compressed: bool, **arrays: np.ndarray) -> None:
    # Through a file object: np.savez given a name appends ".npz" when it is missing.
    with open(path, "wb") as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def clip_meta(scene: Scene, fps: float, provenance: dict) -> dict:
    """The ``meta.json`` object of a synthetic clip."""
    from mvt4g import __version__

    legend = {"0": "ground and sky dome"}
    for k, obj in enumerate(scene.objects):
        legend[str(k + 1)] = f"{obj.texture.name_a} {obj.texture.word} {obj.shape}"
    return {
        "fps": float(fps),
        "frames": scene.frames,
        "height": scene.height,
        "width": scene.width,
        "size": [scene.height, scene.width],
        "views": scene.views,
        "reference_view": scene.views[0],
        "caption": scene.caption(),
        "focal_mm": scene.focal_mm,
        "seed": scene.seed,
        "depth": {"kind": "z", "units": "m", "background": f"far dome of radius {scene.dome_radius:g} m (finite)"},
        "masks": legend,
        "provenance": {"generator": GENERATOR, "version": __version__, **provenance},
        "scene": scene.to_dict(),
    }


def write_clip(
    path: str | Path,
    scene: Scene,
    renders: dict[str, ViewRender],
    tracks: ExactTracks,
    *,
    fps: float = 15.0,
    crf: int = 18,
    overwrite: bool = False,
    provenance: dict | None = None,
    compress_depth: bool = False,
) -> Path:
    """Write ``scene``'s clip directory at ``path`` atomically; returns ``path``.

    ``renders`` maps every view of ``scene`` to its :class:`ViewRender`. Depth is stored
    uncompressed by default (float noise compresses poorly and slowly); masks compressed.
    """
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        for sub in ("videos", "cameras", "depth", "masks"):
            (tmp / sub).mkdir()
        for view in scene.views:
            r = renders[view]
            write_video(tmp / "videos" / f"{view}.mp4", r.rgb, fps, crf=crf)
            _save_npz(tmp / "depth" / f"{view}.npz", compress_depth, depth=r.depth.astype(np.float32, copy=False))
            _save_npz(tmp / "masks" / f"{view}.npz", True, masks=r.masks.astype(np.uint8, copy=False))
        write_cameras_json(tmp / "cameras" / "cameras.json", scene.cameras)
        trackset = TrackSet(
            tracks=tracks.tracks,
            visible=tracks.visible,
            queries=tracks.queries,
            image_size=(scene.height, scene.width),
            method=TRACK_METHOD,
            views=scene.views,
        )
        write_tracks(tmp / "tracks.npz", trackset)
        write_json_atomic(tmp / "meta.json", clip_meta(scene, fps, provenance or {}))
    return path
