"""Two-view geometry for plane-sweep matching with known cameras (used by mvt4g.tracks.flow.association).

A plane ``n^T X = d`` in camera a's frame (``sigma = 1 / d``) maps a's pixels to b's by

    H(sigma) = K_b (R + sigma t n^T) K_a^-1,      (R, t) = pose of a's camera in b's camera frame

``sigma = 0`` is the plane at infinity. Pixel coordinates follow mvt4g's convention (centres at
+0.5); :func:`mvt4g.tracks.projection.to_cv` converts a homography for OpenCV (centres at integers).
"""

from __future__ import annotations

import numpy as np

_E3 = np.array([0.0, 0.0, 1.0])


def plane_homography(
    K_a: np.ndarray, K_b: np.ndarray, R: np.ndarray, t: np.ndarray, sigma: float, normal: np.ndarray = _E3
) -> np.ndarray:
    """Homography (mvt4g pixel coordinates, centres at +0.5) from a to b through the plane ``normal . X = 1 / sigma`` of a's frame."""
    return K_b @ (R + sigma * np.outer(t, normal)) @ np.linalg.inv(K_a)


def plane_points(
    K_a: np.ndarray, K_b: np.ndarray, R: np.ndarray, t: np.ndarray, xy: np.ndarray, sigma: np.ndarray, normal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where pixels ``xy`` ``[..., 2]`` of a, on planes ``(normal, sigma)`` (broadcast), land in b: ``[..., 2]``, and validity.

    Valid: the plane point is in front of a (sigma * (n . ray) > 0, or sigma = 0: the point at
    infinity) and in front of b.
    """
    xy = np.asarray(xy, np.float64)
    ray = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1) @ np.linalg.inv(K_a).T
    ndot = ray @ normal
    sigma = np.asarray(sigma, np.float64)
    cam = ray @ R.T + (sigma * ndot)[..., None] * t  # the plane point in b's frame, divided by sigma * ndot
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = cam @ K_b.T
        uv = pix[..., :2] / pix[..., 2:3]
    ok = ((sigma * ndot > 0) | (sigma == 0)) & (cam[..., 2] > 1e-9) & np.isfinite(uv).all(-1)
    return np.where(ok[..., None], uv, 0.0), ok


def plane_range(
    K_a: np.ndarray,
    targets: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    height: int,
    width: int,
    normal: np.ndarray = _E3,
    step_px: float = 1.0,
    probes_per_side: int = 9,
) -> np.ndarray:
    """Sigmas ``[D]`` of one family's planes for reference camera a and target cameras ``(K_b, R, t)``.

    A grid of probe pixels of a is followed along sigma (0, then log-spaced from far beyond the
    scene to 1/1000 of the baseline): the sweep covers the sigmas at which some probe lands
    inside some target image, with planes spaced so that no probe moves more than ``step_px``
    in any target between neighbouring planes. One plane when no target has a baseline (the
    matches do not depend on the plane); none when no probe ever lands in a target.
    """
    u = (np.arange(probes_per_side) + 0.5) / probes_per_side
    px, py = np.meshgrid(u * width, u * height)
    probes = np.stack([px.ravel(), py.ravel()], axis=1)
    baselines = [float(np.linalg.norm(t)) for _, _, t in targets]
    moving = [tg for tg, b in zip(targets, baselines) if b > 1e-12]
    if not moving:
        return np.zeros(1)

    def positions(sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probe positions ``[B, S, P, 2]`` in every target and whether each is inside it."""
        uvs, oks = [], []
        for K_b, R, t in moving:
            uv, ok = plane_points(K_a, K_b, R, t, probes[None], sig[:, None], normal)
            ok &= (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
            uvs.append(uv)
            oks.append(ok)
        return np.stack(uvs), np.stack(oks)

    f = float(max(K_a[0, 0], K_a[1, 1]))
    b_min, b_max = min(b for b in baselines if b > 1e-12), max(baselines)
    coarse = np.concatenate([[0.0], np.geomspace(1e-4 / (f * b_max), 1e3 / b_min, 4000)])
    _, ok = positions(coarse)
    idx = np.flatnonzero(ok.any(axis=(0, 2)))
    if len(idx) == 0:
        return np.zeros(0)
    lo = 0.0 if idx[0] == 0 else coarse[idx[0] - 1]
    hi = coarse[min(idx[-1] + 1, len(coarse) - 1)]
    fine = np.linspace(lo, hi, 8192)
    pos, ok = positions(fine)
    step = np.linalg.norm(np.diff(pos, axis=1), axis=-1)
    steps = np.where(ok[:, 1:] & ok[:, :-1], step, 0.0).max(axis=(0, 2))
    travelled = np.concatenate([[0.0], np.cumsum(steps)])
    if travelled[-1] < 0.5:
        return np.array([lo])
    count = int(min(max(np.ceil(travelled[-1] / step_px), 1), 4096)) + 1
    return np.interp(np.linspace(0.0, travelled[-1], count), travelled, fine)


def plane_normals(c2w_a: np.ndarray, down_world: np.ndarray | None) -> list[np.ndarray]:
    """Swept plane orientations in a's camera frame: a's image plane; with a known world down,
    also horizontal planes and vertical planes facing camera a."""
    normals = [_E3.copy()]
    if down_world is not None:
        rot = c2w_a[:3, :3]
        normals.append(rot.T @ down_world)
        view = rot[:, 2]
        horizontal = view - (view @ down_world) * down_world
        if np.linalg.norm(horizontal) > 1e-3:
            normals.append(rot.T @ (horizontal / np.linalg.norm(horizontal)))
    return [n / np.linalg.norm(n) for n in normals]


def world_down(c2ws: list[np.ndarray]) -> np.ndarray | None:
    """The world's down direction from the cameras' axes, or None when the cameras do not agree on one.

    An upright camera (no roll) has a horizontal x axis, so down is the direction most nearly
    orthogonal to every camera's x axis (the smallest eigenvector of sum x x^T), signed like the
    cameras' mean y (image-down) axis. When the x axes are all parallel (cameras facing one way)
    that leaves a plane of candidates: the one nearest the mean y axis is taken.
    """
    poses = np.concatenate([np.asarray(c).reshape(-1, 4, 4) for c in c2ws])
    xs, ys = poses[:, :3, 0], poses[:, :3, 1]
    mean_y = ys.mean(axis=0)
    if np.linalg.norm(mean_y) < 0.5:  # cameras rolled every which way: no common "down"
        return None
    vals, vecs = np.linalg.eigh(xs.T @ xs / len(xs))
    if vals[1] - vals[0] < 0.05:
        plane = vecs[:, :2]
        down = plane @ (plane.T @ mean_y)
    else:
        down = vecs[:, 0] * np.sign(vecs[:, 0] @ mean_y)
    norm = np.linalg.norm(down)
    if norm < 1e-9 or down @ mean_y / norm < 0.5:
        return None
    return down / norm
