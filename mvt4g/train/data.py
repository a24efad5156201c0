"""Training samples: random (reference, target) view pairs of one scene, with their tracks.

Sample ``i`` (a global index over the whole run) is a pure function of ``(seed, i)``:

* scene: epoch ``e = i // S`` visits the ``S`` clips in a permutation drawn from
  ``(seed, e)``; sample ``i`` takes position ``i % S`` of it;
* pair: two distinct views drawn from ``(seed, i)`` (``pairs="all"``: any ordered pair;
  ``"from_reference"``: the clip's first view is the reference);
* temporal reversal (paper App. B.4) with probability ``reverse_prob``: the frame window,
  cameras and tracks are all reversed, so the sample is a valid clip played backwards;
* query points and the diffusion noise and timestep, from the same seed.

So every process of a distributed run, every resumed run and every DataLoader worker gets
the same sample for the same index; the data position of a run is just its step.

Per sample (V = 2 views, view 0 the reference; F latent frames; N = ``queries``)::

    reference, target  [C, F, h, w]      normalised latents (FeatureCache)
    plucker            [2, F, 6, H, W]   ray maps relative to the reference's first frame
                                         (``plucker`` camera mode)
    camera_pose        [F, 12]           ReCamMaster's relative target poses, 3x4 row-major
                                         (``recammaster`` camera mode; see FeatureCache.camera_pose)
    noise              [C, F, h, w]      eps of the rectified flow
    sigma, timestep, weight  []          the drawn table entry (``RectifiedFlow.sample``)
    queries            [N, 4]            (view, LATENT frame, x, y) pixels at the model size
    tracks             [2, F, N, 2]      each query's track at the latent frames, pixels
    visible            [2, F, N]         visible there (and inside the resized frame)
    text               [L, text_dim]     only with a text encoder

Tracks: the clip's ``tracks.npz`` restricted to the pair's two views, to the window's latent
frames (pixel frames 0, tf, 2 tf, ... of the window) and mapped to the resized, centre-cropped
frames (``CropInfo.map_points``); a point outside the crop is not visible. Queries are
sampled over all latent frames of both views (paper Sec. 5.2): distinct tracks that are
visible somewhere in the pair (drawn with replacement only when there are fewer than N),
each queried at one of its visible (view, frame) entries chosen uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mvt4g.errors import ConfigError, InputError
from mvt4g.io.clip import Clip, find_clips, read_clip
from mvt4g.model.flow_matching import RectifiedFlow
from mvt4g.train.cache import FeatureCache, crop_info, frame_window

# Stream tags so the scene permutation, the pair draw and the noise never share a stream.
_SCENES, _PAIR, _NOISE = 1, 2, 3


def find_clip_dirs(paths: list[str | Path]) -> list[Path]:
    """Clip directories named by ``paths``: each is a clip (has ``videos/``) or a dataset folder
    with clips anywhere below it (MultiCamVideo's ``train/``: ``f24_aperture5/scene1/...``)."""
    if not paths:
        raise InputError("no training data: pass --data DIR or set data.paths in the config")
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise InputError("data directory does not exist", path=path)
        found.extend(find_clips(path))
    return found


@dataclass(frozen=True)
class PairSettings:
    """How samples are drawn (see the module docstring)."""

    queries: int = 64
    reverse_prob: float = 0.5
    pairs: str = "all"
    seed: int = 0
    need_tracks: bool = True


@dataclass(frozen=True)
class SampleSpec:
    """What sample ``index`` is made of, before any file is read."""

    index: int
    clip: int
    reference: str
    target: str
    reverse: bool


def sample_seed(seed: int, index: int, stream: int) -> int:
    """A 63-bit seed for ``(seed, stream, index)`` (numpy's SeedSequence mixing)."""
    words = np.random.SeedSequence([seed, stream, index]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


def pair_tracks(tracks_xy: np.ndarray, visible: np.ndarray, clip: Clip, track_size: tuple[int, int],
                view_index: tuple[int, int], window: np.ndarray, latent_indices: np.ndarray,
                crop) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A track file's tracks for one pair at the model's latent frames and pixel size.

    tracks_xy [V, T, N, 2] pixels of an image of ``track_size`` = (H, W); visible [V, T, N].
    Returns (tracks [2, F, N, 2] float32, visible [2, F, N] bool).
    """
    frames = window[latent_indices]
    xy = tracks_xy[list(view_index)][:, frames].astype(np.float64)
    vis = visible[list(view_index)][:, frames].astype(bool)
    # Tracks may be stored for another size than the video's: scale them onto the video first.
    xy = xy * np.array([clip.width / track_size[1], clip.height / track_size[0]])
    xy = crop.map_points(xy)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < crop.width) & (xy[..., 1] >= 0) & (xy[..., 1] < crop.height)
    vis = vis & inside & np.isfinite(xy).all(-1)
    xy = np.where(vis[..., None], xy, 0.0)
    return xy.astype(np.float32), vis


def sample_queries(tracks: np.ndarray, visible: np.ndarray, count: int, rng: np.random.Generator,
                   image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``count`` query points over all frames of both views.

    tracks [V, F, N, 2], visible [V, F, N]. Returns (queries [count, 4] = (view, frame, x, y),
    tracks [V, F, count, 2], visible [V, F, count]). With no visible track at all, the queries
    sit at the image centre of view 0, frame 0 and every entry is invisible (only L_vis sees them).
    """
    V, F, N = visible.shape
    seen = visible.reshape(V * F, N).any(axis=0) if N else np.zeros(0, bool)
    candidates = np.flatnonzero(seen)
    if candidates.size == 0:
        queries = np.zeros((count, 4), np.float32)
        queries[:, 2], queries[:, 3] = image_size[1] / 2, image_size[0] / 2
        return queries, np.zeros((V, F, count, 2), np.float32), np.zeros((V, F, count), bool)
    chosen = rng.choice(candidates, size=count, replace=candidates.size < count)
    flat_vis = visible[:, :, chosen].reshape(V * F, count).T  # [count, V*F]
    # A uniform choice among each track's visible entries: the largest of uniform draws.
    pick = np.argmax(np.where(flat_vis, rng.random(flat_vis.shape), -1.0), axis=1)
    view, frame = pick // F, pick % F
    xy = tracks[view, frame, chosen]
    queries = np.stack([view, frame, xy[:, 0], xy[:, 1]], axis=1).astype(np.float32)
    return queries, tracks[:, :, chosen], visible[:, :, chosen]


class PairDataset(Dataset):
    """Map-style dataset over global sample indices (any non-negative int; see the module docstring)."""

    def __init__(self, clips: list[Clip], cache: FeatureCache, settings: PairSettings, flow: RectifiedFlow):
        if not clips:
            raise InputError("no training clips")
        self.clips = clips
        self.cache = cache
        self.settings = settings
        self.flow = flow
        self._tracks: dict[int, tuple] = {}
        for clip in clips:
            if len(clip.views) < 2:
                raise InputError(f"a training clip needs at least 2 views, this one has {len(clip.views)}", path=clip.root)
            frame_window(clip, cache.shape.frames, False)
            if settings.need_tracks and not clip.tracks_path.is_file():
                raise InputError(
                    "clip has no tracks.npz, which the tracking head and L_corr need "
                    "(make them with `mvt4g tracks`, or train with --no-track-head --no-corr-loss)",
                    path=clip.root,
                )
        if settings.need_tracks:  # read and check every track file now: a bad one fails before the run starts
            for clip_id in range(len(clips)):
                self._trackset(clip_id)

    def __len__(self) -> int:
        return len(self.clips)

    def pairs_of(self, clip: Clip) -> list[tuple[str, str]]:
        views = clip.views
        if self.settings.pairs == "from_reference":
            return [(views[0], v) for v in views[1:]]
        return [(a, b) for a in views for b in views if a != b]

    def describe(self, index: int) -> SampleSpec:
        s = self.settings
        epoch, position = divmod(int(index), len(self.clips))
        order = np.random.default_rng([s.seed, _SCENES, epoch]).permutation(len(self.clips))
        clip_id = int(order[position])
        rng = np.random.default_rng([s.seed, _PAIR, int(index)])
        pairs = self.pairs_of(self.clips[clip_id])
        reference, target = pairs[int(rng.integers(len(pairs)))]
        reverse = bool(rng.random() < s.reverse_prob)
        return SampleSpec(int(index), clip_id, reference, target, reverse)

    def _trackset(self, clip_id: int):
        if clip_id not in self._tracks:
            from mvt4g.tracks.format import read_tracks

            clip = self.clips[clip_id]
            ts = read_tracks(clip.tracks_path)
            if ts.num_frames != clip.frames:
                raise InputError(f"tracks have {ts.num_frames} frames, the videos {clip.frames}", path=clip.tracks_path)
            names = ts.views if ts.views is not None else clip.views
            if ts.views is None and ts.num_views != len(clip.views):
                raise InputError(f"tracks have {ts.num_views} views, the clip {len(clip.views)}", path=clip.tracks_path)
            missing = sorted(set(clip.views) - set(names))
            if missing:
                raise InputError(f"tracks lack view(s) {', '.join(missing)}", path=clip.tracks_path)
            self._tracks[clip_id] = (ts.tracks, ts.visible, ts.image_size, {n: i for i, n in enumerate(names)})
        return self._tracks[clip_id]

    def __getitem__(self, index: int) -> dict:
        spec = self.describe(index)
        clip = self.clips[spec.clip]
        shape, s = self.cache.shape, self.settings
        item: dict = {
            "index": torch.tensor(spec.index),
            "reference": self.cache.latents(clip, spec.reference, spec.reverse),
            "target": self.cache.latents(clip, spec.target, spec.reverse),
            **self.cache.camera_inputs(clip, spec.reference, spec.target, spec.reverse),
        }
        text = self.cache.text(clip)
        if text is not None:
            item["text"] = text
        gen = torch.Generator().manual_seed(sample_seed(s.seed, spec.index, _NOISE))
        draw = self.flow.sample(1, generator=gen)
        item.update(sigma=draw["sigma"][0], timestep=draw["timestep"][0], weight=draw["weight"][0])
        item["noise"] = torch.randn(item["target"].shape, generator=gen)
        if s.need_tracks:
            xy, vis, size, names = self._trackset(spec.clip)
            window = frame_window(clip, shape.frames, spec.reverse)
            tracks, visible = pair_tracks(xy, vis, clip, size, (names[spec.reference], names[spec.target]),
                                          window, shape.latent_indices, crop_info(clip, shape))  # fmt: skip
            rng = np.random.default_rng([s.seed, _PAIR, spec.index, 1])
            queries, tracks, visible = sample_queries(tracks, visible, s.queries, rng, (shape.height, shape.width))
            item.update(queries=torch.from_numpy(queries), tracks=torch.from_numpy(np.ascontiguousarray(tracks)),
                        visible=torch.from_numpy(np.ascontiguousarray(visible)))  # fmt: skip
        return item


def collate(items: list[dict]) -> dict:
    """Stack per-sample tensors along a new batch axis (every item has the same keys)."""
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


class StepBatchSampler(Sampler):
    """The global sample indices each micro-batch of THIS process reads, from ``start_step`` on.

    Optimizer step ``s``, accumulation step ``a``, rank ``r`` read the ``local`` indices
    starting at ``s*B + a*(B/A) + r*local`` with ``local = B / (A * world)``: the ranks of one
    micro-step split its ``B/A`` samples, so the global batch does not depend on the number
    of processes (what makes a 2-process run match a 1-process one).
    """

    def __init__(self, batch_size: int, accumulate: int, world_size: int, rank: int, start_step: int, total_steps: int):
        per_micro, rem = divmod(batch_size, accumulate)
        local, rem2 = divmod(per_micro, world_size)
        if rem or rem2 or local < 1:
            raise ConfigError(
                f"train.batch_size ({batch_size}) must be a multiple of train.accumulate ({accumulate}) x processes "
                f"({world_size})"
            )
        self.batch_size, self.accumulate, self.world_size, self.rank = batch_size, accumulate, world_size, rank
        self.local = local
        self.start_step, self.total_steps = start_step, total_steps

    def indices(self, step: int, micro: int) -> list[int]:
        base = step * self.batch_size + micro * (self.batch_size // self.accumulate) + self.rank * self.local
        return list(range(base, base + self.local))

    def __iter__(self):
        for step in range(self.start_step, self.total_steps):
            for micro in range(self.accumulate):
                yield self.indices(step, micro)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step) * self.accumulate


def open_clips(paths: list[str | Path]) -> list[Clip]:
    """Read and validate every clip under ``paths`` (see :func:`find_clip_dirs`)."""
    return [read_clip(p) for p in find_clip_dirs(paths)]
