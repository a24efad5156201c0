"""Training samples: track mapping, query sampling, the step sampler, and whole samples of synth clips.

Independent references: closed-form crop arithmetic for track mapping; the lossless
autoencoder's decode for latents; ``pair_plucker`` for ray maps; and the synth clips' exact
depth maps, which re-project every visible reference track point into the target view.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers.train import synth_clips
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import ConfigError, InputError
from mvt4g.io.frames import cover_geometry
from mvt4g.train.data import (
    StepBatchSampler,
    find_clip_dirs,
    pair_tracks,
    sample_queries,
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_clips(tmp_path_factory)


# ---- track mapping ------------------------------------------------------------------------


@pytest.mark.parametrize("track_scale", [1, 2])
@pytest.mark.parametrize("reverse", [False, True])
def test_pair_tracks_crop_and_frames(track_scale, reverse):
    rng = np.random.default_rng(0)
    V, T, N, H0, W0 = 3, 9, 40, 48, 64
    th, tw = H0 * track_scale, W0 * track_scale  # tracks stored at another size than the video
    xy = rng.uniform(-4, [tw + 4, th + 4], size=(V, T, N, 2)).astype(np.float32)
    vis = rng.random((V, T, N)) > 0.3
    clip = SimpleNamespace(width=W0, height=H0)
    crop = cover_geometry(H0, W0, 32, 32)
    window = np.arange(T)[::-1] if reverse else np.arange(T)
    latent = np.array([0, 4, 8])
    tracks, visible = pair_tracks(xy, vis, clip, (th, tw), (2, 0), window, latent, crop)

    # Closed form: cover scale 32/48 -> 43 x 32 pixels (round(64 * 2/3) = 43), crop x0 = 5, y0 = 0.
    frames = window[latent]
    for out_v, src_v in enumerate((2, 0)):
        for f, t in enumerate(frames):
            x = xy[src_v, t, :, 0].astype(np.float64) / track_scale * (43 / 64) - 5
            y = xy[src_v, t, :, 1].astype(np.float64) / track_scale * (32 / 48)
            inside = (x >= 0) & (x < 32) & (y >= 0) & (y < 32)
            want_vis = vis[src_v, t] & inside
            np.testing.assert_array_equal(visible[out_v, f], want_vis)
            np.testing.assert_allclose(tracks[out_v, f, want_vis, 0], x[want_vis], atol=1e-4)
            np.testing.assert_allclose(tracks[out_v, f, want_vis, 1], y[want_vis], atol=1e-4)
            assert np.all(tracks[out_v, f, ~want_vis] == 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 30), count=st.integers(1, 24), density=st.floats(0.0, 1.0))
def test_sample_queries_properties(seed, n, count, density):
    rng = np.random.default_rng(seed)
    V, F = 2, 4
    tracks = rng.uniform(0, 32, size=(V, F, n, 2)).astype(np.float32)
    visible = rng.random((V, F, n)) < density
    queries, q_tracks, q_vis = sample_queries(tracks, visible, count, np.random.default_rng(seed + 1), (32, 32))
    assert queries.shape == (count, 4) and q_tracks.shape == (V, F, count, 2) and q_vis.shape == (V, F, count)
    candidates = np.flatnonzero(visible.any(axis=(0, 1))) if n else np.array([], int)
    if candidates.size == 0:
        assert not q_vis.any()
        return
    view, frame = queries[:, 0].astype(int), queries[:, 1].astype(int)
    # Each query sits at a visible entry of its own track, at that entry's position.
    assert q_vis[view, frame, np.arange(count)].all()
    np.testing.assert_array_equal(queries[:, 2:], q_tracks[view, frame, np.arange(count)])
    # Its track is one of the candidates, and tracks repeat only when there are too few.
    ids = [int(np.flatnonzero((tracks == q_tracks[:, :, [i]]).all(axis=(0, 1, 3)) & (visible == q_vis[:, :, [i]]).all(axis=(0, 1)))[0]) for i in range(count)]
    assert set(ids) <= set(candidates.tolist())
    if candidates.size >= count:
        assert len(set(ids)) == count


def test_queries_cover_both_views_and_all_frames():
    rng = np.random.default_rng(1)
    tracks = rng.uniform(0, 32, size=(2, 5, 400, 2)).astype(np.float32)
    visible = np.ones((2, 5, 400), bool)
    queries, _, _ = sample_queries(tracks, visible, 400, rng, (32, 32))
    assert set(queries[:, 0].astype(int)) == {0, 1} and set(queries[:, 1].astype(int)) == set(range(5))


# ---- the distributed step sampler ---------------------------------------------------------


@pytest.mark.parametrize("batch, acc, world", [(4, 1, 1), (4, 1, 2), (8, 2, 2), (6, 3, 1), (4, 2, 2)])
def test_step_sampler_splits_the_global_batch(batch, acc, world):
    single = StepBatchSampler(batch, 1, 1, 0, 3, 6)
    per_step = {s: set(single.indices(s, 0)) for s in range(3, 6)}
    samplers = [StepBatchSampler(batch, acc, world, r, 3, 6) for r in range(world)]
    for s in range(3, 6):
        got = [i for smp in samplers for a in range(acc) for i in smp.indices(s, a)]
        assert sorted(got) == sorted(per_step[s])  # every sample of the step exactly once
    assert len(list(samplers[0])) == 3 * acc == len(samplers[0])


def test_step_sampler_rejects_uneven_batches():
    with pytest.raises(ConfigError, match="multiple of train.accumulate"):
        StepBatchSampler(3, 1, 2, 0, 0, 1)


# ---- whole samples from synth clips ---------------------------------------------------------


def _dataset(synth, **overrides):
    from mvt4g.train.builders import build_dataset, resolve_model_config
    from mvt4g.train.config import TrainConfig, apply_overrides

    cfg = apply_overrides(TrainConfig(), [f"data.paths=['{synth}']", "data.queries=48",
                                          *(f"{k}={v}" for k, v in overrides.items())])  # fmt: skip
    mc = resolve_model_config(cfg.validate())
    return build_dataset(cfg, mc), mc


def test_find_clip_dirs(synth, tmp_path):
    assert [p.name for p in find_clip_dirs([synth])] == ["scene_0000", "scene_0001"]
    assert find_clip_dirs([synth / "scene_0001"]) == [synth / "scene_0001"]
    with pytest.raises(InputError, match="data directory does not exist"):
        find_clip_dirs([tmp_path / "nope"])
    with pytest.raises(InputError, match="no clip folders"):
        find_clip_dirs([tmp_path])
    with pytest.raises(InputError, match="no training data"):
        find_clip_dirs([])
    # A MultiCamVideo release nests its clips: train/f24_aperture5/scene1.
    nested = tmp_path / "MultiCamVideo-Dataset" / "train" / "f24_aperture5"
    nested.mkdir(parents=True)
    (nested / "scene1").symlink_to(synth / "scene_0001")
    assert find_clip_dirs([tmp_path / "MultiCamVideo-Dataset" / "train"]) == [nested / "scene1"]


def test_sample_shapes_and_determinism(synth):
    ds, mc = _dataset(synth)
    item = ds[5]
    C, F = mc.backbone.in_channels, mc.latent_frames(17)
    assert item["reference"].shape == item["target"].shape == item["noise"].shape == (C, F, 16, 16)
    assert item["plucker"].shape == (2, F, 6, 32, 32)
    assert item["queries"].shape == (48, 4) and item["tracks"].shape == (2, F, 48, 2) and item["visible"].shape == (2, F, 48)
    assert 0 < float(item["sigma"]) <= 1 and float(item["timestep"]) == pytest.approx(1000 * float(item["sigma"]))
    again = ds[5]
    for key in item:
        assert torch.equal(item[key], again[key]), key
    assert not torch.equal(ds[6]["noise"], item["noise"])
    # An epoch visits every clip once.
    assert sorted(ds.describe(i).clip for i in range(4, 6)) == [0, 1]


def test_reversal_and_pairs_are_drawn(synth):
    ds, _ = _dataset(synth)
    specs = [ds.describe(i) for i in range(64)]
    assert 10 < sum(s.reverse for s in specs) < 54
    assert len({(s.reference, s.target) for s in specs}) == 6  # every ordered pair of 3 views
    assert all(s.reference != s.target for s in specs)
    ds_ref, _ = _dataset(synth, **{"data.pairs": "from_reference", "data.reverse_prob": 0.0})
    specs = [ds_ref.describe(i) for i in range(32)]
    assert {s.reference for s in specs} == {"cam01"} and not any(s.reverse for s in specs)


def test_latents_and_plucker_match_independent_computation(synth):
    from mvt4g.io.clip import read_clip
    from mvt4g.model.autoencoder import build_autoencoder
    from mvt4g.model.conditioning import pair_plucker

    ds, mc = _dataset(synth)
    ae = build_autoencoder(mc.autoencoder)
    clips = [read_clip(c.root) for c in ds.clips]
    videos = {}
    specs = [ds.describe(i) for i in range(16)]
    picked = [next(s for s in specs if s.reverse), next(s for s in specs if not s.reverse)]
    for spec in picked:
        item = ds[spec.index]
        clip = clips[spec.clip]
        window = np.arange(17)[::-1] if spec.reverse else np.arange(17)
        for key, view in (("reference", spec.reference), ("target", spec.target)):
            if (spec.clip, view) not in videos:
                videos[spec.clip, view] = clip.read_video(view)
            frames = videos[spec.clip, view][window]  # 32x32 already: no resize
            decoded = ae.decode(item[key][None])[0]  # lossless autoencoder: exact pixels back
            pixels = torch.round((decoded + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()
            np.testing.assert_array_equal(pixels, frames)
        ref = clip.cameras[spec.reference].select_frames(window)
        tgt = clip.cameras[spec.target].select_frames(window)
        want = pair_plucker(ref, tgt, np.arange(0, 17, 4), (32, 32))
        np.testing.assert_array_equal(item["plucker"].numpy(), want)


def test_recammaster_poses_match_an_independent_float64_computation(synth):
    """ReCamMaster's training input: inv(c2w_ref[window[0]]) @ c2w_tgt[window[4k]], rows of its 3x4 top.

    Computed here in float64 from the clip's cameras (ReCamMaster's get_relative_pose:
    abs2rel = w2c of the source's first camera, times each target camera-to-world).
    """
    from mvt4g.io.clip import read_clip
    from mvt4g.train.builders import build_dataset, resolve_model_config
    from mvt4g.train.config import TrainConfig, apply_overrides

    cfg = apply_overrides(TrainConfig(), [f"data.paths=['{synth}']", "model.tracking_head=false", "loss.corr=false"])
    mc = resolve_model_config(cfg.validate())
    mc.camera.mode = "recammaster"
    ds = build_dataset(cfg, mc)
    specs = [ds.describe(i) for i in range(16)]
    picked = [next(s for s in specs if s.reverse), next(s for s in specs if not s.reverse)]
    for spec in picked:
        item = ds[spec.index]
        assert "plucker" not in item and item["camera_pose"].shape == (5, 12)
        assert item["camera_pose"].dtype == torch.float32
        clip = read_clip(ds.clips[spec.clip].root)
        window = np.arange(17)[::-1] if spec.reverse else np.arange(17)
        ref0 = np.asarray(clip.cameras[spec.reference].c2w[window[0]], dtype=np.float64)
        tgt = np.asarray(clip.cameras[spec.target].c2w, dtype=np.float64)[window[::4]]
        want = np.stack([(np.linalg.inv(ref0) @ c2w)[:3, :4].reshape(12) for c2w in tgt])
        np.testing.assert_allclose(item["camera_pose"].numpy(), want, rtol=0, atol=2e-6)
        # Not trivially the identity: the pair's cameras differ.
        assert np.abs(want - np.eye(4)[:3].reshape(12)).max() > 1e-2


def _bilinear(img, x, y):
    h, w = img.shape
    x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    x0, y0 = min(int(x), w - 2), min(int(y), h - 2)
    fx, fy = x - x0, y - y0
    return ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x0 + 1]) + fy * ((1 - fx) * img[y0 + 1, x0] + fx * img[y0 + 1, x0 + 1]))


def test_tracks_agree_with_depth_reprojection(synth):
    """Every visible reference query point, lifted with the exact depth and projected into
    the target camera at the same time, lands on the target track (view order, frame
    mapping and reversal all right)."""
    ds, _ = _dataset(synth)
    errors, controls = [], []
    for index in range(12):
        spec, item = ds.describe(index), ds[index]
        clip = ds.clips[spec.clip]
        window = np.arange(17)[::-1] if spec.reverse else np.arange(17)
        depth = clip.read_depth(spec.reference)
        ref, tgt = clip.cameras[spec.reference], clip.cameras[spec.target]
        tracks, visible = item["tracks"].numpy(), item["visible"].numpy()
        for f, t in enumerate(window[::4]):
            both = visible[0, f] & visible[1, f]
            for n in np.flatnonzero(both):
                x, y = tracks[0, f, n]
                z = _bilinear(depth[t], x - 0.5, y - 0.5)  # pixel centres at +0.5
                cam = np.linalg.inv(ref.K[t]) @ np.array([x, y, 1.0]) * z
                world = ref.c2w[t] @ np.append(cam, 1.0)
                local = np.linalg.inv(tgt.c2w[t]) @ world
                uvw = tgt.K[t] @ local[:3]
                errors.append(np.hypot(*(uvw[:2] / uvw[2] - tracks[1, f, n])))
                # Control: the target's track one latent frame off (the mapping must matter).
                other = f + 1 if f + 1 < tracks.shape[1] else f - 1
                if visible[1, other, n]:
                    controls.append(np.hypot(*(uvw[:2] / uvw[2] - tracks[1, other, n])))
    errors = np.array(errors)
    assert errors.size > 50
    # Bilinear depth mixes foreground and background at edges (many points at 32x32 px):
    # hence a median and a fraction, not a maximum.
    assert np.median(errors) < 0.2 and np.mean(errors < 1.0) > 0.7
    assert np.median(controls) > 5 * np.median(errors)


def test_clip_without_tracks_is_refused_when_needed(synth, tmp_path):
    import shutil

    clip = tmp_path / "clip"
    shutil.copytree(synth / "scene_0000", clip, ignore=shutil.ignore_patterns("cache", "tracks.npz"))
    with pytest.raises(InputError, match="no tracks.npz"):
        _dataset(clip)
    ds, _ = _dataset(clip, **{"model.tracking_head": "false", "loss.corr": "false"})
    assert "tracks" not in ds[0]


def test_short_clip_is_refused(synth):
    with pytest.raises(InputError, match="training needs 21"):
        _dataset(synth, **{"data.frames": 21})
