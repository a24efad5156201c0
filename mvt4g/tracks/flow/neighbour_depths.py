"""Depths of moving points that no two views see at once, borrowed from the points around them that are.

:mod:`mvt4g.tracks.flow.dynamic_points` places a point that is not static at frame t by
triangulating its chains in two views or more. Most points on moving objects are associated in
one other view at most (small, turning objects at wide baselines defeat the plane sweep), so
they have no depth at any frame, and their positions in the other views carry no meaning. Their
neighbours in the query view often fare better: a point on the same object a few pixels away
may be seen by two views. An object is small against its distance from the cameras, so its
points are at nearly the same depth, and the neighbour's depth at t is a far better guess than
none.

For each point without a triangulated depth at frame t (in its query camera), the depth is the
median of those of the triangulated points of the same query view whose chains there lie within
``radius`` pixels of its own and that moved like it over the frame before (within ``agree_px``:
a neighbour across an object's edge moved otherwise). The positions that follow from it are
guesses, never claimed visible.
"""

from __future__ import annotations

import numpy as np


def moved_alike(xy: np.ndarray, t: int, targets: np.ndarray, sources: np.ndarray, agree_px: float) -> np.ndarray:
    """``[n_targets, n_sources]``: the chains ``xy`` ``[T, N, 2]`` of targets and sources moved alike
    (within ``agree_px``) between t and its neighbouring frame (t - 1, or t + 1 at the first frame)."""
    other = t - 1 if t > 0 else min(t + 1, len(xy) - 1)
    step_t = xy[t, targets] - xy[other, targets]
    step_s = xy[t, sources] - xy[other, sources]
    return np.linalg.norm(step_t[:, None] - step_s[None], axis=-1) <= agree_px


def neighbour_depths(
    xy: np.ndarray, views: np.ndarray, z: np.ndarray, solved: np.ndarray, radius: float, agree_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Depths ``[T, N]`` with unsolved entries taken from their neighbours (module docstring), and
    which entries have a depth now ``[T, N]``.

    Args:
        xy: query-view chains ``[T, N, 2]``; views: each point's query view ``[N]``;
        z: z-depths in the query cameras ``[T, N]``, meaningful where ``solved`` ``[T, N]``.
    """
    T, _ = solved.shape
    out, known = z.copy(), solved.copy()
    for t in range(T):
        for v in np.unique(views):
            mine = views == v
            sources = np.flatnonzero(mine & solved[t])
            targets = np.flatnonzero(mine & ~solved[t])
            if len(sources) == 0 or len(targets) == 0:
                continue
            near = np.linalg.norm(xy[t, targets][:, None] - xy[t, sources][None], axis=-1) <= radius
            near &= moved_alike(xy, t, targets, sources, agree_px)
            depths = np.where(near, z[t, sources][None], np.nan)
            found = near.any(1)
            if found.any():
                out[t, targets[found]] = np.nanmedian(depths[found], axis=1)
                known[t, targets[found]] = True
    return out, known
