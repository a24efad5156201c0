"""A learned tracker as an mvt4g plug-in: CoTracker3 from a local checkout and local weights.

Copy this file and adapt it to your tracker. Nothing is downloaded: you give the weights (and,
unless ``cotracker`` is pip-installed, the checkout) through environment variables::

    export MVT4G_COTRACKER_CKPT=/models/cotracker3/scaled_offline.pth   # CoTracker3 offline weights
    export MVT4G_COTRACKER_DIR=/src/co-tracker       # a facebookresearch/co-tracker checkout (optional)
    export MVT4G_COTRACKER_DEVICE=cuda               # optional (default: cuda when available, else cpu)
    mvt4g tracks CLIP --tracker examples/tracker_plugin.py:track --queries-from CLIP/tracks.npz --out pred.npz
    mvt4g tracks score pred.npz CLIP/tracks.npz

The plug-in interface is mvt4g/tracks/plugin.py's; this file maps it onto CoTracker's:

=========================  ===============================================  ========================================
                           mvt4g (plug-in call and track file)              CoTracker (``CoTrackerPredictor``)
=========================  ===============================================  ========================================
video                      ``videos[name]``: uint8 ``[T, H, W, 3]`` RGB,     float32 ``[B=1, T, 3, H, W]``, values
                           one entry per view, clip view order              0..255 (the model normalises), one view
cameras                    ``cameras[name]``: K ``[T,3,3]``, c2w ``[T,4,4]``   not used (a single-view 2-D tracker)
query                      ``queries[n] = (view, frame, x, y)`` float32     ``[1, M, 3] = (frame, x, y)`` per view
pixel convention           pixel (u, v) covers [u, u+1): its centre is       centre of pixel (u, v) is (u, v)
                           (u + 0.5, v + 0.5)                               (its resize uses align_corners=True)
output tracks              float32 ``[V, T, N, 2]`` (x, y), mvt4g pixels     ``[1, T, M, 2]`` (x, y), CoTracker pixels
output visibility          bool ``[V, T, N]``: in the image, not occluded   bool ``[1, T, M]`` (confidence-thresholded)
=========================  ===============================================  ========================================

So a query's x and y lose 0.5 on the way in and the tracks gain 0.5 on the way out; frames are
the same integers. ``backward_tracking=True`` makes CoTracker fill the frames before a query's
frame too (``--query-frames all`` puts queries on every frame).

Cross-view association. Track n must be the same physical point in every view, but CoTracker
tracks within one video: it cannot say where a point asked in cam01 appears in cam02. This file
does not guess. For every view w and track n it needs a *seed*, a frame and a position where
point n is seen in view w; CoTracker then tracks the seed through view w's video:

- in the query's own view the seed is the query itself (always there);
- in the other views seeds come from ``associate_views`` below, which is where your own
  multi-view method goes (MV-TAP, a feature matcher with an epipolar check from ``cameras``, a
  depth map projected with ``cameras``, ...). As shipped it finds nothing, so every track is
  visible only in the view it was asked in and marked not visible in every other view: its
  ``temporal`` scores are CoTracker's, its ``cross_view`` scores measure no association at all.

A point that cannot be associated is not visible, never guessed: its coordinates are NaN in
memory (the track file stores 0; the visibility flag says they mean nothing).

The seam: :func:`track_views` holds every mapping and takes the tracker as a callable with
CoTracker's signature, ``cotracker(video [1,T,3,H,W] float, queries [1,M,3] (t,x,y)) ->
(tracks [1,T,M,2], visibility [1,T,M])``. :func:`track` (the plug-in) passes the real model,
loaded once on first use; the tests (tests/tracks/test_plugin_example.py) pass stand-ins with
the same signature. Errors: a missing environment variable, package or checkpoint raises
:class:`TrackerUnavailable` naming what to set; a tracker output of the wrong shape raises
``ValueError``. Raised inside the plug-in call, either is one line from the CLI (exit 1); the
weights are only loaded when a clip is tracked, so a run whose clips are all current never loads
them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ENV_CKPT = "MVT4G_COTRACKER_CKPT"
ENV_DIR = "MVT4G_COTRACKER_DIR"
ENV_DEVICE = "MVT4G_COTRACKER_DEVICE"

#: ``associate(videos, cameras, queries) -> (frames int [V, N], xy float [V, N, 2], found bool [V, N])``:
#: for view w and track n, a frame and an (x, y) in mvt4g pixels where point n is seen in view w.
Associate = Callable[[dict, dict, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class TrackerUnavailable(RuntimeError):
    """The learned tracker's package or weights are not there (the message says what to set)."""


