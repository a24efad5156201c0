"""The world's down direction from the ground the views see, for the plane sweep's plane families.

The multi-view plane sweep (mvt4g.tracks.flow.association) sweeps horizontal and vertical planes besides
fronto-parallel ones and needs the world's down direction for them. The cameras alone give it
only approximately (:func:`mvt4g.tracks.flow.sweep_geometry.world_down` assumes cameras without roll): on
synth scenes, whose cameras roll by up to about 25 degrees, it was off by up to 11 degrees, and a
"horizontal" plane that far off maps ground seen at a grazing angle to the wrong place, so the
sweep misses most of the ground. (With the exact down on 4 such scenes the flow method's
cross-view delta_avg went from 0.59 to 0.71.)

The sweep's own accepted points fix it: where the views see a ground, most of them lie on one
plane whose normal is down. :func:`fit_ground` finds that plane by RANSAC over 3-point planes
whose normal lies within ``max_tilt_deg`` of the cameras' down: the plane with most points
within ``inlier_frac`` of the scene's size (:func:`scene_scale`) wins and its normal is refitted
on them. It is used when it holds at least ``min_points`` points and ``min_share`` of them; else
(no ground in view) the cameras' estimate stands (mvt4g.tracks.flow.association.Associator.refine_down).

On 12 synth scenes (seeds 7, 99, 2024 and 31337) the cameras' estimate was 0.3-11.1 degrees off
(median 3.6) and the refined one 0.0-0.25 degrees (median 0.06). Tried first and dropped: SIFT
matches between the views' images, triangulated with the cameras; at 96 x 160 too few of them
land on the ground (up to 10 degrees off, and a wrong plane on one scene).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvt4g.camera.rig import ViewCameras


@dataclass
class GroundConfig:
    """Settings of :func:`fit_ground` (module docstring)."""

    max_tilt_deg: float = 30.0
    inlier_frac: float = 0.01
    ransac_iters: int = 400
    min_points: int = 200
    min_share: float = 0.1
    seed: int = 0


def scene_scale(cameras: list[ViewCameras]) -> float:
    """Median distance of the cameras from the point nearest all their optical axes."""
    centres = np.concatenate([cam.c2w[:, :3, 3] for cam in cameras])
    axes = np.concatenate([cam.c2w[:, :3, 2] for cam in cameras])
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    P = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    A = P.sum(0)
    if np.linalg.cond(A) > 1e8:  # all axes parallel: no meeting point
        return float(np.median(np.linalg.norm(centres - centres.mean(0), axis=1))) or 1.0
    meet = np.linalg.solve(A, np.einsum("nij,nj->i", P, centres))
    return float(np.median(np.linalg.norm(centres - meet, axis=1)))


def fit_ground(
    points: np.ndarray, prior_down: np.ndarray, tolerance: float, config: GroundConfig
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """RANSAC plane among ``points`` with its normal within ``max_tilt_deg`` of ``prior_down``:
    (unit normal signed like the prior, a point on the plane, inlier count), or None when no plane qualifies."""
    n = len(points)
    if n < 3:
        return None
    rng = np.random.default_rng(config.seed)
    cos_tilt = np.cos(np.radians(config.max_tilt_deg))
    best_count, best_in = 0, None
    for _ in range(config.ransac_iters):
        p = points[rng.choice(n, 3, replace=False)]
        normal = np.cross(p[1] - p[0], p[2] - p[0])
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal /= norm
        if abs(normal @ prior_down) < cos_tilt:
            continue
        inliers = np.abs((points - p[0]) @ normal) < tolerance
        count = int(inliers.sum())
        if count > best_count:
            best_count, best_in = count, inliers
    if best_in is None:
        return None
    # Refit on the inliers (least squares: the smallest principal direction), then re-select once.
    for _ in range(2):
        if best_in.sum() < 3:
            return None
        sel = points[best_in]
        centre = sel.mean(0)
        normal = np.linalg.svd(sel - centre, full_matrices=False)[2][-1]
        best_in = np.abs((points - centre) @ normal) < tolerance
    if abs(normal @ prior_down) < cos_tilt:
        return None
    return normal * np.sign(normal @ prior_down), points[best_in].mean(0), int(best_in.sum())


def ground_plane(
    points: np.ndarray, prior_down: np.ndarray, cameras: list[ViewCameras], config: GroundConfig | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ground plane among world ``points`` ``[m, 3]`` (module docstring) as (unit normal pointing
    down, a point on it), or None when no plane near ``prior_down`` holds enough of them."""
    config = config or GroundConfig()
    fit = fit_ground(points, prior_down, config.inlier_frac * scene_scale(cameras), config)
    if fit is None or fit[2] < config.min_points or fit[2] < config.min_share * len(points):
        return None
    return fit[0], fit[1]
