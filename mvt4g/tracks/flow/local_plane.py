"""Positions of lost points from the static surface around them (the flow method, step 4c).

A point whose chains are lost at once (aliased far ground, an occluding edge) cannot be proved
static by its own track, but the static points around it in its query view usually can: on a
ground or a wall the static scene is locally planar. So a plane is fitted to the world points
of the static tracks that start within ``radius`` pixels of it (at least ``min_neighbours``,
around it rather than to one side, and flat to within ``flat_frac`` of their depth), and the
point's query ray meets that plane at its best guess of a world point. Its projection is the
position wherever its chains are lost. Visibility is not touched: like the sweep-plane fallback
(step 4b) this is a guess that beats a stray chain, not an observation. Where no static points
are around, the flow method uses the ground plane in the same way (:func:`on_plane`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from mvt4g.camera.rig import ViewCameras


def local_plane_points(
    cameras: list[ViewCameras],
    world: np.ndarray,
    static: np.ndarray,
    candidates: np.ndarray,
    qv: np.ndarray,
    qt: np.ndarray,
    qxy: np.ndarray,
    radius: float = 10.0,
    min_neighbours: int = 6,
    flat_frac: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """World points ``[N, 3]`` of ``candidates`` ``[N]`` on the plane of the static points around
    them (module docstring), and which were found ``[N]``.

    Args:
        world: world points ``[N, 3]``, meaningful where ``static`` ``[N]``.
        qv, qt, qxy: query view, frame ``[N]`` and pixel ``[N, 2]``.
    """
    N = len(qv)
    out = np.zeros((N, 3))
    found = np.zeros(N, bool)
    for a in np.unique(qv[candidates]):
        for s in np.unique(qt[candidates & (qv == a)]):
            group = (qv == a) & (qt == s)
            base = np.flatnonzero(group & static)
            cand = np.flatnonzero(group & candidates)
            if len(base) < min_neighbours or len(cand) == 0:
                continue
            K, c2w = cameras[a].K[s], cameras[a].c2w[s]
            centre = c2w[:3, 3]
            tree = cKDTree(qxy[base])
            rays = np.concatenate([qxy[cand], np.ones((len(cand), 1))], axis=1) @ np.linalg.inv(K).T @ c2w[:3, :3].T
            for j, (i, near) in enumerate(zip(cand, tree.query_ball_point(qxy[cand], radius))):
                if len(near) < min_neighbours:
                    continue
                near = base[near]
                # Around it, not to one side: the neighbours' mean pixel lies within half the radius.
                if np.linalg.norm(qxy[near].mean(0) - qxy[i]) > 0.5 * radius:
                    continue
                pts = world[near]
                mid = pts.mean(0)
                normal = np.linalg.svd(pts - mid, full_matrices=False)[2][-1]
                depth = np.linalg.norm(pts - centre, axis=1).mean()
                if np.sqrt((((pts - mid) @ normal) ** 2).mean()) > flat_frac * depth:
                    continue
                ray = rays[j]
                along = ray @ normal
                if abs(along) < 1e-3 * np.linalg.norm(ray):
                    continue
                step = ((mid - centre) @ normal) / along
                if step <= 0:
                    continue
                out[i], found[i] = centre + step * ray, True
    return out, found


def on_plane(
    cameras: list[ViewCameras], normal: np.ndarray, point: np.ndarray, qv: np.ndarray, qt: np.ndarray, qxy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where each query's ray ``[N]`` meets the plane through ``point`` with ``normal``: world points
    ``[N, 3]`` and whether it does, in front of the camera ``[N]``."""
    N = len(qv)
    out = np.zeros((N, 3))
    hit = np.zeros(N, bool)
    for a in np.unique(qv):
        for s in np.unique(qt[qv == a]):
            sel = np.flatnonzero((qv == a) & (qt == s))
            K, c2w = cameras[a].K[s], cameras[a].c2w[s]
            rays = np.concatenate([qxy[sel], np.ones((len(sel), 1))], axis=1) @ np.linalg.inv(K).T @ c2w[:3, :3].T
            along = rays @ normal
            with np.errstate(divide="ignore", invalid="ignore"):
                step = ((point - c2w[:3, 3]) @ normal) / along
            ok = np.isfinite(step) & (step > 0) & (np.abs(along) > 1e-6)
            out[sel] = c2w[:3, 3] + np.where(ok, step, 0.0)[:, None] * rays
            hit[sel] = ok
    return out, hit
