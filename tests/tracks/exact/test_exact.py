"""Queries, exact geometry tracks, depth tests and rigid fits (mvt4g.tracks.queries, mvt4g.tracks.exact, mvt4g.tracks.planar)."""

from __future__ import annotations

import numpy as np
import pytest

from mvt4g.camera import Intrinsics, ViewCameras, look_at
from mvt4g.errors import InputError
from mvt4g.tracks.exact.depth import query_depth, visible_in
from mvt4g.tracks.exact.pipeline import geometry_tracks
from mvt4g.tracks.exact.rigid_motion import RigidConfig, fit_rigid, kabsch
from mvt4g.tracks.format import TrackSet
from mvt4g.tracks.metrics import score_tracks
from mvt4g.tracks.planar import planar_scene
from mvt4g.tracks.projection import backproject, project
from mvt4g.tracks.queries import grid_points, grid_queries, parse_grid, random_queries


def test_grid_is_the_papers_30x52_on_pixel_centres():
    pts = grid_points(480, 832, 30, 52)
    assert pts.shape == (1560, 2)
    assert np.all((pts - 0.5) % 1 == 0)
    assert pts[0].tolist() == [8.5, 8.5] and pts[-1].tolist() == [824.5, 472.5]  # 16x16 cells
    q = grid_queries(96, 160, [0, 2], [0, 5], (3, 4))
    assert q.shape == (2 * 2 * 12, 4) and set(q[:, 0]) == {0, 2} and set(q[:, 1]) == {0, 5}
    assert parse_grid("30x52") == (30, 52)
    with pytest.raises(InputError):
        parse_grid("30by52")
    with pytest.raises(InputError, match="finer"):
        grid_points(10, 10, 30, 52)


