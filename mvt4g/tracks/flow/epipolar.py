"""Epipolar geometry of two synchronized cameras: the flow method's drift check (step 5).

Two views' images of one world point at one instant (moving or not) lie on each other's
epipolar lines. :func:`fundamental` gives the matrix of a camera pair, :func:`epipolar_distance`
how far a point strays from its line and :func:`onto_epipolar_line` moves it onto the line.
"""

from __future__ import annotations

import numpy as np

from mvt4g.tracks.projection import relative_pose


def fundamental(K_a: np.ndarray, c2w_a: np.ndarray, K_b: np.ndarray, c2w_b: np.ndarray) -> np.ndarray:
    """F with ``x_b^T F x_a = 0`` for pixels of the same world point in cameras a and b."""
    R, t = relative_pose(c2w_a, c2w_b)
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return np.linalg.inv(K_b).T @ tx @ R @ np.linalg.inv(K_a)


def epipolar_distance(F: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Distance (pixels) of points ``xb`` ``[n, 2]`` from the epipolar lines of ``xa`` ``[n, 2]``; 0 when there is no baseline."""
    ha = np.concatenate([xa, np.ones((len(xa), 1))], axis=1)
    hb = np.concatenate([xb, np.ones((len(xb), 1))], axis=1)
    lines = ha @ F.T
    norm = np.hypot(lines[:, 0], lines[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs((lines * hb).sum(1)) / norm
    return np.where(norm > 1e-12, d, 0.0)


def onto_epipolar_line(F: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Points ``xb`` ``[n, 2]`` moved orthogonally onto the epipolar lines of ``xa`` ``[n, 2]`` (unchanged without a baseline)."""
    ha = np.concatenate([xa, np.ones((len(xa), 1))], axis=1)
    lines = ha @ F.T
    norm2 = lines[:, 0] ** 2 + lines[:, 1] ** 2
    signed = lines[:, 0] * xb[:, 0] + lines[:, 1] * xb[:, 1] + lines[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(norm2 > 1e-24, signed / norm2, 0.0)
    return xb - step[:, None] * lines[:, :2]
