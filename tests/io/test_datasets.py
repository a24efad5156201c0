"""DAVIS 2017 and DyCheck iPhone readers, on tiny layouts built from ../shared/data/real in tmp_path."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from mvt4g.camera import Intrinsics, dycheck_camera_dict, look_at
from mvt4g.errors import CameraError, InputError
from mvt4g.io.datasets import DavisDataset, DycheckSequence, _longest_run
from mvt4g.io.video import read_video

# ----------------------------------------------------------------------------- DAVIS


def _palette_png(path, ids: np.ndarray) -> None:
    img = Image.fromarray(ids.astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    img.save(path)


def _object_masks(frames: int, height: int, width: int) -> np.ndarray:
    ids = np.zeros((frames, height, width), np.uint8)
    for t in range(frames):
        ids[t, 100:200, 50 + 10 * t : 150 + 10 * t] = 1
        cv2.circle(ids[t], (600, 300), 40 + t, 2, -1)
    return ids


@pytest.fixture
def davis_root(tmp_path, shared_data):
    """DAVIS layout: bear (5 frames, full annotations) and cows (3 frames, first-frame annotation only)."""
    frames = read_video(shared_data / "real" / "bear.mp4", max_frames=5).frames
    root = tmp_path / "DAVIS"
    for seq, count, annotated in (("bear", 5, 5), ("cows", 3, 1)):
        jpg = root / "JPEGImages" / "480p" / seq
        ann = root / "Annotations" / "480p" / seq
        jpg.mkdir(parents=True)
        ann.mkdir(parents=True)
        masks = _object_masks(count, *frames.shape[1:3])
        for t in range(count):
            cv2.imwrite(str(jpg / f"{t:05d}.jpg"), cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR))
            if t < annotated:
                _palette_png(ann / f"{t:05d}.png", masks[t])
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("bear\ncows\n")
    (sets / "train.txt").write_text("missing-seq\n")
    return root


def test_davis_frames_masks_and_splits(davis_root):
    ds = DavisDataset(davis_root)
    assert ds.sequences("val") == ["bear", "cows"]
    assert ds.sequences("all") == ["bear", "cows"]
    bear = ds.sequence("bear")
    video = bear.read_frames()
    assert video.frames.shape == (5, 480, 854, 3) and video.fps == 30.0
    want0 = cv2.cvtColor(cv2.imread(str(davis_root / "JPEGImages/480p/bear/00000.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(video.frames[0], want0)
    masks = bear.read_masks()
    np.testing.assert_array_equal(masks, _object_masks(5, 480, 854))
    assert bear.read_masks(max_frames=2).shape == (2, 480, 854)


def test_davis_bad_layouts_name_what_is_missing(davis_root, tmp_path):
    ds = DavisDataset(davis_root)
    with pytest.raises(InputError, match=r"annotations cover 1 of 3 frames \(no 00001.png\)"):
        ds.sequence("cows").read_masks()
    with pytest.raises(InputError, match="sequence 'missing-seq' has no frame folder JPEGImages/480p/missing-seq"):
        ds.sequence(ds.sequences("train")[0])
    (davis_root / "ImageSets" / "2017" / "val.txt").unlink()
    with pytest.raises(InputError, match=r"ImageSets/2017/val.txt is missing"):
        ds.sequences("val")
    with pytest.raises(InputError, match="unknown DAVIS split 'test'"):
        ds.sequences("test")
    with pytest.raises(InputError, match="not a DAVIS 2017 folder: JPEGImages/480p is missing") as err:
        DavisDataset(tmp_path)
    assert "\n" not in str(err.value)
    rgb = np.zeros((480, 854, 3), np.uint8)
    Image.fromarray(rgb).save(davis_root / "Annotations" / "480p" / "bear" / "00002.png")
    with pytest.raises(InputError, match="annotation is a RGB image"):
        ds.sequence("bear").read_masks()


# ----------------------------------------------------------------------------- DyCheck

TIMES = 6
VAL = {1: [0, 1, 2, 4, 5], 2: [1, 2, 3, 4, 5]}  # camera 1 has a gap: its longest run is 0..2


def _camera(cam: int, t: int, width: int, height: int) -> tuple[Intrinsics, np.ndarray]:
    intr = Intrinsics(300.0 + 10 * cam, 300.0 + 10 * cam, width / 2 + cam, height / 2 - cam, width, height)
    eye = [0.3 * cam - 0.02 * t, -0.1 * cam, 0.05 * t]
    return intr, look_at(eye, [0.0, 0.0, 3.0])


@pytest.fixture
def dycheck_root(tmp_path, shared_data):
    """iPhone layout: camera 0 from teddy.mp4, validation cameras 1 and 2 from apple.mp4 (cropped to size)."""
    teddy = read_video(shared_data / "real" / "teddy.mp4", max_frames=TIMES).frames
    apple = read_video(shared_data / "real" / "apple.mp4", max_frames=TIMES).frames[:, :480, :368]
    h, w = teddy.shape[1:3]
    root = tmp_path / "teddy"
    for sub in ("rgb/1x", "rgb/2x", "camera", "splits", "covisible/2x/val"):
        (root / sub).mkdir(parents=True)
    train, val = [], []
    for cam in (0, 1, 2):
        for t in range(TIMES):
            if cam and t not in VAL[cam]:
                continue
            name = f"{cam}_{t:05d}"
            img = teddy[t] if cam == 0 else np.ascontiguousarray(apple[t] if cam == 1 else apple[t, ::-1])
            cv2.imwrite(str(root / "rgb/1x" / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            half = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(root / "rgb/2x" / f"{name}.png"), cv2.cvtColor(half, cv2.COLOR_RGB2BGR))
            intr, c2w = _camera(cam, t, w, h)
            (root / "camera" / f"{name}.json").write_text(json.dumps(dycheck_camera_dict(intr, c2w)))
            (val if cam else train).append((name, cam, t))
            if cam:
                cov = np.zeros((h // 2, w // 2), np.uint8)
                cov[: h // 4, :] = 255
                cv2.imwrite(str(root / "covisible/2x/val" / f"{name}.png"), cov)
    for split, rows in (("train", train), ("val", val)):
        (root / "splits" / f"{split}.json").write_text(json.dumps({
            "frame_names": [r[0] for r in rows], "camera_ids": [r[1] for r in rows], "time_ids": [r[2] for r in rows]}))
    (root / "dataset.json").write_text(json.dumps({"count": len(train) + len(val), "ids": [r[0] for r in train + val],
                                                   "train_ids": [r[0] for r in train], "val_ids": [r[0] for r in val]}))
    return root, teddy, apple


def test_dycheck_benchmark_pairs(dycheck_root):
    root, teddy, apple = dycheck_root
    h, w = teddy.shape[1:3]
    pairs = DycheckSequence(root).benchmark_pairs()
    assert [p.target.camera_id for p in pairs] == [1, 2]
    np.testing.assert_array_equal(pairs[0].target.time_ids, [0, 1, 2])  # longest consecutive run
    np.testing.assert_array_equal(pairs[1].target.time_ids, [1, 2, 3, 4, 5])
    for pair in pairs:
        np.testing.assert_array_equal(pair.reference.time_ids, pair.target.time_ids)
        assert pair.reference.camera_id == 0
    np.testing.assert_array_equal(pairs[1].reference.frames, teddy[1:6])  # PNG is lossless
    np.testing.assert_array_equal(pairs[0].target.frames, apple[:3])
    for t, time_id in enumerate(pairs[1].target.time_ids):
        intr, c2w = _camera(2, int(time_id), w, h)
        np.testing.assert_allclose(pairs[1].target.K[t], intr.K, atol=1e-9)
        np.testing.assert_allclose(pairs[1].target.c2w[t], c2w, atol=1e-9)
    # Covisible masks exist only at 2x: read and resized (nearest) to the 1x frames.
    cov = pairs[0].target.covisible
    assert cov.shape == (3, h, w) and cov.dtype == bool
    assert cov[:, : h // 2].all() and not cov[:, h // 2 :].any()
    assert pairs[0].reference.covisible is None
    assert DycheckSequence(root).benchmark_pairs(max_frames=2)[1].target.time_ids.tolist() == [1, 2]


def test_dycheck_half_resolution_scales_the_intrinsics(dycheck_root):
    root, teddy, _ = dycheck_root
    h, w = teddy.shape[1:3]
    view = DycheckSequence(root, factor=2).read_view(0, [0, 3], covisible_split=None)
    assert view.frames.shape == (2, h // 2, w // 2, 3)
    full, _ = _camera(0, 3, w, h)
    np.testing.assert_allclose(view.K[1], full.resized(w // 2, h // 2).K, atol=1e-9)
    assert view.intrinsics.width == w // 2


def test_dycheck_split_falls_back_to_dataset_json(dycheck_root):
    root, _, _ = dycheck_root
    with_splits = DycheckSequence(root).split("val")
    for f in (root / "splits").iterdir():
        f.unlink()
    assert DycheckSequence(root).split("val") == with_splits


def test_dycheck_bad_layouts_name_what_is_missing(dycheck_root, tmp_path):
    root, _, _ = dycheck_root
    seq = DycheckSequence(root)
    with pytest.raises(InputError, match=r"frame is missing") as err:
        seq.read_view(1, [3])
    assert "1_00003.png" in str(err.value)
    with pytest.raises(InputError, match=r"covisible mask covisible/1x/val/0_00000.png is missing"):
        seq.read_view(0, [0], covisible_split="val")
    with pytest.raises(InputError, match="not a DyCheck sequence: rgb/4x/ is missing"):
        DycheckSequence(root, factor=4)
    bad = json.loads((root / "camera" / "2_00001.json").read_text())
    bad["orientation"][0][0] = float("nan")
    (root / "camera" / "2_00001.json").write_text(json.dumps(bad))
    with pytest.raises(CameraError, match="2_00001.json"):
        seq.read_view(2, [1])
    for f in (root / "splits").iterdir():
        f.unlink()
    (root / "dataset.json").unlink()
    with pytest.raises(InputError, match=r"neither splits/val.json nor dataset.json is present"):
        seq.benchmark_pairs()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="rgb/1x/ is missing"):
        DycheckSequence(tmp_path / "empty")


def test_longest_run():
    assert _longest_run([0, 1, 2, 4, 5]) == [0, 1, 2]
    assert _longest_run([3, 7, 8, 9, 10, 12]) == [7, 8, 9, 10]
    assert _longest_run([]) == []