def test_random_queries_are_deterministic_and_inside():
    a = random_queries(48, 64, [0, 1], [0, 3], 100, seed=3)
    b = random_queries(48, 64, [0, 1], [0, 3], 100, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (a[:, 2] < 64).all() and (a[:, 3] < 48).all() and set(a[:, 1]) <= {0, 3}


def test_backproject_then_project_is_identity():
    K = Intrinsics.from_fov(60.0, 64, 48).K
    c2w = look_at([1.0, -0.5, -3.0], [0.0, 0.0, 0.0])
    xy = np.array([[10.5, 20.5], [40.25, 3.75]])
    world = backproject(K, c2w, xy, np.array([2.0, 5.0]))
    uv, z = project(K, np.linalg.inv(c2w), world)
    np.testing.assert_allclose(uv, xy, atol=1e-9)
    np.testing.assert_allclose(z, [2.0, 5.0], atol=1e-9)


def test_query_depth_interpolates_inverse_depth_on_planes_and_not_across_edges():
    # A slanted plane: inverse depth is affine in pixel coordinates.
    ys, xs = np.mgrid[0:8, 0:8] + 0.5
    inv = 0.1 + 0.02 * xs + 0.01 * ys
    depth = (1 / inv).astype(np.float64)
    p = np.array([[3.2, 4.7]])
    assert query_depth(depth, p)[0] == pytest.approx(1 / (0.1 + 0.02 * 3.2 + 0.01 * 4.7), rel=1e-12)
    edge = depth.copy()
    edge[:, 4:] = 50.0  # a far surface right of x = 4
    assert query_depth(edge, np.array([[3.9, 2.5]]))[0] == pytest.approx(depth[2, 3])


def test_visibility_flips_behind_an_occluder():
    depth = np.full((10, 10), 4.0)
    uv = np.array([[5.5, 5.5], [2.5, 2.5], [12.0, 3.0]])
    z = np.array([4.0, 4.0, 4.0])
    assert visible_in(uv, z, depth).tolist() == [True, True, False]  # the last is outside the image
    depth[5, 5] = 2.0  # an occluder in front of the first point only
    assert visible_in(uv, z, depth).tolist() == [False, True, False]
    assert not visible_in(np.array([[2.5, 2.5]]), np.array([-1.0]), depth)[0]  # behind the camera


def _bear_texture(shared_data) -> np.ndarray:
    from mvt4g.io.video import read_video

    return read_video(shared_data / "real" / "bear.mp4", max_frames=1).frames[0]


def test_geometry_is_exact_on_the_planar_scene(shared_data):
    scene = planar_scene(_bear_texture(shared_data), views=2, frames=5, height=48, width=80, seed=2)
    q = grid_queries(48, 80, [0, 1], [0, 2], (6, 10))
    gt_tracks, gt_vis = scene.exact_tracks(q)
    tracks, visible, report = geometry_tracks(scene.cameras, scene.depths, q)
    assert report.static == len(q) and report.dynamic == 0
    np.testing.assert_allclose(tracks[gt_vis], gt_tracks[gt_vis], atol=1e-3)
    np.testing.assert_array_equal(visible, gt_vis)
    s = score_tracks(TrackSet(tracks, visible, q, (48, 80), "g"), TrackSet(gt_tracks, gt_vis, q, (48, 80), "gt"))
    assert s["all"]["delta_avg"] == 1.0 and s["all"]["occlusion_accuracy"] == 1.0


def test_geometry_rejects_depth_of_the_wrong_shape():
    cam = ViewCameras(16, 12, Intrinsics.from_fov(60.0, 16, 12).K, np.eye(4)[None].repeat(3, 0))
    with pytest.raises(InputError, match="depth of view 0 has shape"):
        geometry_tracks([cam], [np.ones((3, 12, 15))], np.array([[0, 0, 1.5, 1.5]]))


def test_moving_object_follows_its_rigid_motion():
    """A textured box-shaped object translating in front of a static wall, two cameras, depth and masks."""
    H, W, T = 40, 64, 4
    K = Intrinsics.from_fov(60.0, W, H).K
    cams = [ViewCameras(W, H, K, np.stack([look_at([x, 0.0, -5.0], [0.0, 0.0, 0.0])] * T)) for x in (-0.3, 0.3)]
    rng = np.random.default_rng(0)
    wall_tex, obj_tex = rng.random((64, 64)), rng.random((64, 64))
    shift = 0.08  # metres per frame, along world x
    videos, depths, masks = [], [], []
    for cam in cams:
        frames, dep, ids = [], [], []
        for t in range(T):
            xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
            pix = np.stack([xs.ravel(), ys.ravel()], 1)
            origin = cam.c2w[t, :3, 3]
            ray = backproject(K, cam.c2w[t], pix, np.ones(len(pix))) - origin
            hit_wall = origin + ((1.0 - origin[2]) / ray[:, 2])[:, None] * ray  # wall at z = 1
            hit_obj = origin + ((0.0 - origin[2]) / ray[:, 2])[:, None] * ray  # object face at z = 0
            local = hit_obj[:, :2] - [shift * t, 0.0]
            on_obj = (np.abs(local[:, 0]) < 0.6) & (np.abs(local[:, 1]) < 0.5)
            wall_uv = ((hit_wall[:, :2] * 12 + 32) % 64).astype(int)
            obj_uv = ((local * 12 + 32) % 64).astype(int)
            grey = np.where(on_obj, obj_tex[obj_uv[:, 1], obj_uv[:, 0]], wall_tex[wall_uv[:, 1], wall_uv[:, 0]])
            frames.append(np.repeat((grey.reshape(H, W, 1) * 255).astype(np.uint8), 3, axis=2))
            z = np.where(on_obj, (hit_obj - origin) @ cam.c2w[t, :3, 2], (hit_wall - origin) @ cam.c2w[t, :3, 2])
            dep.append(z.reshape(H, W))
            ids.append(on_obj.reshape(H, W).astype(np.uint8))
        videos.append(np.stack(frames))
        depths.append(np.stack(dep).astype(np.float32))
        masks.append(np.stack(ids))
    q = np.array([[0, 0, 30.5, 20.5]])
    assert masks[0][0, 20, 30] == 1
    tracks, visible, report = geometry_tracks(cams, depths, q, masks=masks, videos=videos)
    assert report.dynamic == 1
    X0 = backproject(K, cams[0].c2w[0], q[:, 2:4], depths[0][0][[20], [30]].astype(float))
    for t in range(1, T):
        want, _ = project(K, cams[1].w2c()[t], X0 + [shift * t, 0, 0])
        assert visible[1, t, 0]
        np.testing.assert_allclose(tracks[1, t, 0], want[0], atol=0.5)


def test_kabsch_and_ransac_recover_a_rigid_motion_despite_outliers():
    rng = np.random.default_rng(0)
    angle = 0.3
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    X = rng.normal(size=(200, 3))
    Y = X @ R.T + [0.5, -0.2, 1.0]
    M = kabsch(X, Y)
    np.testing.assert_allclose(M[:3, :3], R, atol=1e-10)
    Y[:40] += rng.normal(0, 2.0, (40, 3))  # 20 % gross outliers
    fit = fit_rigid(X, Y, np.full(200, 0.01), RigidConfig(), rng)
    assert fit is not None and fit[1][40:].all() and not fit[1][:40].any()
    np.testing.assert_allclose(fit[0][:3, 3], [0.5, -0.2, 1.0], atol=1e-9)
