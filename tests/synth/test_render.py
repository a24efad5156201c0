"""The synthetic-scene renderer against analytic geometry and a naive per-pixel reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.pose import look_at
from mvt4g.camera.rig import ViewCameras
from mvt4g.synth.naive import first_local_hit, naive_depth_masks
from mvt4g.synth.raycast import intersect_local
from mvt4g.synth.render import render_scene, render_view
from mvt4g.synth.sampling import sample_scene
from mvt4g.synth.scene import SURF_FIRST_OBJECT, Motion, Scene, SceneObject
from mvt4g.synth.textures import Texture
from mvt4g.synth.tracks_gt import track_queries
from mvt4g.threads import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Small renders: one thread avoids oversubscribing a shared machine (restored afterwards).
    with torch_threads(1):
        yield


PLAIN = Texture("mottled", (0.8, 0.2, 0.2), (0.2, 0.2, 0.8), "red", "blue", 0.3)
GROUND = Texture("tiles", (0.3, 0.3, 0.3), (0.8, 0.8, 0.8), "grey", "white", 1.0)
SKY = Texture("sky", (0.5, 0.7, 0.9), (0.3, 0.4, 0.3), "blue", "green", 10.0)


def hand_scene(objects, cameras: dict[str, tuple], frames: int, height: int = 60, width: int = 80) -> Scene:
    """A scene with the given objects and static cameras ``name -> (eye, target, fov_x_deg)``."""
    scene = Scene(objects=objects, ground=GROUND, dome=SKY, dome_radius=50.0, light_dir=(0.3, 0.2, 0.93), ambient=0.4,
                  noise_seed=1, frames=frames, height=height, width=width)  # fmt: skip
    for name, (eye, target, fov) in cameras.items():
        pose = look_at(eye, target, up=(0, 0, 1))
        scene.cameras[name] = ViewCameras(width, height, Intrinsics.from_fov(fov, width, height).K, np.repeat(pose[None], frames, 0))
    return scene


def project(scene: Scene, view: str, frame: int, point) -> tuple[float, float, float]:
    """Pixel (x, y) and z-depth of a world point, in float64 numpy (independent of the renderer)."""
    cam = scene.cameras[view]
    c2w = cam.c2w[frame]
    p_cam = c2w[:3, :3].T @ (np.asarray(point, float) - c2w[:3, 3])
    k = cam.K[frame]
    return k[0, 0] * p_cam[0] / p_cam[2] + k[0, 2], k[1, 1] * p_cam[1] / p_cam[2] + k[1, 2], p_cam[2]


def test_known_point_projects_where_the_render_shows_it():
    centre = np.array([0.3, -0.2, 0.6])
    radius = 0.12
    ball = SceneObject("sphere", (radius,), PLAIN, Motion(start=tuple(centre)))
    scene = hand_scene([ball], {"cam01": ((5.0, 1.0, 1.6), (0.0, 0.0, 0.5), 50.0)}, frames=1)
    r = render_view(scene, "cam01")
    x, y, z_centre = project(scene, "cam01", 0, centre)
    u, v = math.floor(x), math.floor(y)
    assert r.masks[0, v, u] == 1
    # Analytic depth of the pixel-centre ray: solve |o + t d - c|^2 = r^2 with d = R K^-1 (u+.5, v+.5, 1).
    cam = scene.cameras["cam01"]
    k, c2w = cam.K[0], cam.c2w[0]
    d = c2w[:3, :3] @ np.array([(u + 0.5 - k[0, 2]) / k[0, 0], (v + 0.5 - k[1, 2]) / k[1, 1], 1.0])
    oc = c2w[:3, 3] - centre
    a, b, c = d @ d, 2 * d @ oc, oc @ oc - radius**2
    t = (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert r.depth[0, v, u] == pytest.approx(t, rel=1e-5)
    assert z_centre - radius - 1e-6 <= t <= z_centre  # the front of the ball, nearer than its centre
    # The ball covers about pi (f r / z)^2 pixels.
    f = k[0, 0]
    assert (r.masks[0] == 1).sum() == pytest.approx(math.pi * (f * radius / z_centre) ** 2, rel=0.15)
    # A ground pixel: the ray meets z = 0 at an analytic depth; depth is finite everywhere (dome).
    gv, gu = scene.height - 1, 2
    d = c2w[:3, :3] @ np.array([(gu + 0.5 - k[0, 2]) / k[0, 0], (gv + 0.5 - k[1, 2]) / k[1, 1], 1.0])
    assert r.masks[0, gv, gu] == 0
    assert r.depth[0, gv, gu] == pytest.approx(-c2w[2, 3] / d[2], rel=1e-5)
    assert np.isfinite(r.depth).all() and r.depth.max() < 2 * scene.dome_radius


def occluder_scene() -> Scene:
    """A ball at the origin and a box that slides across in front of it (seen by cam01) at mid-clip.

    cam02 looks from the side: the box never hides the ball's front point from it.
    """
    ball = SceneObject("sphere", (0.4,), PLAIN, Motion(start=(0.0, 0.0, 0.5)))
    box = SceneObject("box", (0.5, 0.2, 0.6), PLAIN, Motion(start=(-3.0, -3.0, 0.6), velocity=(6.0, 0.0, 0.0)))
    # cam02 looks down from above the box's height: its view of the ball is never blocked.
    cams = {"cam01": ((0.0, -6.0, 0.5), (0.0, 0.0, 0.5), 40.0), "cam02": ((4.0, -4.0, 3.0), (0.0, 0.0, 0.5), 40.0)}
    return hand_scene([ball, box], cams, frames=5)


def test_visibility_flips_behind_an_occluder():
    scene = occluder_scene()
    front = np.array([0.0, -0.4, 0.5])  # the ball's point nearest cam01
    x, y, _ = project(scene, "cam01", 0, front)
    tracks = track_queries(scene, np.array([[0, 0, x, y]]))
    assert tracks.surface[0] == SURF_FIRST_OBJECT  # the query hit the ball
    np.testing.assert_allclose(tracks.local[0], front - [0, 0, 0.5], atol=1e-6)
    # Frame 2 is mid-clip: the box sits at x = 0, between cam01 and the ball.
    assert tracks.visible[0, :, 0].tolist() == [True, True, False, True, True]
    assert tracks.visible[1, :, 0].all()  # cam02 sees past the box
    # The render agrees: at frame 2 cam01 shows the box (id 2) where the point projects.
    renders = render_scene(scene)
    u, v = (int(c) for c in np.floor(tracks.tracks[0, 2, 0]))
    assert renders["cam01"].masks[2, v, u] == 2
    assert renders["cam01"].masks[0, v, u] == 1
    assert renders["cam01"].depth[2, v, u] < tracks.depth[0, 2, 0] - 1.0  # the box is metres nearer


def test_back_of_an_object_is_not_visible():
    scene = occluder_scene()
    normal = np.array([1.0, 0.3, 0.0]) / np.linalg.norm([1.0, 0.3, 0.0])
    side = np.array([0.0, 0.0, 0.5]) + 0.4 * normal  # faces cam02, turned 17 deg away from cam01
    x, y, _ = project(scene, "cam02", 0, side)
    tracks = track_queries(scene, np.array([[1, 0, x, y]]))
    np.testing.assert_allclose(tracks.local[0], 0.4 * normal, atol=1e-6)
    assert tracks.visible[1, :, 0].all()
    xa, ya = tracks.tracks[0, 0, 0]
    assert 0 <= xa < scene.width and 0 <= ya < scene.height  # in cam01's image, yet hidden by the ball itself
    assert not tracks.visible[0, :, 0].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_render_matches_naive_per_pixel_reference(seed):
    scene = sample_scene(seed, views=2, frames=3, height=18, width=30)
    for view in scene.views:
        fast = render_view(scene, view)
        depth, masks = naive_depth_masks(scene, view)
        agree = fast.masks == masks
        assert agree.mean() >= 0.999
        np.testing.assert_allclose(fast.depth[agree], depth[agree], rtol=2e-5)


vec3 = st.tuples(*[st.floats(-1.0, 1.0, allow_nan=False)] * 3)


@settings(max_examples=150, deadline=None)
@given(
    shape=st.sampled_from(["sphere", "box", "cylinder"]),
    size=st.tuples(*[st.floats(0.1, 1.0)] * 3),
    origin_dir=vec3,
    aim=vec3,
    dist=st.floats(2.0, 6.0),
)
def test_primitive_intersections_match_textbook_formulas(shape, size, origin_dir, aim, dist):
    """Vectorised closest-approach / slab / interval intersections == the naive per-face formulas."""
    size = {"sphere": size[:1], "box": size, "cylinder": size[:2]}[shape]
    od = np.asarray(origin_dir, float)
    assume(np.linalg.norm(od) > 0.1)
    o = od / np.linalg.norm(od) * dist
    d = np.asarray(aim, float) * 0.8 - o  # aim near the object
    assume(np.linalg.norm(d) > 1e-3)

    def fast(dd):
        comps = lambda v: tuple(torch.tensor([float(c)], dtype=torch.float64) for c in v)
        return float(intersect_local(shape, tuple(size), comps(o), comps(dd))[0])

    t = fast(d)
    # Skip grazing rays, whose hit or miss flips under a 1e-7 nudge of the direction.
    nudged = [fast(d + 1e-7 * np.linalg.norm(d) * e) for e in np.eye(3)]
    assume(all(math.isinf(n) == math.isinf(t) for n in nudged))
    ref = first_local_hit(shape, tuple(size), o, d)
    # Skip rays through an edge (a cylinder's rim, a box's edge): rounding decides which face the
    # per-face reference sees them enter by, and it may see neither and report the exit.
    ref_nudged = [first_local_hit(shape, tuple(size), o, d + 1e-7 * np.linalg.norm(d) * e) for e in np.eye(3)]
    assume(all(math.isinf(r) == math.isinf(ref) and (math.isinf(r) or abs(r - ref) < 1e-5) for r in ref_nudged))
    if math.isinf(t):
        assert math.isinf(ref)
    else:
        assert ref == pytest.approx(t, rel=1e-9, abs=1e-9)


def test_shading_is_view_independent_and_textures_move_with_objects():
    """The same surface point has the same colour in two views and after the object moved."""
    ball = SceneObject("sphere", (0.5,), PLAIN, Motion(start=(0.0, 0.0, 0.5), velocity=(0.5, 0.0, 0.0),
                                                      axis=(0.0, 0.0, 1.0), spin=1.0))  # fmt: skip
    cams = {"cam01": ((0.0, -5.0, 1.0), (0.0, 0.0, 0.5), 30.0), "cam02": ((3.5, -3.5, 1.5), (0.0, 0.0, 0.5), 30.0)}
    scene = hand_scene([ball], cams, frames=3, height=120, width=160)
    scene.light_dir = (0.0, 0.0, 1.0)  # the same for the ball's front seen by both cameras
    renders = render_scene(scene, shadows=False)
    x, y, _ = project(scene, "cam01", 0, [0.0, -0.5 * math.sqrt(0.5), 0.5 + 0.5 * math.sqrt(0.5)])
    tracks = track_queries(scene, np.array([[0, 0, x, y]]))
    colours = []
    for v, view in enumerate(scene.views):
        for f in range(scene.frames):
            if tracks.visible[v, f, 0]:
                px, py = tracks.tracks[v, f, 0]
                colours.append(renders[view].rgb[f, int(py), int(px)].astype(int))
    assert len(colours) >= 4
    spread = np.ptp(np.stack(colours), axis=0).max()
    assert spread <= 40  # nearest-pixel sampling of a textured surface: same colour up to texture detail


def test_supersampling_keeps_depth_and_masks_exact():
    scene = sample_scene(4, views=1, frames=2, height=24, width=40)
    plain = render_view(scene, "cam01")
    aa = render_view(scene, "cam01", supersample=2)
    np.testing.assert_array_equal(plain.masks, aa.masks)
    np.testing.assert_array_equal(plain.depth, aa.depth)
    diff = np.abs(plain.rgb.astype(int) - aa.rgb.astype(int))
    assert 0 < diff.mean() < 20  # smoother, not different
