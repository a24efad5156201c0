"""Frame-size (cover resize + centre crop) and frame-count (4k+1) policy."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import real_video
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.errors import InputError
from mvt4g.io.frames import (
    cover_geometry,
    fit_frame_count,
    is_valid_frame_count,
    largest_valid_count,
    latent_frame_indices,
    resize_cover,
)

# ----------------------------------------------------------------------------- helpers


def gaussian_blob(height: int, width: int, x: float, y: float, sigma: float) -> np.ndarray:
    """float64 [H, W] image of a Gaussian centred at continuous (x, y), pixel centres at +0.5."""
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    return np.exp(-((xs[None, :] - x) ** 2 + (ys[:, None] - y) ** 2) / (2.0 * sigma**2))


def centroid(img: np.ndarray) -> tuple[float, float]:
    img = img.astype(np.float64)
    xs = np.arange(img.shape[1]) + 0.5
    ys = np.arange(img.shape[0]) + 0.5
    mass = img.sum()
    return float((img * xs[None, :]).sum() / mass), float((img * ys[:, None]).sum() / mass)


def project(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


sizes = st.integers(min_value=4, max_value=2000)


# ----------------------------------------------------------------------------- geometry


@settings(max_examples=300, deadline=None)
@given(src_h=sizes, src_w=sizes, h=sizes, w=sizes, seed=st.integers(0, 2**31 - 1))
def test_cover_geometry_agrees_with_intrinsics_cover_crop(src_h, src_w, h, w, seed):
    """Points mapped by CropInfo land where the cover-cropped camera projects them."""
    info = cover_geometry(src_h, src_w, h, w)
    K0 = Intrinsics.from_fov(55.0, src_w, src_h)
    K1 = K0.cover_crop(w, h)
    assert (K1.width, K1.height) == (info.width, info.height) == (w, h)
    # the resized image covers the target and the crop window lies inside it
    assert info.resized_width >= w and info.resized_height >= h
    assert 0 <= info.x0 <= info.resized_width - w and 0 <= info.y0 <= info.resized_height - h
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(-1, 1, 20), rng.uniform(-1, 1, 20), rng.uniform(0.5, 5, 20)])
    expected = project(K1.K, points)
    got = info.map_points(project(K0.K, points))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * max(src_w, src_h, w, h))


def test_cover_geometry_known_values():
    # bear (854x480) -> 480x832: height already fits, 11 columns cut on the left
    bear = cover_geometry(480, 854, 480, 832)
    assert (bear.resized_width, bear.resized_height, bear.x0, bear.y0) == (854, 480, 11, 0)
    # bear -> 96x160: scale 0.2, 854 * 0.2 = 170.8 -> 171 columns, 5 cut on the left
    small = cover_geometry(480, 854, 96, 160)
    assert small.scale == pytest.approx(0.2)
    assert (small.resized_width, small.resized_height, small.x0, small.y0) == (171, 96, 5, 0)
    # teddy (368x480, portrait) -> 480x832: width decides, 1085 rows, 302 cut at the top
    teddy = cover_geometry(480, 368, 480, 832)
    assert (teddy.resized_width, teddy.resized_height, teddy.x0, teddy.y0) == (832, 1085, 0, 302)


@settings(max_examples=25, deadline=None)
@given(
    src_h=st.integers(24, 160),
    src_w=st.integers(24, 160),
    h=st.integers(24, 160),
    w=st.integers(24, 160),
    fx=st.floats(0.3, 0.7),
    fy=st.floats(0.3, 0.7),
)
def test_resized_image_matches_cropped_intrinsics(src_h, src_w, h, w, fx, fy):
    """A blob drawn where the source camera sees a 3D point appears, after resize_cover,
    where the cover-cropped camera sees it (pixel centres at +0.5 on both sides)."""
    K0 = Intrinsics.from_fov(60.0, src_w, src_h)
    K1 = K0.cover_crop(w, h)
    info = cover_geometry(src_h, src_w, h, w)
    # pick the 3D point through a pixel at relative position (fx, fy) of the target image
    target_xy = np.array([fx * w, fy * h])
    ray = np.linalg.solve(K1.K, np.array([target_xy[0], target_xy[1], 1.0]))
    src_xy = project(K0.K, ray[None])[0]
    # wide enough to be well sampled on both grids (an aliased blob has a biased centroid)
    sigma_src = max(1.5, 2.5 / info.scale)
    sigma_out = sigma_src * info.scale
    img = gaussian_blob(src_h, src_w, src_xy[0], src_xy[1], sigma_src).astype(np.float32)
    out, _ = resize_cover(img[None], h, w)
    margin = 4 * sigma_out
    if not (margin < target_xy[0] < w - margin and margin < target_xy[1] < h - margin):
        return  # blob clipped by the border: centroid meaningless
    cx, cy = centroid(out[0])
    assert abs(cx - target_xy[0]) < 0.05 and abs(cy - target_xy[1]) < 0.05


@pytest.mark.parametrize(
    ("src_size", "size", "sigma_src"),
    [((480, 854), (96, 160), 12.5), ((100, 160), (300, 500), 2.0)],  # scale 0.2 (area), 3.125 (bilinear)
)
def test_blob_lands_on_predicted_pixel_down_and_up(src_size, size, sigma_src):
    """Strong down- and up-scaling, where a corner-aligned resize (off by 0.5 * |scale - 1|
    px) or an off-by-one crop would miss by 0.4 px or more. The second case also rounds a
    half (312.5 -> 312 rows, Python's half-to-even) and uses an off-centre principal point."""
    (src_h, src_w), (h, w) = src_size, size
    K0 = Intrinsics(400.0, 400.0, src_w / 2 - 1.3, src_h / 2 + 0.7, src_w, src_h)
    K1 = K0.cover_crop(w, h)
    points = np.array([[0.1, -0.05, 1.0], [-0.2, 0.1, 2.0], [0.05, 0.08, 1.5]])
    for (sx, sy), (wx, wy) in zip(project(K0.K, points), project(K1.K, points)):
        img = gaussian_blob(src_h, src_w, sx, sy, sigma_src).astype(np.float32)
        out, _ = resize_cover(img[None], h, w)
        cx, cy = centroid(out[0])
        assert abs(cx - wx) < 0.05 and abs(cy - wy) < 0.05, (cx, cy, wx, wy)


def test_resize_cover_bear_to_480x832_is_a_pure_crop():
    from mvt4g.io.video import read_video

    frames = read_video(real_video("bear.mp4"), max_frames=3).frames
    out, info = resize_cover(frames, 480, 832)
    assert out.shape == (3, 480, 832, 3) and out.dtype == np.uint8
    assert (info.x0, info.y0, info.resized_width) == (11, 0, 854)
    np.testing.assert_array_equal(out, frames[:, :, 11:843])


@pytest.mark.parametrize(
    ("name", "size"),
    [("bear.mp4", (96, 160)), ("apple.mp4", (480, 832)), ("teddy.mp4", (480, 832)), ("apple.mp4", (96, 160))],
)
def test_resize_cover_real_videos(name, size):
    from mvt4g.io.video import read_video

    frames = read_video(real_video(name), max_frames=2).frames
    h, w = size
    out, info = resize_cover(frames, h, w)
    assert out.shape == (2, h, w, 3) and out.dtype == np.uint8
    # compare with an independent float64 reference: box-average the source window that
    # each output pixel covers (exact for area resampling up to edge weighting)
    src = frames[0].astype(np.float64)
    sx, sy = info.scale_x, info.scale_y
    for v, u in [(h // 2, w // 2), (h // 4, w // 3), (3 * h // 4, 2 * w // 3)]:
        x_lo, x_hi = (u + info.x0) / sx, (u + 1 + info.x0) / sx
        y_lo, y_hi = (v + info.y0) / sy, (v + 1 + info.y0) / sy
        if info.scale < 1:
            patch = src[int(y_lo) : int(np.ceil(y_hi)), int(x_lo) : int(np.ceil(x_hi))]
            ref = patch.reshape(-1, 3).mean(axis=0)
            assert np.abs(out[0, v, u] - ref).max() < 25  # coarse: partial edge pixels weigh less
        else:
            # upscale: bilinear at the source position of the output pixel centre
            xs, ys = (x_lo + x_hi) / 2 - 0.5, (y_lo + y_hi) / 2 - 0.5
            x0, y0 = int(np.floor(xs)), int(np.floor(ys))
            ax, ay = xs - x0, ys - y0
            ref = (
                (1 - ax) * (1 - ay) * src[y0, x0]
                + ax * (1 - ay) * src[y0, x0 + 1]
                + (1 - ax) * ay * src[y0 + 1, x0]
                + ax * ay * src[y0 + 1, x0 + 1]
            )
            assert np.abs(out[0, v, u] - ref).max() <= 1.0


def test_resize_cover_shapes_dtypes_and_nearest_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(2, 37, 53)).astype(np.uint8)
    out, info = resize_cover(labels, 20, 24, interpolation="nearest")
    assert out.shape == (2, 20, 24) and out.dtype == np.uint8
    assert set(np.unique(out)) <= set(np.unique(labels))
    depth = rng.uniform(1, 5, size=(1, 30, 40, 1)).astype(np.float32)
    out, _ = resize_cover(depth, 60, 60)
    assert out.shape == (1, 60, 60, 1) and out.dtype == np.float32
    assert depth.min() - 1e-5 <= out.min() and out.max() <= depth.max() + 1e-5  # bilinear stays in range
    same, info = resize_cover(depth, 30, 40)
    np.testing.assert_array_equal(same, depth)
    assert info.scale == 1.0 and (info.x0, info.y0) == (0, 0)


def test_resize_cover_rejects_bad_input():
    with pytest.raises(InputError, match="frames must be"):
        resize_cover(np.zeros((4, 4)), 2, 2)
    with pytest.raises(InputError, match="interpolation"):
        resize_cover(np.zeros((1, 4, 4, 3), np.uint8), 2, 2, interpolation="lanczos9")
    with pytest.raises(InputError, match="positive"):
        resize_cover(np.zeros((1, 4, 4, 3), np.uint8), 0, 2)


# ----------------------------------------------------------------------------- count


def numbered(count: int) -> np.ndarray:
    """[T, 2, 3, 3] uint8 frames whose pixels all hold their frame index."""
    return np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 2, 3, 3)).copy()


