"""Clips and tracks at the analysed size: crop mapping, latent frames, pair and track draws."""

from __future__ import annotations

import numpy as np
import pytest

from mvt4g.analysis.inputs import (
    choose_pairs,
    load_pair,
    open_clip_source,
    visualize_point,
)
from mvt4g.errors import InputError


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from mvt4g.synth import SynthSettings, synthesize_one

    root = tmp_path_factory.mktemp("inputs")
    return synthesize_one(SynthSettings(views=3, frames=13, height=32, width=32, points=200, seed=1), 0, root)


def test_tracks_follow_the_cover_crop_and_latent_frames(clip):
    from mvt4g.tracks.format import read_tracks

    # 32x32 -> 24x32 (H x W): scale 1, 4 rows cropped at the top; 13 frames -> 9 (first kept).
    source = open_clip_source(clip, (24, 32), frames=9, temporal_factor=4)
    assert source.frame_indices.tolist() == list(range(9))
    assert source.latent_frames.tolist() == [0, 4, 8]
    pair = load_pair(source, "cam03", "cam01", max_queries=50, seed=0)
    assert (pair.reference, pair.target) == ("cam03", "cam01")
    assert pair.video.shape == (2, 3, 9, 24, 32) and pair.frames_rgb.shape == (2, 3, 24, 32, 3)
    assert pair.tracks.shape == (2, 3, 50, 2) and len(pair.track_ids) == 50
    gt = read_tracks(clip / "tracks.npz")
    raw = gt.tracks[[2, 0]][:, [0, 4, 8]][:, :, pair.track_ids].astype(np.float64)
    np.testing.assert_allclose(pair.tracks[..., 0], raw[..., 0])
    np.testing.assert_allclose(pair.tracks[..., 1], raw[..., 1] - 4.0)
    inside = (raw[..., 1] >= 4.0) & (raw[..., 1] < 28.0) & (raw[..., 0] >= 0) & (raw[..., 0] < 32)
    np.testing.assert_array_equal(pair.visible, gt.visible[[2, 0]][:, [0, 4, 8]][:, :, pair.track_ids] & inside)
    # Every chosen track is seen in both views somewhere.
    assert pair.visible[0].any(axis=0).all() and pair.visible[1].any(axis=0).all()
    # Pixels: rows 4..27 of the clip's frames (uint8 [-1, 1] scaling).
    from mvt4g.io.clip import read_clip

    frames = read_clip(clip).read_video("cam01")
    np.testing.assert_array_equal(pair.frames_rgb[1], frames[[0, 4, 8], 4:28])
    np.testing.assert_allclose(pair.video[1, :, 0], frames[0, 4:28].transpose(2, 0, 1) / 127.5 - 1.0, atol=1e-6)


def test_pair_and_track_draws_are_seeded(clip):
    views = ["cam01", "cam02", "cam03"]
    assert choose_pairs(views, 2, 0, 0) == choose_pairs(views, 2, 0, 0)
    every = choose_pairs(views, 100, 0, 0)
    assert len(every) == 6 and len(set(every)) == 6 and all(a != b for a, b in every)
    source = open_clip_source(clip, (32, 32), frames=13, temporal_factor=4)
    a = load_pair(source, "cam01", "cam02", 20, seed=5)
    b = load_pair(source, "cam01", "cam02", 20, seed=5)
    c = load_pair(source, "cam01", "cam02", 20, seed=6)
    assert np.array_equal(a.track_ids, b.track_ids) and not np.array_equal(a.track_ids, c.track_ids)


def test_visualize_point_maps_to_latent_frame_and_crop(clip):
    source = open_clip_source(clip, (24, 32), frames=9, temporal_factor=4)
    assert visualize_point(source, 10.0, 20.0, 5) == (1, (10.0, 16.0))
    assert visualize_point(source, 10.0, 20.0, 6)[0] == 2  # 6 / 4 = 1.5 -> nearest latent frame 2
    with pytest.raises(InputError, match="centre crop"):
        visualize_point(source, 10.0, 2.0, 0)
    with pytest.raises(InputError, match="frame 9 is outside"):
        visualize_point(source, 10.0, 20.0, 9)


def test_short_clip_and_mismatched_tracks_are_refused(clip, tmp_path):
    import shutil

    with pytest.raises(InputError, match="needs at least 5 frames"):
        _short(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(clip, bad)
    data = dict(np.load(bad / "tracks.npz"))
    data["image_size"] = np.array([16, 16])
    np.savez(bad / "tracks.npz", **data)
    with pytest.raises(InputError, match="tracks are for 16x16 images"):
        open_clip_source(bad, (32, 32), frames=9, temporal_factor=4)


def _short(tmp_path):
    # A 4-frame clip (the analysis needs a 4k+1 >= 5 frame video).
    from mvt4g.synth import SynthSettings, synthesize_one

    short = synthesize_one(SynthSettings(views=2, frames=4, height=16, width=16, points=20, seed=2), 0, tmp_path)
    return open_clip_source(short, (16, 16), frames=9, temporal_factor=4)
