"""Exact multi-view tracks of synthetic scenes: consistency with the renders, events, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import map_coordinates, maximum_filter, minimum_filter

from mvt4g.synth import SynthSettings, build_scene, sample_queries
from mvt4g.synth.scene import SURF_FIRST_OBJECT
from mvt4g.threads import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def built():
    with torch_threads(1):
        settings = SynthSettings(views=3, frames=6, height=72, width=120, seed=11, points=1500)
        return build_scene(settings, 0)


def _interior(masks: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood shows one surface id: away from silhouettes."""
    return minimum_filter(masks, (1, 1, 3, 3)) == maximum_filter(masks, (1, 1, 3, 3))


def _bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample ``image [H, W, C]`` at continuous pixel positions ``xy [N, 2]`` (centres at +0.5)."""
    coords = [xy[:, 1] - 0.5, xy[:, 0] - 0.5]
    return np.stack([map_coordinates(image[..., c], coords, order=1, mode="nearest") for c in range(image.shape[-1])], 1)


def test_tracks_start_at_their_queries(built):
    _, _, tr = built
    q = tr.queries
    qv, qf, n = q[:, 0].astype(int), q[:, 1].astype(int), np.arange(len(q))
    assert tr.visible[qv, qf, n].all()
    np.testing.assert_allclose(tr.tracks[qv, qf, n], q[:, 2:], atol=1e-3)
    assert tr.tracks.shape == (3, 6, 1500, 2) and tr.tracks.dtype == np.float32
    assert np.isfinite(tr.tracks).all()


def test_visible_tracks_lie_on_the_rendered_surface(built):
    """Where a track is visible, the render shows its surface at its depth (away from edges)."""
    scene, renders, tr = built
    masks = np.stack([renders[v].masks for v in scene.views])
    depth = np.stack([renders[v].depth for v in scene.views])
    interior = _interior(masks)
    v, t, n = np.nonzero(tr.visible)
    col, row = np.floor(tr.tracks[v, t, n]).astype(int).T
    keep = interior[v, t, row, col]
    v, t, n, row, col = v[keep], t[keep], n[keep], row[keep], col[keep]
    assert len(n) > 1000
    want_id = np.maximum(tr.surface[n] - (SURF_FIRST_OBJECT - 1), 0)
    assert (masks[v, t, row, col] == want_id).all()
    # Nearest-pixel depth differs from the track's sub-pixel depth only by the surface slope.
    rel = np.abs(depth[v, t, row, col] - tr.depth[v, t, n]) / tr.depth[v, t, n]
    assert np.median(rel) < 0.01 and np.quantile(rel, 0.95) < 0.05


def test_colours_at_track_positions_agree_across_views(built):
    """A visible track shows the same colour in every view at one time (view-independent shading);
    the same comparison with the tracks shuffled (a wrong correspondence) differs a lot."""
    scene, renders, tr = built
    rgb = np.stack([renders[v].rgb for v in scene.views]).astype(np.float64)
    interior = _interior(np.stack([renders[v].masks for v in scene.views]))
    rng = np.random.default_rng(0)
    same, shuffled = [], []
    views, frames, _ = tr.visible.shape
    for t in range(frames):
        for a in range(views):
            for b in range(a + 1, views):
                ok = tr.visible[a, t] & tr.visible[b, t]
                for v in (a, b):
                    col, row = np.floor(tr.tracks[v, t]).astype(int).T
                    ok &= interior[v, t, row.clip(0, scene.height - 1), col.clip(0, scene.width - 1)]
                idx = np.nonzero(ok)[0]
                if len(idx) < 2:
                    continue
                ca = _bilinear(rgb[a, t], tr.tracks[a, t, idx])
                cb = _bilinear(rgb[b, t], tr.tracks[b, t, idx])
                same.append(np.abs(ca - cb).mean(1))
                shuffled.append(np.abs(ca - cb[rng.permutation(len(idx))]).mean(1))
    same, shuffled = np.concatenate(same), np.concatenate(shuffled)
    assert len(same) > 500
    assert np.median(same) < 8.0  # grey levels of 255
    assert np.median(same) * 4 < np.median(shuffled)


def test_track_visibility_sees_occlusions_and_frame_exits():
    """Sampled scenes contain what the ground truth must handle, in the reference view."""
    for index in range(3):
        scene, renders, tr = build_scene(SynthSettings(views=2, frames=9, height=48, width=80, seed=3, points=800), index)
        ref = 0
        # An object leaves or enters: it has pixels in some frame and none in another.
        counts = np.stack([(renders["cam01"].masks == k + 1).sum(axis=(1, 2)) for k in range(len(scene.objects))])
        assert ((counts > 0).any(axis=1) & (counts == 0).any(axis=1)).any()
        # Some object point is in the image but hidden at some frame (occluded), visible at another.
        x, y = tr.tracks[ref, ..., 0], tr.tracks[ref, ..., 1]
        inside = (x >= 0) & (x < scene.width) & (y >= 0) & (y < scene.height) & (tr.depth[ref] > 0)
        on_obj = tr.surface >= SURF_FIRST_OBJECT
        hidden = (inside & ~tr.visible[ref]).any(axis=0)
        seen = tr.visible[ref].any(axis=0)
        assert (on_obj & hidden & seen).any()


def test_sample_queries_covers_objects_and_stays_in_the_image():
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 3, 20, 30), dtype=np.uint8)
    masks[1, 2, 5:8, 10:14] = 4  # objects cover 12 of 3600 pixels
    q = sample_queries(rng, masks, 400, object_fraction=0.5)
    assert q.shape == (400, 4)
    assert ((q[:, 2] >= 0) & (q[:, 2] < 30) & (q[:, 3] >= 0) & (q[:, 3] < 20)).all()
    on = masks[q[:, 0].astype(int), q[:, 1].astype(int), q[:, 3].astype(int), q[:, 2].astype(int)] > 0
    assert 180 <= on.sum() <= 220
    none = sample_queries(rng, np.zeros_like(masks), 50)  # no objects: all uniform, still 50
    assert none.shape == (50, 4)


def test_same_seed_same_scene_other_seed_other_scene():
    s = SynthSettings(views=2, frames=4, height=32, width=48, seed=5, points=200)
    a = build_scene(s, 1)
    b = build_scene(s, 1)
    c = build_scene(SynthSettings(views=2, frames=4, height=32, width=48, seed=6, points=200), 1)
    for view in a[0].views:
        np.testing.assert_array_equal(a[1][view].rgb, b[1][view].rgb)
        np.testing.assert_array_equal(a[1][view].depth, b[1][view].depth)
        np.testing.assert_array_equal(a[1][view].masks, b[1][view].masks)
    np.testing.assert_array_equal(a[2].tracks, b[2].tracks)
    np.testing.assert_array_equal(a[2].visible, b[2].visible)
    assert a[0].caption() == b[0].caption()
    assert not np.array_equal(a[1]["cam01"].rgb, c[1]["cam01"].rgb)
