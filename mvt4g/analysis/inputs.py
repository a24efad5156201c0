"""Clips, view pairs and ground-truth tracks prepared for the attention analysis.

A clip is analysed at the model's video size and frame count (``config.video``): every view is
resized with :func:`~mvt4g.io.frames.resize_cover` and cut to ``4k + 1`` frames with
:func:`~mvt4g.io.frames.fit_frame_count` (longer clips keep their first frames, shorter ones
are trimmed to the largest ``4k + 1`` they hold). Ground-truth tracks (``tracks.npz``: exact
ones from ``mvt4g synth`` or pseudo ground truth from ``mvt4g tracks``) go through the same
resize and crop (:meth:`~mvt4g.io.frames.CropInfo.map_points`) and are read at the frames that
line up with latent frames (0, 4, 8, ...). Points that the crop moves outside the image count
as not visible.

Everything that can be checked without decoding video is checked in :func:`open_clip_source`,
so bad input fails before the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.errors import InputError
from mvt4g.io.clip import Clip, read_clip
from mvt4g.io.frames import CropInfo, cover_geometry, fit_frame_count, latent_frame_indices, resize_cover
from mvt4g.tracks.format import TrackSet, read_tracks


@dataclass
class ClipSource:
    """A validated clip and how it maps onto the analysed video (nothing decoded yet).

    ``frame_indices``: clip frame of each analysed video frame; ``latent_frames``: analysed
    video frames that line up with latent frames; ``crop``: clip pixels -> analysed pixels.
    """

    path: Path
    clip: Clip
    tracks: TrackSet
    crop: CropInfo
    frame_indices: np.ndarray
    latent_frames: np.ndarray

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size(self) -> tuple[int, int]:
        return self.crop.height, self.crop.width


@dataclass
class PairData:
    """One (reference, target) view pair ready for the model.

    video: float32 ``[2, 3, T, H, W]`` in ``[-1, 1]`` (view 0 reference).
    frames_rgb: uint8 ``[2, F, H, W, 3]`` at the latent frames (for pictures).
    tracks: float64 ``[2, F, N, 2]`` analysed pixels; visible: bool ``[2, F, N]``.
    track_ids: ``[N]`` indices of the chosen tracks in the clip's ``tracks.npz``.
    camera_frames: clip frame index of each latent frame (for the camera conditioning).
    """

    clip: str
    reference: str
    target: str
    video: np.ndarray
    frames_rgb: np.ndarray
    tracks: np.ndarray
    visible: np.ndarray
    track_ids: np.ndarray
    camera_frames: np.ndarray


def open_clip_source(path: str | Path, size: tuple[int, int], frames: int, temporal_factor: int) -> ClipSource:
    """Read and check a clip for the analysis: views, cameras, ``tracks.npz`` and frame counts."""
    path = Path(path)
    clip = read_clip(path)
    if len(clip.views) < 2:
        raise InputError(f"the analysis needs a clip with >= 2 views, this one has {len(clip.views)}", path=path)
    if not clip.tracks_path.is_file():
        raise InputError(
            "clip has no tracks.npz (ground truth is needed: mvt4g synth writes exact tracks, mvt4g tracks pseudo ground truth)",
            path=clip.tracks_path,
        )
    tracks = read_tracks(clip.tracks_path)
    n_views, n_frames = tracks.tracks.shape[:2]
    if n_views != len(clip.views) or n_frames != clip.frames:
        raise InputError(
            f"tracks cover {n_views} views x {n_frames} frames, the clip has {len(clip.views)} x {clip.frames}",
            path=clip.tracks_path,
        )
    # Track files may list views in another order than the clip's (sorted) names: matched by name.
    if tracks.views is not None and sorted(tracks.views) != sorted(clip.views):
        raise InputError(f"tracks name views {tracks.views}, the clip has {clip.views}", path=clip.tracks_path)
    if tuple(tracks.image_size) != (clip.height, clip.width):
        raise InputError(
            f"tracks are for {tracks.image_size[0]}x{tracks.image_size[1]} images, the videos are {clip.height}x{clip.width}",
            path=clip.tracks_path,
        )
    try:
        _, report = fit_frame_count(np.empty((clip.frames, 0)), target=frames, policy="trim", stride=temporal_factor)
    except InputError as exc:
        raise InputError(f"clip {exc}", path=path) from None
    latent = latent_frame_indices(report.output_frames, temporal_factor)
    crop = cover_geometry(clip.height, clip.width, size[0], size[1])
    return ClipSource(path, clip, tracks, crop, report.indices, latent)


def choose_pairs(views: list[str], count: int, seed: int, clip_index: int) -> list[tuple[str, str]]:
    """``count`` ordered (reference, target) pairs of distinct views, drawn without repeats.

    The draw depends only on ``(seed, clip_index)``; asking for more pairs than exist gives all
    of them (in the drawn order).
    """
    pairs = [(a, b) for a in views for b in views if a != b]
    rng = np.random.default_rng([seed, clip_index, 1])
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order[: max(1, count)]]


def visualize_point(source: ClipSource, x: float, y: float, frame: int) -> tuple[int, tuple[float, float]]:
    """A query point of the target view given in clip pixels and a clip frame -> (latent frame, analysed (x, y)).

    The video frame is matched to the nearest latent frame (latent frame ``k`` lines up with
    video frame ``tf * k``).
    """
    analysed = len(source.frame_indices)
    if not 0 <= frame < min(analysed, source.clip.frames):
        raise InputError(f"--visualize frame {frame} is outside the analysed frames 0..{analysed - 1}")
    if not (0 <= x < source.clip.width and 0 <= y < source.clip.height):
        raise InputError(f"--visualize point ({x:g}, {y:g}) is outside the {source.clip.width}x{source.clip.height} video")
    tf = int(source.latent_frames[1] - source.latent_frames[0]) if len(source.latent_frames) > 1 else 1
    latent = min(int(np.floor(frame / tf + 0.5)), len(source.latent_frames) - 1)
    xa, ya = source.crop.map_points(np.array([x, y], dtype=np.float64))
    height, width = source.size
    if not (0 <= xa < width and 0 <= ya < height):
        raise InputError(f"--visualize point ({x:g}, {y:g}) falls outside the centre crop the model sees")
    return latent, (float(xa), float(ya))


def load_pair(source: ClipSource, reference: str, target: str, max_queries: int, seed: int) -> PairData | str:
    """Decode, resize and cut both views; pick up to ``max_queries`` tracks seen in both views.

    Tracks are eligible when visible (and inside the analysed image) in at least one latent
    frame of each view, so every chosen track yields cross-view pairs. Returns the reason as a
    string when no track is eligible.
    """
    clip = source.clip
    names = list(source.tracks.views) if source.tracks.views is not None else clip.views
    view_ids = [names.index(reference), names.index(target)]
    camera_frames = source.frame_indices[source.latent_frames]
    height, width = source.size
    tracks = source.crop.map_points(source.tracks.tracks[view_ids][:, camera_frames])  # [2, F, N, 2]
    inside = (tracks[..., 0] >= 0) & (tracks[..., 0] < width) & (tracks[..., 1] >= 0) & (tracks[..., 1] < height)
    visible = source.tracks.visible[view_ids][:, camera_frames] & inside
    eligible = np.flatnonzero(visible[0].any(axis=0) & visible[1].any(axis=0))
    if len(eligible) == 0:
        return f"no track is visible in both {reference} and {target} at the latent frames"
    rng = np.random.default_rng([seed, 2])
    if len(eligible) > max_queries:
        eligible = np.sort(rng.choice(eligible, size=max_queries, replace=False))
    videos = []
    for view in (reference, target):
        frames, _ = resize_cover(clip.read_video(view), height, width)
        videos.append(frames[source.frame_indices])
    stacked = np.stack(videos)  # [2, T, H, W, 3] uint8
    video = stacked.transpose(0, 4, 1, 2, 3).astype(np.float32) / 127.5 - 1.0
    return PairData(
        clip=source.name,
        reference=reference,
        target=target,
        video=video,
        frames_rgb=stacked[:, source.latent_frames],
        tracks=tracks[:, :, eligible],
        visible=visible[:, :, eligible],
        track_ids=eligible,
        camera_frames=camera_frames,
    )
