"""Exact multi-view point tracks of a synthetic scene.

A query ``(view, frame, x, y)`` is a pixel position in one view and frame. Its ray is cast
into the scene at that frame; the hit is stored in the frame of the surface it lies on (an
object's own frame, or the world for the static ground and dome), moved with that surface to
every frame, and projected into every view. Track n is therefore the same physical point
everywhere, exactly (float64 throughout).

Visibility of track n in view v, frame t: the point is in front of the camera, inside the
image (``0 <= x < W``, ``0 <= y < H`` in continuous pixel coordinates, pixel centres at
``u + 0.5``) and not occluded. Occlusion is a depth test against the renderer itself: the ray
from the camera through the track's exact sub-pixel position is cast, and the point is
visible when that ray's first hit is on the point's surface at the point's z-depth within
``DEPTH_TOL_REL * depth + DEPTH_TOL_ABS`` (0.1 mm per metre plus 1 micrometre; float64
errors are ~1e-12 m). This is the rendered depth evaluated at the track position rather
than at the nearest pixel centre, so silhouettes are handled exactly.

Coordinates of points behind a camera are meaningless (and not visible); they are clipped to
``+-10 max(H, W)`` so files stay finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mvt4g.camera.pose import invert_pose
from mvt4g.errors import WorkFailed
from mvt4g.synth.raycast import Geometry, cast
from mvt4g.synth.scene import SURF_FIRST_OBJECT, Scene

DEPTH_TOL_REL = 1e-4
DEPTH_TOL_ABS = 1e-6
#: Points closer to a camera's image plane than this (metres) count as behind it.
NEAR = 1e-6


@dataclass
class ExactTracks:
    """Tracks of N surface points in V views and T frames.

    Attributes:
        tracks: float32 ``[V, T, N, 2]`` pixel (x, y).
        visible: bool ``[V, T, N]``.
        queries: float32 ``[N, 4]`` (view, frame, x, y).
        depth: float32 ``[V, T, N]`` z-depth of the point in each camera (metres).
        surface: int64 ``[N]`` surface index of each point (see ``mvt4g.synth.scene``).
        local: float64 ``[N, 3]`` each point in its surface's frame.
    """

    tracks: np.ndarray
    visible: np.ndarray
    queries: np.ndarray
    depth: np.ndarray
    surface: np.ndarray
    local: np.ndarray


def sample_queries(rng: np.random.Generator, masks: np.ndarray, num_points: int, object_fraction: float = 0.5) -> np.ndarray:
    """Query positions over all views and frames: float64 ``[N, 4]`` (view, frame, x, y).

    ``masks`` is ``[V, T, H, W]`` object ids. ``object_fraction`` of the queries are drawn
    uniformly from the object pixels of all views and frames (so moving objects are well
    covered; none when no object is in sight), the rest uniformly over all pixels; each query
    sits uniformly at random inside its pixel. The order is shuffled.
    """
    views, frames, height, width = masks.shape
    flat = masks.reshape(views * frames, height * width)
    counts = (flat > 0).sum(axis=1)
    n_obj = round(num_points * object_fraction) if counts.sum() else 0
    picks = [_random_pixels(rng, num_points - n_obj, views, frames, height, width)]
    if n_obj:
        # Uniform over all object pixels: a view-frame by its object area, then a pixel in it.
        chosen = rng.choice(views * frames, size=n_obj, p=counts / counts.sum())
        for vf in np.unique(chosen):
            on = np.flatnonzero(flat[vf] > 0)
            idx = on[rng.integers(len(on), size=int((chosen == vf).sum()))]
            vf_col = np.full(len(idx), vf)
            picks.append(np.stack([vf_col // frames, vf_col % frames, idx // width, idx % width], 1))
    pix = np.concatenate(picks)[rng.permutation(num_points)]
    jitter = rng.random((num_points, 2))
    return np.stack([pix[:, 0], pix[:, 1], pix[:, 3] + jitter[:, 0], pix[:, 2] + jitter[:, 1]], 1).astype(np.float64)


def _random_pixels(rng, n, views, frames, height, width) -> np.ndarray:
    """int64 ``[n, 4]`` = (view, frame, row, column)."""
    return np.stack([rng.integers(views, size=n), rng.integers(frames, size=n),
                     rng.integers(height, size=n), rng.integers(width, size=n)], 1)  # fmt: skip


def _camera_arrays(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """``K [V, T, 3, 3]`` and ``c2w [V, T, 4, 4]`` of all views (float64)."""
    k = np.stack([scene.cameras[v].K for v in scene.views])
    c2w = np.stack([scene.cameras[v].c2w for v in scene.views])
    return k, c2w


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)


def track_queries(scene: Scene, queries: np.ndarray) -> ExactTracks:
    """Exact tracks of ``queries`` (float ``[N, 4]`` = view, frame, x, y) in every view and frame."""
    # Track the float32 positions the file will store, so file and tracks agree exactly.
    queries = np.asarray(queries, dtype=np.float32).astype(np.float64).reshape(-1, 4)
    k_all, c2w_all = _camera_arrays(scene)
    views, frames = k_all.shape[:2]
    qv, qf = queries[:, 0].astype(np.int64), queries[:, 1].astype(np.int64)
    geom = Geometry.of(scene)
    rot_np, pos_np = scene.object_poses()  # [T, K, 3, 3], [T, K, 3]
    rot, pos = _t(rot_np), _t(pos_np)

    # 1. Cast each query's ray at its own frame (one ray per batch, so each uses its frame's poses).
    k_q, c2w_q = k_all[qv, qf], c2w_all[qv, qf]
    cam = np.stack([(queries[:, 2] - k_q[:, 0, 2]) / k_q[:, 0, 0], (queries[:, 3] - k_q[:, 1, 2]) / k_q[:, 1, 1],
                    np.ones(len(queries))], 1)  # fmt: skip
    d = np.einsum("nij,nj->ni", c2w_q[:, :3, :3], cam)
    o = c2w_q[:, :3, 3]
    comps = lambda a: tuple(_t(a[:, i : i + 1]) for i in range(3))
    t_hit, surf = cast(geom, comps(o), comps(d), rot[qf], pos[qf])
    t_hit, surf = t_hit[:, 0].numpy(), surf[:, 0].numpy()
    if (surf < 0).any():
        raise WorkFailed("a query ray hit nothing (camera outside the dome?)")
    world = o + t_hit[:, None] * d  # [N, 3]

    # 2. Each point in its surface's frame, then at every frame.
    local = world.copy()
    is_obj = surf >= SURF_FIRST_OBJECT
    obj = surf - SURF_FIRST_OBJECT
    if is_obj.any():
        r = rot_np[qf[is_obj], obj[is_obj]]
        c = pos_np[qf[is_obj], obj[is_obj]]
        local[is_obj] = np.einsum("nji,nj->ni", r, world[is_obj] - c)  # R^T (X - c)
    points = np.broadcast_to(local, (frames,) + local.shape).copy()  # [T, N, 3]
    if is_obj.any():
        r_t = rot_np[:, obj[is_obj]]  # [T, M, 3, 3]
        points[:, is_obj] = np.einsum("tmij,mj->tmi", r_t, local[is_obj]) + pos_np[:, obj[is_obj]]

    # 3. Project into every view and frame.
    w2c = invert_pose(c2w_all)  # [V, T, 4, 4]
    x_cam = np.einsum("vtij,tnj->vtni", w2c[:, :, :3, :3], points) + w2c[:, :, None, :3, 3]
    z = x_cam[..., 2]
    z_safe = np.where(z > NEAR, z, NEAR)
    px = k_all[:, :, None, 0, 0] * x_cam[..., 0] / z_safe + k_all[:, :, None, 0, 2]
    py = k_all[:, :, None, 1, 1] * x_cam[..., 1] / z_safe + k_all[:, :, None, 1, 2]
    limit = 10.0 * max(scene.height, scene.width)
    tracks = np.clip(np.stack([px, py], -1), -limit, limit)
    in_view = (z > NEAR) & (px >= 0) & (px < scene.width) & (py >= 0) & (py < scene.height)

    # 4. Depth test: cast camera -> point rays (camera-z component 1, so t is the z-depth).
    visible = np.zeros_like(in_view)
    for v in range(views):
        centre = c2w_all[v, :, :3, 3]  # [T, 3]
        dirs = (points - centre[:, None, :]) / z_safe[v][..., None]  # [T, N, 3]
        o_v = tuple(_t(np.broadcast_to(centre[:, None, i], z[v].shape)) for i in range(3))
        d_v = tuple(_t(dirs[..., i]) for i in range(3))
        t_v, s_v = cast(geom, o_v, d_v, rot, pos)
        tol = DEPTH_TOL_REL * z[v] + DEPTH_TOL_ABS
        same = (s_v.numpy() == surf[None, :]) & (np.abs(t_v.numpy() - z[v]) <= tol)
        visible[v] = in_view[v] & same
    return ExactTracks(
        tracks=tracks.astype(np.float32),
        visible=visible,
        queries=queries.astype(np.float32),
        depth=z.astype(np.float32),
        surface=surf.astype(np.int64),
        local=local,
    )


def exact_tracks(scene: Scene, masks: np.ndarray, num_points: int, rng: np.random.Generator,
                 object_fraction: float = 0.5) -> ExactTracks:  # fmt: skip
    """Sample ``num_points`` queries (:func:`sample_queries`) and track them (:func:`track_queries`)."""
    return track_queries(scene, sample_queries(rng, masks, num_points, object_fraction))