def test_bear_82_frames_trimmed_to_81():
    frames = numbered(82)
    out, report = fit_frame_count(frames)
    assert out.shape[0] == 81 and report.action == "trimmed"
    assert report.message == "trimmed 82 -> 81 frames (kept the first 81)"
    assert np.shares_memory(out, frames)  # a view, no copy
    np.testing.assert_array_equal(out[:, 0, 0, 0], np.arange(81))
    for policy in ("pad", "error"):  # more frames than the target: always the first 81
        assert fit_frame_count(frames, policy=policy)[0].shape[0] == 81


@pytest.mark.parametrize("count", [80, 50])
def test_short_videos_under_each_policy(count):
    """paragliding-launch has 80 frames, apple 50: both are short of 81."""
    frames = numbered(count)
    out, report = fit_frame_count(frames, policy="pad")
    assert out.shape[0] == 81 and report.action == "padded"
    assert report.message == f"padded {count} -> 81 frames by repeating the last frame"
    np.testing.assert_array_equal(out[:count, 0, 0, 0], np.arange(count))
    assert (out[count:, 0, 0, 0] == count - 1).all()
    np.testing.assert_array_equal(out, frames[report.indices])

    out, report = fit_frame_count(frames, policy="trim")
    want = {80: 77, 50: 49}[count]
    assert out.shape[0] == want and report.message == f"trimmed {count} -> {want} frames (kept the first {want})"

    with pytest.raises(InputError, match=f"has {count} frames, fewer than the 81 required"):
        fit_frame_count(frames, policy="error")


