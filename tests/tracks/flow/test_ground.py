"""Static-scene geometry for the flow method: the world's down refined from the ground (mvt4g.tracks.flow.ground, Associator.refine_down) and lost points placed on the static surface around them (mvt4g.tracks.flow.local_plane)."""

from __future__ import annotations

import numpy as np
import pytest

from mvt4g.camera import Intrinsics, look_at
from mvt4g.camera.rig import ViewCameras
from mvt4g.synth.render import render_scene
from mvt4g.synth.sampling import sample_scene
from mvt4g.tracks.flow.association import Associator
from mvt4g.tracks.flow.config import FlowConfig
from mvt4g.tracks.flow.ground import GroundConfig, fit_ground, ground_plane, scene_scale
from mvt4g.tracks.flow.local_plane import local_plane_points, on_plane


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0))))


def _rotation_about(axis: np.ndarray, deg: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _ring_cameras(n: int = 4, radius: float = 5.0) -> list[ViewCameras]:
    intr = Intrinsics.from_fov(60.0, 160, 96)
    cams = []
    for i in range(n):
        angle = 2 * np.pi * i / n
        eye = np.array([radius * np.cos(angle), radius * np.sin(angle), 0.0])
        c2w = look_at(eye, np.zeros(3), up=np.array([0.0, 0.0, 1.0]))[None]
        cams.append(ViewCameras(160, 96, intr.K[None], c2w))
    return cams


def test_scene_scale_is_the_distance_to_the_point_the_cameras_look_at():
    assert abs(scene_scale(_ring_cameras(radius=5.0)) - 5.0) < 1e-9


def test_ground_plane_normal_is_recovered_among_objects_and_clutter():
    rng = np.random.default_rng(0)
    down = _rotation_about(np.array([1.0, 0.3, 0.0]), 7.0) @ np.array([0.0, 0.0, -1.0])  # a tilted ground
    e1 = np.cross(down, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(down, e1)
    ground = rng.uniform(-6, 6, (900, 2)) @ np.stack([e1, e2]) + rng.normal(0, 0.005, (900, 1)) * down
    boxes = rng.uniform(-1, 1, (500, 3)) + np.array([1.0, 1.0, 0.0]) - 1.2 * down  # an object above it
    clutter = rng.uniform(-8, 8, (400, 3))
    points = rng.permutation(np.concatenate([ground, boxes, clutter]))
    prior = np.array([0.0, 0.0, -1.0])  # the cameras' guess, 7 degrees off
    normal, on_plane, count = fit_ground(points, prior, tolerance=0.05, config=GroundConfig())
    assert abs((on_plane - ground.mean(0)) @ down) < 0.01
    assert _angle_deg(normal, down) < 0.2
    assert normal @ prior > 0  # signed like the prior
    assert 880 <= count <= 1000


def test_a_wall_is_not_taken_for_the_ground():
    rng = np.random.default_rng(1)
    wall = np.concatenate([np.zeros((600, 1)), rng.uniform(-5, 5, (600, 2))], axis=1)  # the plane x = 0
    assert fit_ground(wall, np.array([0.0, 0.0, -1.0]), 0.05, GroundConfig()) is None
    cams = _ring_cameras()
    assert ground_plane(wall, np.array([0.0, 0.0, -1.0]), cams) is None


def test_too_few_ground_points_leave_the_cameras_estimate():
    rng = np.random.default_rng(2)
    ground = np.concatenate([rng.uniform(-5, 5, (50, 2)), np.zeros((50, 1))], axis=1)
    clutter = rng.uniform(-5, 5, (2000, 3))
    assert ground_plane(np.concatenate([ground, clutter]), np.array([0.0, 0.0, -1.0]), _ring_cameras()) is None


@pytest.mark.slow
def test_plane_sweep_refines_a_biased_down_direction():
    # A synth scene (first 3 frames of scene 0 of the development seed 99); the cameras' estimate
    # of down is replaced by one 8 degrees off the true one, (0, 0, -1), as rolled cameras give.
    scene = sample_scene(np.random.SeedSequence([99, 0]).spawn(2)[0], views=4, frames=21, height=96, width=160)
    views = list(scene.cameras)
    cameras = [ViewCameras(c.width, c.height, c.K[:3], c.c2w[:3]) for c in scene.cameras.values()]
    scene.cameras = dict(zip(views, cameras))
    scene.frames = 3
    videos = [r.rgb for r in render_scene(scene).values()]
    truth = np.array([0.0, 0.0, -1.0])
    config = FlowConfig()
    assoc = Associator(videos, cameras, config.stereo, config.stereo_max_side)
    assoc.down = _rotation_about(np.array([1.0, 1.0, 0.0]), 8.0) @ truth
    stale = assoc.plane_map(0, 0)
    change = assoc.refine_down(0)
    assert change is not None and change > 7.0
    assert _angle_deg(assoc.down, truth) < 0.5
    assert assoc.plane_map(0, 0) is not stale  # swept again with the new planes
    assert assoc.refine_down(0) < 0.5  # and the ground agrees with it now: nothing changes


def _front_camera() -> list[ViewCameras]:
    intr = Intrinsics.from_fov(60.0, 160, 96)
    c2w = look_at(np.array([0.0, -6.0, 2.0]), np.array([0.0, 0.0, 0.0]), up=np.array([0.0, 0.0, 1.0]))[None]
    return [ViewCameras(160, 96, intr.K[None], c2w)]


def _on_ground(cam: ViewCameras, xy: np.ndarray) -> np.ndarray:
    """World points of pixels ``xy`` on the ground z = 0."""
    rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.linalg.inv(cam.K[0]).T @ cam.c2w[0, :3, :3].T
    centre = cam.c2w[0, :3, 3]
    return centre + (-centre[2] / rays[:, 2])[:, None] * rays


def test_a_lost_point_inside_static_ground_lands_on_the_ground():
    cams = _front_camera()
    ys, xs = np.mgrid[60:90:3, 40:120:3]
    qxy = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64) + 0.5
    N = len(qxy)
    world = _on_ground(cams[0], qxy)
    static = np.ones(N, bool)
    inner = np.flatnonzero((np.abs(qxy[:, 0] - 80.5) < 2) & (np.abs(qxy[:, 1] - 75.5) < 2))[0]
    edge = int(np.argmin(qxy[:, 0] + qxy[:, 1]))  # the top-left corner: neighbours to one side only
    static[[inner, edge]] = False
    zeros = np.zeros(N, np.int64)
    out, found = local_plane_points(cams, np.where(static[:, None], world, 0.0), static, ~static, zeros, zeros, qxy)
    assert found[inner] and not found[edge]
    assert np.linalg.norm(out[inner] - world[inner]) < 1e-6


def test_no_plane_is_guessed_across_a_depth_jump():
    cams = _front_camera()
    ys, xs = np.mgrid[60:90:3, 40:120:3]
    qxy = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64) + 0.5
    world = _on_ground(cams[0], qxy)
    centre = cams[0].c2w[0, :3, 3]
    # Every other row is twice as far along its ray: a mix of two surfaces, not one plane.
    far = (np.rint((qxy[:, 1] - 60.5) / 3).astype(int) % 2).astype(bool)
    world[far] = centre + 2.0 * (world[far] - centre)
    static = np.ones(len(qxy), bool)
    inner = np.flatnonzero((np.abs(qxy[:, 0] - 80.5) < 2) & (np.abs(qxy[:, 1] - 75.5) < 2))[0]
    static[inner] = False
    zeros = np.zeros(len(qxy), np.int64)
    _, found = local_plane_points(cams, world, static, ~static, zeros, zeros, qxy)
    assert not found[inner]


def test_rays_meet_the_ground_below_the_horizon_only():
    intr = Intrinsics.from_fov(60.0, 160, 96)
    level = look_at(np.array([0.0, -6.0, 2.0]), np.array([0.0, 0.0, 2.0]), up=np.array([0.0, 0.0, 1.0]))[None]
    cams = [ViewCameras(160, 96, intr.K[None], level)]  # looking level: the upper half is sky
    qxy = np.array([[80.5, 80.5], [20.5, 70.5], [80.5, 30.5]])
    zeros = np.zeros(3, np.int64)
    world, hit = on_plane(cams, np.array([0.0, 0.0, -1.0]), np.zeros(3), zeros, zeros, qxy)
    assert hit.tolist() == [True, True, False]
    np.testing.assert_allclose(world[:2], _on_ground(cams[0], qxy[:2]), atol=1e-9)
