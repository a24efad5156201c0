"""The weight-free flow method: chained flow, plane-sweep association, and the whole method on a
real image seen by moving cameras (mvt4g.tracks.flow, mvt4g.tracks.projection, mvt4g.tracks.planar)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.camera import Intrinsics, look_at
from mvt4g.tracks.flow.chains import chain_tracks
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.epipolar import (
    epipolar_distance,
    fundamental,
    onto_epipolar_line,
)
from mvt4g.tracks.flow.optical_flow import view_flows
from mvt4g.tracks.flow.pipeline import association_frame, flow_tracks
from mvt4g.tracks.flow.sweep_geometry import plane_homography, plane_points, world_down
from mvt4g.tracks.format import TrackSet
from mvt4g.tracks.metrics import score_tracks
from mvt4g.tracks.planar import planar_scene
from mvt4g.tracks.projection import relative_pose
from mvt4g.tracks.queries import grid_queries


def _texture(shared_data) -> np.ndarray:
    from mvt4g.io.video import read_video

    return read_video(shared_data / "real" / "bear.mp4", max_frames=1).frames[0]


def test_chained_flow_follows_a_known_translation(shared_data):
    tex = _texture(shared_data)[100:260, 200:400]
    # A camera panning over the image: 1.5 px right and 1 px down per frame.
    frames = np.stack([tex[10 + t : 10 + t + 64, 12 + round(1.5 * t) : 12 + round(1.5 * t) + 96] for t in range(0, 12, 2)])
    shifts = np.array([[-(round(1.5 * t)) + 0.0, -t + 0.0] for t in range(0, 12, 2)])
    q = np.array([[20.5, 30.5], [50.5, 20.5], [2.5, 2.5]])
    path, ok = chain_tracks(view_flows(frames), np.zeros(3, int), q)
    want = q[None] + (shifts - shifts[0])[:, None]
    inside = (want[..., 0] >= 0) & (want[..., 1] >= 0)
    assert np.abs(path[inside & ok] - want[inside & ok]).max() < 0.5
    assert ok[:, :2].all()  # interior points are never lost
    assert not ok[-1, 2]  # the corner point leaves the image and is lost for good


def test_chain_runs_backward_from_a_later_query_frame(shared_data):
    tex = _texture(shared_data)[100:200, 200:330]
    frames = np.stack([tex[:64, 2 * t : 2 * t + 96] for t in range(5)])
    path, ok = chain_tracks(view_flows(frames), np.array([4]), np.array([[40.5, 30.5]]))
    np.testing.assert_allclose(path[:, 0, 0], 40.5 + 2 * (4 - np.arange(5)), atol=0.4)
    assert ok.all()


def test_plane_geometry_agrees_with_its_homography():
    K = Intrinsics.from_fov(50.0, 80, 48).K
    a, b = look_at([0.0, -1.0, -4.0], [0, 0, 0]), look_at([1.0, -1.2, -3.5], [0, 0, 0])
    R, t = relative_pose(a, b)
    n = np.array([0.1, -0.9, 0.3]) / np.linalg.norm([0.1, -0.9, 0.3])
    xy = np.array([[10.5, 20.5], [60.0, 5.0]])
    H = plane_homography(K, K, R, t, 0.3, n)
    p = np.concatenate([xy, np.ones((2, 1))], 1) @ H.T
    uv, ok = plane_points(K, K, R, t, xy, np.full(2, 0.3), n)
    np.testing.assert_allclose(uv[ok], (p[:, :2] / p[:, 2:])[ok], atol=1e-9)


def test_world_down_from_upright_cameras():
    poses = [look_at([4 * np.sin(a), 4 * np.cos(a), 2.0], [0, 0, 0.5], up=(0, 0, 1)) for a in np.linspace(0, 2, 5)]
    np.testing.assert_allclose(world_down([np.stack(poses)]), [0, 0, -1], atol=1e-9)


def test_epipolar_distance_is_zero_for_true_matches():
    K = Intrinsics.from_fov(50.0, 80, 48).K
    a, b = look_at([0.0, 0.0, -4.0], [0, 0, 0]), look_at([1.0, 0.2, -3.5], [0, 0, 0])
    X = np.array([[0.1, 0.2, 0.3], [-0.4, 0.1, 1.0]])
    xa = (X - a[:3, 3]) @ a[:3, :3] @ K.T
    xb = (X - b[:3, 3]) @ b[:3, :3] @ K.T
    xa, xb = xa[:, :2] / xa[:, 2:], xb[:, :2] / xb[:, 2:]
    F = fundamental(K, a, K, b)
    assert epipolar_distance(F, xa, xb).max() < 1e-9
    assert epipolar_distance(F, xa, xb + [0, 5.0]).min() > 1.0


def test_snapping_onto_the_epipolar_line_is_an_orthogonal_projection():
    K = Intrinsics.from_fov(50.0, 80, 48).K
    a, b = look_at([0.0, 0.0, -4.0], [0, 0, 0]), look_at([1.0, 0.2, -3.5], [0, 0, 0])
    F = fundamental(K, a, K, b)
    rng = np.random.default_rng(3)
    xa, xb = rng.uniform(0, 48, (20, 2)), rng.uniform(0, 48, (20, 2))
    snapped = onto_epipolar_line(F, xa, xb)
    assert epipolar_distance(F, xa, snapped).max() < 1e-9
    # The move is the distance to the line (the nearest point on it), checked independently.
    np.testing.assert_allclose(np.linalg.norm(snapped - xb, axis=1), epipolar_distance(F, xa, xb), atol=1e-9)
    # No baseline: nothing to snap to, points stay.
    np.testing.assert_array_equal(onto_epipolar_line(np.zeros((3, 3)), xa, xb), xb)


def test_association_frames_are_the_nearest_key_frames():
    assert association_frame(np.array([0, 2, 3, 7, 20]), 21, 5).tolist() == [0, 0, 5, 5, 20]
    assert association_frame(np.array([0, 2, 8]), 9, 5).tolist() == [0, 0, 8]
    assert association_frame(np.array([3]), 9, 1).tolist() == [3]


@pytest.mark.slow
def test_flow_method_on_a_real_image_seen_by_moving_cameras(shared_data):
    scene = planar_scene(_texture(shared_data), views=2, frames=7, height=64, width=96, seed=5)
    q = grid_queries(64, 96, [0, 1], [0], (8, 12))
    gt_tracks, gt_vis = scene.exact_tracks(q)
    tracks, visible, report = flow_tracks(scene.videos, scene.cameras, q, FlowConfig())
    assert report.associated > 0.5 * report.association_tried
    s = score_tracks(TrackSet(tracks, visible, q, (64, 96), "flow"), TrackSet(gt_tracks, gt_vis, q, (64, 96), "gt"))
    assert s["temporal"]["delta_avg"] > 0.9, s["temporal"]
    assert s["cross_view"]["delta_avg"] > 0.75, s["cross_view"]
    # What the method calls visible is right: few false positives (Jaccard close to delta_avg).
    assert s["cross_view"]["average_jaccard"] > 0.6, s["cross_view"]
    # Every track is visible at its own query, exactly there.
    n = np.arange(len(q))
    np.testing.assert_array_equal(tracks[q[:, 0].astype(int), 0, n], q[:, 2:4])


@pytest.mark.slow
def test_unassociated_points_are_not_visible(shared_data):
    """A view that sees a different part of the plane: nothing can be associated, nothing is claimed."""
    scene = planar_scene(_texture(shared_data), views=2, frames=3, height=48, width=64, seed=1)
    rng = np.random.default_rng(0)
    scene.videos[1] = rng.integers(0, 255, scene.videos[1].shape, dtype=np.uint8)  # unrelated content
    q = grid_queries(48, 64, [0], [0], (4, 6))
    _, visible, _ = flow_tracks(scene.videos, scene.cameras, q)
    assert visible[1].mean() < 0.1
    assert visible[0, 0].all()


def test_a_single_view_gets_temporal_tracks_only(shared_data):
    """One view: no other view to associate with or sweep against; chains still track the plane."""
    scene = planar_scene(_texture(shared_data), views=2, frames=4, height=48, width=64, seed=1)
    q = grid_queries(48, 64, [0], [0], (4, 6))
    tracks, visible, report = flow_tracks(scene.videos[:1], scene.cameras[:1], q)
    assert tracks.shape == (1, 4, len(q), 2) and report.associated == 0
    err = np.linalg.norm(tracks[0] - scene.exact_tracks(q)[0][0], axis=-1)
    assert np.median(err[visible[0]]) < 0.5 and visible[0].mean() > 0.8


def test_triangulating_a_static_track_recovers_its_point():
    from mvt4g.camera import ViewCameras
    from mvt4g.tracks.flow.static_points import parallax, verify_in_view
    from mvt4g.tracks.projection import project_all, rays, triangulate

    K = Intrinsics.from_fov(50.0, 80, 48).K
    poses = np.stack([look_at([0.2 * t, -1.0, -4.0], [0, 0, 0]) for t in range(6)])
    cams = [ViewCameras(80, 48, K, poses)]
    X = np.array([[0.3, 0.1, 0.5], [-0.2, 0.2, 2.0]])
    proj, front = project_all(cams, X)
    assert front.all()
    centres, dirs = rays(cams, np.zeros(2, int), proj[0].transpose(1, 0, 2))
    use = np.ones((2, 6), bool)
    use[1, :4] = False  # the second point is tracked on two frames only
    got, ok = triangulate(centres, dirs, use)
    assert ok.all()
    np.testing.assert_allclose(got, X, atol=1e-9)
    moved = parallax(cams, X, centres[:, 0], proj)[0]  # [T, N]
    assert moved[0].max() < 1e-9 and moved[-1].min() > 1.0  # no parallax at the anchor frame, some later
    # Verification: a chain that follows the projection is seen; one that drifts is not.
    chain = proj[0].copy()
    chain[:, 1] += np.linspace(0, 6, 6)[:, None]
    seen = verify_in_view(chain, np.ones((6, 2), bool), proj[0], np.full((6, 2), 5.0), 1.5, 3)
    assert seen[:, 0].all() and not seen[:, 1].any()


def test_static_points_are_retriangulated_from_every_view_that_sees_them():
    from mvt4g.camera import ViewCameras
    from mvt4g.tracks.flow.static_points import refine_static
    from mvt4g.tracks.projection import project_all

    K = Intrinsics.from_fov(50.0, 80, 48).K
    still = np.stack([look_at([0.0, -1.0, -4.0], [0, 0, 0])] * 4)  # a camera that stands: no depth
    side = np.stack([look_at([2.0 + 0.1 * t, -1.0, -3.5], [0, 0, 0]) for t in range(4)])
    cams = [ViewCameras(80, 48, K, still), ViewCameras(80, 48, K, side)]
    X = np.array([[0.3, 0.1, 0.5], [-0.2, 0.2, 1.0]])
    exact, _ = project_all(cams, X)
    guess = X + np.array([[0.0, 0.0, 0.3], [0.0, 0.0, -0.2]])  # a wrong depth
    guess_proj, guess_front = project_all(cams, guess)
    tracks = exact.copy()
    tracks[1, :, 1, 1] += 4.0 * np.arange(4)  # view 1 drifts off the second point: no point fits it all
    visible = np.ones((2, 4, 2), bool)
    world, proj, _ = refine_static(cams, tracks, visible, np.ones(2, bool), guess, guess_proj, guess_front, 1.5)
    np.testing.assert_allclose(world[0], X[0], atol=1e-9)  # seen from both views: the true point
    np.testing.assert_allclose(proj[:, :, 0], exact[:, :, 0], atol=1e-6)
    np.testing.assert_array_equal(world[1], guess[1])  # observations disagree: the old estimate stays


def test_first_run_keeps_the_unbroken_stretch_through_the_start_frame():
    from mvt4g.tracks.flow.static_points import first_run

    ok = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0], [1, 0, 1, 1, 1], [0, 0, 0, 0, 1]], bool)
    got = first_run(ok, np.array([0, 2, 4, 4]))
    want = np.array([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], bool)
    np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_lost_chains_are_picked_up_again_by_direct_flow(shared_data):
    """One frame of noise breaks every chain; flow straight from the start frame finds the points again."""
    scene = planar_scene(_texture(shared_data), views=1, frames=9, height=64, width=96, seed=2, motion=0.15)
    video = scene.videos[0].copy()
    video[2] = np.random.default_rng(0).integers(0, 255, video[2].shape, dtype=np.uint8)
    q = grid_queries(64, 96, [0], [0], (6, 8))
    exact, inside = scene.exact_tracks(q)
    config = FlowConfig(direct_stride=4)
    flows = view_flows(video, config)
    path, ok = chain_tracks(flows, np.zeros(len(q), int), q[:, 2:4], config, direct_starts={0})
    _, plain_ok = chain_tracks(flows, np.zeros(len(q), int), q[:, 2:4], config)
    assert plain_ok[3:].mean() < 0.1  # the noise frame breaks the plain chains for good
    assert ok[3].mean() < 0.1  # still lost until the next direct frame (0 + 4)
    for t in (4, 8):
        assert ok[t].mean() > 0.7, ok[t].mean()
        good = ok[t] & inside[0, t]
        err = np.linalg.norm(path[t, good] - exact[0, t, good], axis=1)
        assert np.median(err) < 0.3 and np.quantile(err, 0.9) < 1.0, err
    assert ok[5:8].mean() > 0.6  # and chained on from there


def test_multiview_static_fit_recovers_static_points_and_rejects_moving_ones():
    from mvt4g.camera import ViewCameras
    from mvt4g.tracks.flow.static_points import fit_multiview
    from mvt4g.tracks.projection import project_all

    K = Intrinsics.from_fov(50.0, 80, 48).K
    still = np.stack([look_at([0.0, -1.0, -4.0], [0, 0, 0])] * 5)  # no own parallax
    side = np.stack([look_at([2.0, -1.0, -3.5 + 0.01 * t], [0, 0, 0]) for t in range(5)])
    cams = [ViewCameras(80, 48, K, still), ViewCameras(80, 48, K, side)]
    X = np.array([[0.3, 0.1, 0.5], [-0.2, 0.2, 1.0], [0.1, -0.1, 0.2], [0.0, 0.0, 0.0]])
    tracks, _ = project_all(cams, X)
    # Track 1 moves 0.2 m per frame (its observations at each instant are still consistent).
    for t in range(5):
        moved, _ = project_all(cams, X[1:2] + [0.2 * t, 0.0, 0.0])
        tracks[:, t, 1] = moved[:, t, 0]
    tracks[0, 4, 0] += 6.0  # one drifted observation of track 0: an outlier, not a veto
    visible = np.ones((2, 5, 4), bool)
    visible[1, :, 2] = False  # track 2 is seen by one view only: depth unknown
    visible[:, 1:, 3] = False  # track 3 is seen at one instant only: a moving point would fit too
    world, holds, inliers = fit_multiview(cams, tracks, visible, np.ones(4, bool), 1.5, 3, 0.8)
    assert holds.tolist() == [True, False, False, False]
    np.testing.assert_allclose(world[0], X[0], atol=1e-6)
    assert not inliers[0, 4, 0] and inliers[:, :4, 0].all()
    # Not a candidate: never fitted.
    _, holds, _ = fit_multiview(cams, tracks, visible, np.array([False, True, True, True]), 1.5, 3, 0.8)
    assert not holds.any()


@pytest.mark.slow
def test_lost_points_that_followed_the_sweep_plane_get_its_projection(shared_data):
    """View 0 turns to noise after frame 1: chains there are lost after a step that followed the
    sweep plane (too few frames to prove the point static); their best guess is the plane point's
    projection, which on a plane is exact, and nothing is claimed visible there (the multi-view
    static fit, which would place them too, is off here)."""
    scene = planar_scene(_texture(shared_data), views=2, frames=6, height=64, width=96, seed=5)
    rng = np.random.default_rng(0)
    scene.videos[0][2:] = rng.integers(0, 255, scene.videos[0][2:].shape, dtype=np.uint8)
    q = grid_queries(64, 96, [0], [0], (6, 8))
    exact, inside = scene.exact_tracks(q)
    errors = {}
    for fallback in (True, False):
        tracks, visible, _ = flow_tracks(scene.videos, scene.cameras, q, FlowConfig(plane_fallback=fallback, multiview_static=False))
        keep = inside[0, 3:]
        errors[fallback] = np.linalg.norm(tracks[0, 3:] - exact[0, 3:], axis=-1)[keep]
        assert visible[0, 3:].mean() < 0.05
    assert np.median(errors[True]) < 1.0, np.median(errors[True])
    assert np.median(errors[False]) > 3.0, np.median(errors[False])


def test_plane_sweep_rival_is_the_best_score_away_from_the_winner():
    from mvt4g.tracks.flow.association import _NEAR, _refine

    rng = np.random.default_rng(1)
    agg = rng.uniform(-1, 1, (13, 5, 7)).astype(np.float32)
    agg[:, 0, 0] = np.linspace(-1, 1, 13)  # winner at the last plane
    top, _, rival = _refine(agg, np.linspace(0.1, 1.0, 13))
    best = agg.argmax(0)
    for r in range(5):
        for c in range(7):
            far = [agg[i, r, c] for i in range(13) if abs(i - best[r, c]) > _NEAR]
            assert rival[r, c] == max(far)
            assert top[r, c] == agg[:, r, c].max()


@pytest.mark.slow
def test_lost_cross_view_chains_are_associated_again_at_a_later_key_frame(shared_data):
    """View 1's frame 1 is noise: its chains from key frame 0 break there; association again at
    key frame 2 (from view 0's track there) restores them, at the right place."""
    scene = planar_scene(_texture(shared_data), views=2, frames=5, height=64, width=96, seed=5)
    scene.videos[1][1] = np.random.default_rng(0).integers(0, 255, scene.videos[1][1].shape, dtype=np.uint8)
    q = grid_queries(64, 96, [0], [0], (6, 8))
    exact, inside = scene.exact_tracks(q)
    base = {"association_stride": 2, "direct_stride": 0, "multiview_static": False}
    again, visible_again, report = flow_tracks(scene.videos, scene.cameras, q, FlowConfig(reassociate_stride=1, **base))
    _, visible_once, _ = flow_tracks(scene.videos, scene.cameras, q, FlowConfig(reassociate_stride=0, **base))
    assert report.reassociated > 0
    assert visible_once[1, 2:].mean() < 0.1
    in_view = inside[1, 2:]
    assert visible_again[1, 2:][in_view].mean() > 0.6, visible_again[1, 2:][in_view].mean()
    seen = visible_again[1, 2:] & inside[1, 2:]
    err = np.linalg.norm(again[1, 2:] - exact[1, 2:], axis=-1)[seen]
    assert np.median(err) < 0.5 and np.quantile(err, 0.9) < 1.5, err


def _moving_rig(T: int = 6):
    """Four cameras around the origin (the first stands still), and two points moving on straight lines."""
    from mvt4g.camera import ViewCameras

    K = Intrinsics.from_fov(50.0, 80, 48).K
    still = np.stack([look_at([0.0, -1.0, -4.0], [0, 0, 0])] * T)
    others = [np.stack([look_at([3.0 * np.sin(a), -1.0 - 0.05 * t, -4.0 * np.cos(a)], [0, 0, 0]) for t in range(T)]) for a in (0.5, -0.6, 1.1)]
    cams = [ViewCameras(80, 48, K, p) for p in [still, *others]]
    t = np.arange(T)[:, None, None]
    world = np.array([[0.3, 0.1, 0.5], [-0.2, 0.2, 0.0]])[None] + t * np.array([[0.1, 0.0, -0.15], [-0.05, 0.05, 0.1]])[None]
    return cams, world  # world: [T, 2, 3]


def test_moving_points_are_triangulated_frame_by_frame_and_outliers_drop_out():
    from mvt4g.tracks.flow.dynamic_points import (
        project_per_frame,
        triangulate_per_frame,
    )

    cams, world = _moving_rig()
    exact, front = project_per_frame(cams, world)  # [4, T, 2, 2]
    assert front.all()
    tracks = exact.copy()
    tracks[2, 3, 0] += [7.0, -5.0]  # view 2 drifted off point 0 at frame 3
    use = np.ones(exact.shape[:3], bool)
    use[1:, 4, 1] = False  # point 1 seen by its query view only at frame 4: no triangulation
    got, solved, kept = triangulate_per_frame(cams, tracks, use, 3.0)
    assert not solved[4, 1] and solved.sum() == solved.size - 1
    np.testing.assert_allclose(got[solved], world[solved], atol=1e-6)
    assert not kept[2, 3, 0] and kept[[0, 1, 3], 3, 0].all()  # the drifted view alone is dropped
    np.testing.assert_array_equal(kept[:, :, 1], use[:, :, 1] & solved[None, :, 1])  # kept: only where solved


def test_lost_views_of_a_moving_point_take_the_projection_of_its_triangulation():
    from mvt4g.tracks.flow.dynamic_points import dynamic_points, project_per_frame

    cams, world = _moving_rig()
    exact, _ = project_per_frame(cams, world)
    V, T, N = exact.shape[:3]
    tracks = exact + 20.0  # lost chains wander off
    visible = np.zeros((V, T, N), bool)
    tracks[0], visible[0] = exact[0], True  # the query view (still camera, no depth of its own) holds
    for v, frames in ((1, [0, 1]), (2, [5]), (3, [0])):
        tracks[v, frames], visible[v, frames] = exact[v, frames], True  # others see a few frames only
    visible[1, 1, 1] = False  # point 1: two views at frames 0 and 5 only
    out, vis, dropped = dynamic_points(cams, tracks, visible, np.ones(N, bool), np.zeros(N, int), 3.0)
    assert dropped == 0
    np.testing.assert_array_equal(vis, visible)  # visibility is never claimed from a projection
    # Frames between the triangulated ones: the query-view ray at an interpolated depth. The
    # still camera sees the straight-line motion at a depth linear in time: exact everywhere.
    np.testing.assert_allclose(out, exact, atol=1e-6)
    # Points not marked as candidates are left alone.
    out2, _, _ = dynamic_points(cams, tracks, visible, np.array([True, False]), np.zeros(N, int), 3.0)
    np.testing.assert_array_equal(out2[:, :, 1], tracks[:, :, 1])
    np.testing.assert_allclose(out2[:, :, 0], exact[:, :, 0], atol=1e-6)


def test_lost_chains_follow_the_local_motion_of_neighbours_that_moved_like_them():
    from mvt4g.tracks.flow.neighbours import last_held, neighbour_fill

    T = 8
    # An object (a 5 x 5 patch of chains) turning and sliding in the image; static background
    # chains right next to it.
    gx, gy = np.meshgrid(np.arange(5) * 3.0, np.arange(5) * 3.0)
    obj0 = np.stack([gx.ravel(), gy.ravel()], 1) + [40.0, 20.0]
    centre = obj0.mean(0)
    bg = np.stack([np.full(6, 56.0), 20.0 + 2.4 * np.arange(6)], 1)  # 4 px right of the object's edge
    tracks = np.zeros((T, len(obj0) + len(bg), 2))
    for t in range(T):
        a = 0.04 * t
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        tracks[t, : len(obj0)] = (obj0 - centre) @ R.T + centre + [1.5 * t, 0.5 * t]
        tracks[t, len(obj0) :] = bg
    exact = tracks.copy()
    ok = np.ones(tracks.shape[:2], bool)
    lost, at_once = 14, 12  # object chains: one lost from frame 4 on, one at the first step
    ok[4:, lost] = False
    ok[1:, at_once] = False
    tracks[4:, lost] += 9.0  # where the unchecked chain strayed
    tracks[1:, at_once] += 9.0
    start = np.zeros(tracks.shape[1], int)
    np.testing.assert_array_equal(last_held(ok, start)[:, lost], [0, 1, 2, 3, 3, 3, 3, 3])
    out, filled = neighbour_fill(tracks, ok, start, np.ones(tracks.shape[1], bool), radius=12.0, agree_px=0.7)
    assert filled[4:, lost].all() and filled.sum() == T - 4  # the chain lost at once has no motion to compare
    # The object's motion is affine in the image: its neighbours predict the lost point exactly
    # (the background chains next to it did not move like it and take no part).
    np.testing.assert_allclose(out[:, lost], exact[:, lost], atol=1e-4)
    np.testing.assert_array_equal(out[:, at_once], tracks[:, at_once])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_last_held_matches_a_frame_by_frame_walk(T, N, seed):
    from mvt4g.tracks.flow.neighbours import last_held

    rng = np.random.default_rng(seed)
    ok = rng.random((T, N)) < 0.6
    start = rng.integers(0, T, N)
    want = np.full((T, N), -1)
    for n in range(N):  # walk away from the start frame in both directions, remembering the last held frame
        for frames in (range(start[n], T), range(start[n], -1, -1)):
            held = -1
            for t in frames:
                held = t if ok[t, n] else held
                want[t, n] = held
    np.testing.assert_array_equal(last_held(ok, start), want)


def test_reassociation_frames_add_the_frames_swept_in_every_view():
    from mvt4g.tracks.flow.pipeline import reassociation_frames

    assert reassociation_frames(21, 10) == [0, 10, 20]
    assert reassociation_frames(21, 10, None) == [0, 10, 20]
    # Frame 5 is swept in every view, 15 in one only (it would cost sweeps of the others).
    assert reassociation_frames(21, 10, [{0, 5, 15}, {0, 5}, {5, 10}]) == [0, 5, 10, 20]
    assert reassociation_frames(8, 10, [{3}, {3}]) == [0, 3, 7]


def test_associator_lists_the_frames_it_has_swept():
    from mvt4g.tracks.flow.association import Associator

    texture = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    scene = planar_scene(texture, views=2, frames=4, height=32, width=48, seed=1)
    assoc = Associator(scene.videos, scene.cameras)
    assert assoc.swept_frames(0) == set()
    assoc.associate(0, 1, 2, np.array([[20.5, 15.5]]))  # sweeps view 0 and, for the left-right check, view 1
    assert assoc.swept_frames(0) == {2} and assoc.swept_frames(1) == {2}
