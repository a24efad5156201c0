"""A tiny exact ray-cast scene for the evaluation tests (independent of ``mvt4g.synth``), and its checks.

The scene: a textured ground plane (y = 1.5, OpenCV y points down), a textured back wall
(z = 12) and a few textured axis-aligned boxes around the point (0, 0, 4) that the
ReCamMaster presets look at; optionally one box that rises over the clip (a moving
object). Colours are view-independent (texture x a fixed per-face brightness), so every
pixel is a pure function of the 3D point it sees: the geometry of the images is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.scene import (
    GROUND_Y,
    make_texture,
    render_frame,
    render_preset,
    render_video,
)

from mvt4g.camera import Intrinsics

# ----------------------------------------------------------------------------- checks of the renderer


def test_depths_match_the_analytic_scene():
    """Depth at chosen pixels equals the analytic intersection (the renderer's geometry is exact)."""
    intr = Intrinsics.from_fov(60.0, 208, 120)
    box = (np.array([0.0, 0.0, 4.0]), np.array([0.6, 0.6, 0.6]))
    _, depth = render_frame(intr.K, np.eye(4), 120, 208, make_texture(), [box], supersample=1, depth=True)
    assert depth[60, 104] == pytest.approx(3.4)  # front face of the box
    # A ground pixel: the ray through (u, v) meets y = 1.5 at z = 1.5 fy / (v + 0.5 - cy).
    v = 110
    assert depth[v, 5] == pytest.approx(GROUND_Y * intr.fy / (v + 0.5 - intr.cy))
    # The box's left edge is where the camera model puts it: x = -0.6 at z = 3.4.
    u_edge = intr.cx - intr.fx * 0.6 / 3.4
    assert depth[60, int(np.ceil(u_edge - 0.5))] == pytest.approx(3.4)
    assert depth[60, int(np.floor(u_edge - 0.5))] > 3.4


def test_static_camera_renders_identical_frames_and_moving_box_moves():
    c2w = np.stack([np.eye(4)] * 3)
    still, _ = render_video(c2w, 60, 104)
    assert np.array_equal(still[0], still[2])
    moving, _ = render_video(c2w, 60, 104, moving=True)
    assert not np.array_equal(moving[0], moving[2])


@pytest.mark.parametrize("name", ["arc-left", "pan-left"])
def test_preset_renders_differ_along_the_trajectory(name):
    video, _, _ = render_preset(name, frames=3, height=60, width=104)
    assert video.shape == (3, 60, 104, 3)
    assert np.abs(video[0].astype(int) - video[2].astype(int)).mean() > 5
