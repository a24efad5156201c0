"""Depths borrowed from triangulated neighbours (mvt4g.tracks.flow.neighbour_depths) and their use in dynamic_points."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.camera import Intrinsics, ViewCameras, look_at
from mvt4g.tracks.flow.dynamic_points import dynamic_points, project_per_frame
from mvt4g.tracks.flow.neighbour_depths import neighbour_depths


def _naive(xy, views, z, solved, radius, agree_px):
    """Point by point, frame by frame: the median depth of the solved same-view points near it that moved alike."""
    T, N = solved.shape
    out, known = z.copy(), solved.copy()
    for t in range(T):
        other = t - 1 if t > 0 else min(t + 1, T - 1)
        for n in range(N):
            if solved[t, n]:
                continue
            depths = []
            for m in range(N):
                if m == n or views[m] != views[n] or not solved[t, m]:
                    continue
                close = np.hypot(*(xy[t, m] - xy[t, n])) <= radius
                step_n, step_m = xy[t, n] - xy[other, n], xy[t, m] - xy[other, m]
                if close and np.hypot(*(step_n - step_m)) <= agree_px:
                    depths.append(z[t, m])
            if depths:
                out[t, n], known[t, n] = float(np.median(depths)), True
    return out, known


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 5), N=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_neighbour_depths_match_a_point_by_point_walk(T, N, seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 30, (T, N, 2))
    xy[1:] = xy[:1] + rng.choice([0.0, 0.3, 3.0], (N, 1)) * np.arange(1, T)[:, None, None]  # a few shared motions
    views = rng.integers(0, 2, N)
    z = rng.uniform(1, 10, (T, N))
    solved = rng.random((T, N)) < 0.5
    got, known = neighbour_depths(xy, views, z, solved, 12.0, 0.7)
    want, want_known = _naive(xy, views, z, solved, 12.0, 0.7)
    np.testing.assert_array_equal(known, want_known)
    np.testing.assert_allclose(got[known], want[known], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[~known], z[~known])


def test_a_neighbour_on_another_object_lends_no_depth():
    """Near in the image but moving otherwise (across an object's edge): not a source."""
    T = 3
    xy = np.zeros((T, 3, 2))
    xy[:, 0] = [[10, 10], [12, 10], [14, 10]]  # target: moves 2 px a frame
    xy[:, 1] = [[13, 10], [15, 10], [17, 10]]  # same motion, 3 px away: a source
    xy[:, 2] = [[11, 12], [11, 12], [11, 12]]  # still (the background behind), 2 px away: not one
    z = np.array([[0.0, 5.0, 40.0]] * T)
    solved = np.array([[False, True, True]] * T)
    got, known = neighbour_depths(xy, np.zeros(3, int), z, solved, 12.0, 0.7)
    assert known[:, 0].all()
    np.testing.assert_allclose(got[:, 0], 5.0)


def _rig(T: int = 5):
    """A still query camera and three moving ones around a small object sliding sideways: its two
    points lie at the same depth in the query camera, the first seen by every view, the second by
    the query view only."""
    K = Intrinsics.from_fov(50.0, 80, 48).K
    still = np.stack([look_at([0.0, -1.0, -4.0], [0, 0, 0])] * T)
    others = [np.stack([look_at([3.0 * np.sin(a), -1.0 - 0.05 * t, -4.0 * np.cos(a)], [0, 0, 0]) for t in range(T)]) for a in (0.5, -0.6, 1.1)]
    cams = [ViewCameras(80, 48, K, p) for p in [still, *others]]
    right = still[0, :3, 0]  # the query camera's x axis: same depth
    t = np.arange(T)[:, None, None]
    start = np.array([[0.1, 0.0, 0.2], [0.1, 0.0, 0.2]]) + np.array([[0.0] * 3, list(0.15 * right)])
    world = start[None] + t * (0.1 * right)[None, None]
    return cams, world


def test_a_point_no_two_views_see_takes_the_depth_of_its_triangulated_neighbour():
    cams, world = _rig()
    exact, front = project_per_frame(cams, world)
    assert front.all()
    V, T, N = exact.shape[:3]
    tracks = exact + 25.0  # lost chains wander off
    visible = np.zeros((V, T, N), bool)
    tracks[:, :, 0], visible[:, :, 0] = exact[:, :, 0], True  # point 0: every view
    tracks[0, :, 1], visible[0, :, 1] = exact[0, :, 1], True  # point 1: its query view only
    query_views = np.zeros(N, int)
    alone, _, _ = dynamic_points(cams, tracks, visible, np.ones(N, bool), query_views, 3.0)
    np.testing.assert_array_equal(alone[1:, :, 1], tracks[1:, :, 1])  # no depth of its own: nothing to place
    out, vis, _ = dynamic_points(cams, tracks, visible, np.ones(N, bool), query_views, 3.0, borrow=(12.0, 0.7))
    np.testing.assert_array_equal(vis, visible)  # a borrowed depth places, never claims visibility
    np.testing.assert_allclose(out[:, :, 1], exact[:, :, 1], atol=1e-6)
