"""Drawing tracks over their videos: coloured trails, views side by side.

Each track gets a colour from where its query sits in its image (hue from x, brightness from y),
so neighbouring points look alike and the same point has the same colour in every view. At
frame t a view shows, for every track visible there, a dot at its position and a trail through
its positions over the previous ``trail`` frames (segments only between consecutive visible
positions). The query view's query point is drawn with a white ring.

:func:`write_overlay` is what ``mvt4g tracks show`` does: check a clip's track file against the
clip, draw it and write the video.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mvt4g.errors import InputError
from mvt4g.fs.atomic import check_output_path
from mvt4g.io.clip import read_clip
from mvt4g.io.video import write_video
from mvt4g.tracks.format import TrackSet, check_fits_clip, read_tracks


def track_colours(trackset: TrackSet) -> np.ndarray:
    """RGB uint8 ``[N, 3]`` per track from its query position."""
    h, w = trackset.image_size
    q = trackset.queries
    hue = np.clip(q[:, 2] / w, 0, 1) * 170.0  # OpenCV hue runs 0..180; stop short of wrapping to red again
    val = 155 + np.clip(q[:, 3] / h, 0, 1) * 100.0
    hsv = np.stack([hue, np.full_like(hue, 230.0), val], axis=-1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def select_tracks(trackset: TrackSet, max_tracks: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_tracks`` tracks, spread evenly over the queries (deterministic)."""
    n = trackset.num_tracks
    if n <= max_tracks:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_tracks).round().astype(np.int64))


def draw_overlay(
    frames: list[np.ndarray], trackset: TrackSet, *, trail: int = 8, max_tracks: int = 300, radius: int | None = None
) -> np.ndarray:
    """Overlay video uint8 ``[T, H, V * W, 3]`` (views left to right) from per-view frames ``[T, H, W, 3]``."""
    V, T = trackset.num_views, trackset.num_frames
    H, W = trackset.image_size
    idx = select_tracks(trackset, max_tracks)
    colours = track_colours(trackset)[idx].astype(int)
    tracks = trackset.tracks[:, :, idx]
    visible = trackset.visible[:, :, idx]
    qv, qt = trackset.query_views[idx], trackset.query_frames[idx]
    r = radius if radius is not None else max(1, round(min(H, W) / 120))
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    scale = 1 << shift
    out = np.empty((T, H, V * W, 3), np.uint8)
    for t in range(T):
        panels = []
        for v in range(V):
            img = np.ascontiguousarray(frames[v][t]).copy()
            # Positions are pixel coordinates with centres at +0.5; OpenCV draws with centres at integers.
            pts = np.round((tracks[v] - 0.5) * scale).astype(np.int64)
            for n in np.flatnonzero(visible[v, t]):
                colour = tuple(int(c) for c in colours[n])
                for s in range(max(0, t - trail), t):
                    if visible[v, s, n] and visible[v, s + 1, n]:
                        cv2.line(img, tuple(pts[s, n]), tuple(pts[s + 1, n]), colour, 1, cv2.LINE_AA, shift)
                cv2.circle(img, tuple(pts[t, n]), r * scale, colour, -1, cv2.LINE_AA, shift)
                if qv[n] == v and qt[n] == t:
                    cv2.circle(img, tuple(pts[t, n]), (r + 1) * scale, (255, 255, 255), 1, cv2.LINE_AA, shift)
            panels.append(img)
        out[t] = np.concatenate(panels, axis=1)
    return out


def write_overlay(
    clip_dir: str | Path,
    out: str | Path,
    *,
    tracks: str | Path | None = None,
    trail: int = 8,
    max_tracks: int = 300,
    overwrite: bool = False,
) -> dict:
    """Draw a clip's tracks over its videos (:func:`draw_overlay`) and write them to ``out`` (.mp4).

    ``tracks`` defaults to the clip's ``tracks.npz``; it must be for the clip's views, frames and
    image size, and ``out`` must be an ``.mp4`` that does not exist unless ``overwrite``: both are
    checked before any drawing (:class:`InputError`, :class:`~mvt4g.errors.OutputExistsError`).
    Returns the JSON-ready ``out``, ``tracks``, ``frames``, ``height``, ``width`` (of the
    overlay) and ``views``.
    """
    clip = read_clip(clip_dir)
    track_path = Path(tracks) if tracks is not None else clip.tracks_path
    trackset = read_tracks(track_path)
    check_fits_clip(trackset, clip, track_path)
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError("overlay output must be an .mp4 file", path=out)
    check_output_path(out, overwrite=overwrite)
    frames = [clip.read_video(v) for v in clip.views]
    video = draw_overlay(frames, trackset, trail=trail, max_tracks=max_tracks)
    write_video(out, video, clip.fps, pad_to_even=True, overwrite=overwrite)
    return {"out": str(out), "tracks": str(track_path), "frames": int(video.shape[0]),
            "height": int(video.shape[1]), "width": int(video.shape[2]), "views": trackset.num_views}  # fmt: skip