@pytest.mark.parametrize(("count", "want"), [(82, 81), (80, 77), (50, 49), (141, 141), (81, 81), (5, 5)])
def test_target_none_takes_largest_4k_plus_1(count, want):
    out, report = fit_frame_count(numbered(count), target=None)
    assert out.shape[0] == want
    assert report.action == ("kept" if want == count else "trimmed")


def test_real_frame_counts_from_probe():
    from mvt4g.io.video import probe_video

    names = ("bear.mp4", "paragliding-launch.mp4", "apple.mp4")
    counts = {name: probe_video(real_video(name)).frames for name in names}
    assert counts == {"bear.mp4": 82, "paragliding-launch.mp4": 80, "apple.mp4": 50}
    assert [fit_frame_count(numbered(n), policy="trim")[1].output_frames for n in counts.values()] == [81, 77, 49]


def test_fit_frame_count_refusals():
    with pytest.raises(InputError, match="needs at least 5 frames, got 1"):
        fit_frame_count(numbered(1))
    with pytest.raises(InputError, match="needs at least 9 frames, got 8"):
        fit_frame_count(numbered(8), target=None, min_frames=9)
    assert fit_frame_count(numbered(1), target=1, min_frames=1)[0].shape[0] == 1
    with pytest.raises(InputError, match="4k\\+1"):
        fit_frame_count(numbered(90), target=80)
    with pytest.raises(InputError, match="frame policy"):
        fit_frame_count(numbered(90), policy="loop")


@settings(max_examples=200, deadline=None)
@given(count=st.integers(5, 300), k=st.integers(1, 60), policy=st.sampled_from(["trim", "pad", "error"]))
def test_fit_frame_count_properties(count, k, policy):
    target = 4 * k + 1
    frames = numbered(count) if count < 256 else np.arange(count)[:, None]
    try:
        out, report = fit_frame_count(frames, target=target, policy=policy)
    except InputError:
        assert policy == "error" and count < target
        return
    n = out.shape[0]
    assert is_valid_frame_count(n) and report.output_frames == n and report.input_frames == count
    np.testing.assert_array_equal(out, frames[report.indices])
    if count >= target or policy == "pad":
        assert n == target
    else:
        assert n == largest_valid_count(count) and n <= count < n + 4
    # output frames are the input frames in order, then (padding) the last one repeated
    idx = report.indices
    assert idx[0] == 0 and (np.diff(idx) >= 0).all() and (np.diff(idx) <= 1).all() and idx[-1] <= count - 1


def test_latent_frame_indices():
    idx = latent_frame_indices(81)
    assert idx.tolist() == list(range(0, 81, 4)) and len(idx) == 21
    assert latent_frame_indices(numbered(9)).tolist() == [0, 4, 8]
    assert latent_frame_indices(1).tolist() == [0]
    assert latent_frame_indices(7, stride=2).tolist() == [0, 2, 4, 6]
    with pytest.raises(InputError, match="4k\\+1"):
        latent_frame_indices(82)