# ---- the plug-in: `--tracker examples/tracker_plugin.py:track` --------------------------------

_MODEL: Callable | None = None


def track(videos: dict[str, np.ndarray], cameras: dict, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plug-in (mvt4g/tracks/plugin.py): CoTracker3 per view, seeds from :func:`associate_views`."""
    global _MODEL
    if _MODEL is None:
        _MODEL = load_cotracker()
    return track_views(_MODEL, videos, cameras, queries, associate=associate_views)


def associate_views(videos: dict[str, np.ndarray], cameras: dict, queries: np.ndarray):
    """Where each query's point is seen in the other views: put your multi-view method here.

    Returns ``(frames, xy, found)``: int ``[V, N]``, float ``[V, N, 2]`` (mvt4g pixels, centres at
    +0.5), bool ``[V, N]``. ``found[w, n]`` False means "not associated": track n is then not
    visible anywhere in view w. Entries of the query's own view are ignored (the query is its seed).
    For example with MV-TAP: run it on the views with ``queries`` and, for every other view,
    take its prediction at the query frame where it says the point is visible.

    As shipped: nothing is associated (honest, and cross-view scores are then meaningless).
    """
    V, N = len(videos), len(queries)
    return np.zeros((V, N), np.int64), np.zeros((V, N, 2), np.float32), np.zeros((V, N), bool)


def load_cotracker() -> Callable:
    """The local CoTracker3 as ``cotracker(video, queries) -> (tracks, visibility)``; never downloads.

    ``MVT4G_COTRACKER_CKPT``: the checkpoint file (required; CoTracker3 offline, ``scaled_offline.pth``).
    ``MVT4G_COTRACKER_DIR``: a co-tracker checkout put first on ``sys.path`` (optional when the
    ``cotracker`` package is installed). ``MVT4G_COTRACKER_DEVICE``: torch device (optional).
    """
    ckpt = os.environ.get(ENV_CKPT, "").strip()
    if not ckpt:
        raise TrackerUnavailable(
            f"set {ENV_CKPT} to a local CoTracker3 checkpoint (e.g. scaled_offline.pth); weights are never downloaded"
        )
    if not Path(ckpt).is_file():
        raise TrackerUnavailable(f"{ENV_CKPT}={ckpt} is not a file")
    checkout = os.environ.get(ENV_DIR, "").strip()
    if checkout:
        if not (Path(checkout) / "cotracker").is_dir():
            raise TrackerUnavailable(f"{ENV_DIR}={checkout} is not a co-tracker checkout (no cotracker/ folder in it)")
        if checkout not in sys.path:
            sys.path.insert(0, checkout)
    try:
        from cotracker.predictor import CoTrackerPredictor
    except ImportError as exc:
        raise TrackerUnavailable(
            f"cannot import cotracker ({exc}); set {ENV_DIR} to a co-tracker checkout or pip install it"
        ) from None

    import torch

    device = os.environ.get(ENV_DEVICE, "").strip() or ("cuda" if torch.cuda.is_available() else "cpu")
    model = CoTrackerPredictor(checkpoint=ckpt).to(device)  # CoTracker3 offline defaults (window 60)

    def cotracker(video, queries):
        with torch.no_grad():
            return model(video.to(device), queries=queries.to(device), backward_tracking=True)

    return cotracker


# ---- the seam: every mapping between mvt4g and the tracker ------------------------------------


def track_views(
    cotracker: Callable,
    videos: dict[str, np.ndarray],
    cameras: dict,
    queries: np.ndarray,
    associate: Associate | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Track every view with a single-view tracker; returns mvt4g's ``(tracks [V,T,N,2], visible [V,T,N])``.

    ``cotracker(video [1,T,3,H,W] float32 0..255, queries [1,M,3] (t, x, y) CoTracker pixels) ->
    (tracks [1,T,M,2], visibility [1,T,M])`` (torch tensors, or anything ``np.asarray`` takes).
    ``associate`` gives the seeds in the views other than a query's own (see the module
    docstring); None associates nothing.
    """
    import torch

    names = list(videos)  # clip view order: view index i of a query is names[i]
    V, N = len(names), len(queries)
    T, H, W = videos[names[0]].shape[:3]
    q = np.asarray(queries, np.float64)
    q_view, q_frame = q[:, 0].astype(np.int64), q[:, 1].astype(np.int64)

    # Seeds (mvt4g pixels): the query in its own view, the association elsewhere.
    seed_frame = np.zeros((V, N), np.int64)
    seed_xy = np.zeros((V, N, 2), np.float64)
    seeded = np.zeros((V, N), bool)
    if associate is not None:
        a_frame, a_xy, a_found = (np.asarray(x) for x in associate(videos, cameras, np.array(queries, copy=True)))
        if a_frame.shape != (V, N) or a_xy.shape != (V, N, 2) or a_found.shape != (V, N):
            raise ValueError(
                f"associate returned shapes {list(a_frame.shape)}, {list(a_xy.shape)}, {list(a_found.shape)}; "
                f"expected {[V, N]}, {[V, N, 2]}, {[V, N]} (frames, xy, found)"
            )
        found = a_found.astype(bool) & np.isfinite(a_xy).all(-1) & (a_frame >= 0) & (a_frame < T)
        seed_frame[found], seed_xy[found], seeded[found] = a_frame[found], a_xy[found], True
    own = (q_view, np.arange(N))
    seed_frame[own], seed_xy[own], seeded[own] = q_frame, q[:, 2:4], True

    tracks = np.full((V, T, N, 2), np.nan, np.float32)  # not associated: no coordinates at all
    visible = np.zeros((V, T, N), bool)  # ... and not visible
    for w, name in enumerate(names):
        idx = np.flatnonzero(seeded[w])
        if idx.size == 0:
            continue
        frames = videos[name]
        if frames.shape != (T, H, W, 3) or frames.dtype != np.uint8:
            raise ValueError(f"view {name}: frames {frames.dtype} {list(frames.shape)}, expected uint8 {[T, H, W, 3]}")
        # mvt4g [T, H, W, 3] uint8 -> CoTracker [1, T, 3, H, W] float 0..255.
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None].float()
        # (frame, x, y) with pixel centres at +0.5 -> CoTracker's (t, x, y) with centres at integers.
        cq = np.concatenate([seed_frame[w, idx, None], seed_xy[w, idx] - 0.5], axis=1)
        out = cotracker(video, torch.from_numpy(cq.astype(np.float32))[None])
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError(f"view {name}: the tracker must return (tracks, visibility), got {type(out).__name__}")
        t_out, v_out = (np.asarray(x.detach().cpu() if hasattr(x, "detach") else x) for x in out)
        M = idx.size
        if t_out.shape != (1, T, M, 2):
            raise ValueError(
                f"view {name}: the tracker returned tracks of shape {list(t_out.shape)}, expected {[1, T, M, 2]} (B, T, N, 2)"
            )
        if v_out.shape != (1, T, M):
            raise ValueError(
                f"view {name}: the tracker returned visibility of shape {list(v_out.shape)}, expected {[1, T, M]} (B, T, N)"
            )
        xy = t_out[0].astype(np.float32) + np.float32(0.5)  # CoTracker pixels -> mvt4g pixels
        vis = v_out[0] > 0.5 if v_out.dtype.kind == "f" else v_out[0].astype(bool)  # CoTracker: bool already
        vis &= np.isfinite(xy).all(-1)  # no position, not visible
        tracks[w][:, idx] = xy
        visible[w][:, idx] = vis
    return tracks, visible
