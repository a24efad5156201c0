"""Temporal tracks in one view: optical flow chained frame to frame, forward and backward in time.

A point is carried frame to frame by the view's flow sampled at its position
(:func:`mvt4g.tracks.flow.optical_flow.flow_step`), both ways from its start frame. From the
first step that fails the forward-backward check on, the track is marked not visible for the
rest of that direction: a chained position after an occlusion would follow the occluder, so it
is kept (for drawing) but never claimed visible.

Re-acquisition (``direct_stride``): a lost chain whose start frame s is one of the frames the
caller names (``direct_starts``: the flow method's key frames) is looked for again every
``direct_stride`` frames by flow computed straight from s to that frame (and back, for the same
check). A point hidden for a while, or a chain broken by one bad step (aliased texture at small
sizes), is found again without the drift of the steps in between; the chain goes on from there.
Direct flows are computed only when some chain is lost, so clean videos cost nothing extra.
"""

from __future__ import annotations

import numpy as np

from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.optical_flow import ViewFlows, flow_step


def chain_tracks(
    flows: ViewFlows,
    start_frames: np.ndarray,
    start_xy: np.ndarray,
    config: FlowConfig | None = None,
    start_ok: np.ndarray | None = None,
    direct_starts: set[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Chain flow from each point's start frame forward and backward in time.

    Args:
        flows: the view's consecutive-frame flows (T frames).
        start_frames: int ``[N]``; start_xy: float ``[N, 2]`` pixel (x, y) at the start frame.
        start_ok: bool ``[N]``; points with False are not visible anywhere (default all True).
        direct_starts: start frames from which lost chains are looked for again by direct flow
            (module docstring; needs ``flows`` from :func:`~mvt4g.tracks.flow.optical_flow.view_flows`
            with ``direct_stride`` > 0).

    Returns:
        positions float64 ``[T, N, 2]`` and ok bool ``[T, N]`` (visible: every step from the
        start frame, or from the last re-acquisition, to t passed the forward-backward check).
    """
    config = config or FlowConfig()
    T = flows.num_frames
    start_frames = np.asarray(start_frames, np.int64)
    N = len(start_frames)
    path = np.zeros((T, N, 2))
    ok = np.zeros((T, N), bool)
    alive0 = np.ones(N, bool) if start_ok is None else np.asarray(start_ok, bool).copy()
    n_idx = np.arange(N)
    path[start_frames, n_idx] = start_xy
    ok[start_frames, n_idx] = alive0
    for direction in (1, -1):
        _chain_one_way(flows, direction, start_frames, start_xy, alive0, config, direct_starts, path, ok)
    return path, ok


def _chain_one_way(
    flows: ViewFlows,
    direction: int,
    start_frames: np.ndarray,
    start_xy: np.ndarray,
    alive0: np.ndarray,
    config: FlowConfig,
    direct_starts: set[int] | None,
    path: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Carry the points one way in time (``direction`` 1: forward, -1: backward), writing ``path`` and ``ok``.

    A point joins at its start frame and is carried to ``t + direction`` at every step: forward
    by ``forward[t]`` (checked with ``backward[t]``), backward by ``backward[t - 1]`` (checked
    with ``forward[t - 1]``).
    """
    T, N = flows.num_frames, len(start_frames)
    pos = np.zeros((N, 2))
    alive = np.zeros(N, bool)
    active = np.zeros(N, bool)
    upper = [flows.forward.shape[2] - 1e-3, flows.forward.shape[1] - 1e-3]
    for t in range(T - 1) if direction > 0 else range(T - 1, 0, -1):
        joining = start_frames == t
        pos[joining] = start_xy[joining]
        alive[joining] = alive0[joining]
        active |= joining
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            continue
        if direction > 0:
            there, back = flows.forward[t], flows.backward[t]
        else:
            there, back = flows.backward[t - 1], flows.forward[t - 1]
        new, good = flow_step(there, back, pos[idx], config)
        pos[idx] = np.clip(new, 0.0, upper)
        alive[idx] &= good
        _reacquire(flows, t + direction, idx, start_frames, start_xy, alive0, pos, alive, config, direct_starts)
        path[t + direction, idx] = pos[idx]
        ok[t + direction, idx] = alive[idx]


def _reacquire(flows, t, idx, start_frames, start_xy, alive0, pos, alive, config, direct_starts) -> None:
    """Lost chains (``idx`` with ``alive`` False) whose start frame s is in ``direct_starts`` pick their
    point up again at frame t (every ``direct_stride`` frames from s) where the flow straight from
    s to t passes the forward-backward check: a point hidden for a while, or a chain broken by
    one bad step, is found again without the drift of the steps in between. Updates ``pos``/``alive``."""
    stride = config.direct_stride
    if not direct_starts or stride <= 0:
        return
    lost = idx[~alive[idx] & alive0[idx]]
    for s in np.unique(start_frames[lost]):
        if int(s) not in direct_starts or abs(t - int(s)) % stride:
            continue
        pair = flows.direct(int(s), t)
        if pair is None:
            return
        sel = lost[start_frames[lost] == s]
        found, good = flow_step(pair[0], pair[1], start_xy[sel], config)
        pos[sel[good]] = found[good]
        alive[sel[good]] = True
