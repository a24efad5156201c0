"""Video and frame-folder reading/writing, including the damaged inputs users hand us."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import real_video

from mvt4g.errors import InputError, OutputExistsError, WorkFailed
from mvt4g.io.video import (
    FOLDER_FPS,
    Video,
    ffmpeg_exe,
    probe_video,
    read_video,
    write_frames,
    write_video,
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def smooth_video(frames: int = 9, height: int = 64, width: int = 96) -> np.ndarray:
    """uint8 [T, H, W, 3]: slowly moving colour gradients (what a codec handles well)."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    r = 128 + 100 * np.sin(np.pi * (x + 2 * t) / width)
    g = 128 + 100 * np.cos(np.pi * (y - t) / height)
    b = 60 + 140 * (x + y) / (width + height)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def one_line_error(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


# ----------------------------------------------------------------------------- real videos


@pytest.mark.parametrize(
    ("name", "frames", "height", "width", "fps"),
    [
        ("bear.mp4", 82, 480, 854, 30.0),
        ("paragliding-launch.mp4", 80, 480, 854, 30.0),
        ("teddy.mp4", 141, 480, 368, 19.98),
        ("apple.mp4", 50, 720, 1296, 10.0),
    ],
)
def test_probe_real_videos(name, frames, height, width, fps):
    info = probe_video(real_video(name))
    assert (info.frames, info.height, info.width) == (frames, height, width)
    assert info.fps == pytest.approx(fps, abs=0.01)


@pytest.mark.slow
def test_read_bear_fully_matches_imageio_reader():
    import imageio.v3 as iio

    path = real_video("bear.mp4")
    video = read_video(path)
    assert isinstance(video, Video) and video.source == path
    assert video.frames.shape == (82, 480, 854, 3) and video.frames.dtype == np.uint8
    assert video.fps == 30.0 and (video.num_frames, video.height, video.width) == (82, 480, 854)
    assert video.frames.flags.writeable
    reference = np.stack(list(iio.imiter(path, plugin="FFMPEG")))  # imageio's own decode path
    np.testing.assert_array_equal(video.frames, reference)


def test_read_teddy_edit_list_frame_count():
    """teddy.mp4 holds 142 packets, one outside the edit list: it shows 141 frames."""
    video = read_video(real_video("teddy.mp4"))
    assert video.frames.shape == (141, 480, 368, 3)


def test_read_max_frames():
    path = real_video("apple.mp4")
    first = read_video(path, max_frames=3)
    assert first.frames.shape == (3, 720, 1296, 3) and first.fps == 10.0
    assert read_video(path, max_frames=1000).frames.shape[0] == 50
    with pytest.raises(InputError, match="max_frames"):
        read_video(path, max_frames=0)


# ----------------------------------------------------------------------------- write + read


def test_write_read_round_trip(tmp_path):
    frames = smooth_video()
    path = write_video(tmp_path / "smooth.mp4", frames, fps=24)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smooth.mp4"]  # no temporary left
    video = read_video(path)
    assert video.frames.shape == frames.shape and video.fps == 24.0
    assert psnr(video.frames, frames) > 35
    import imageio.v3 as iio

    meta = iio.immeta(path, plugin="FFMPEG")
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_write_read_other_containers(tmp_path, suffix):
    frames = smooth_video(frames=5, height=32, width=48)
    video = read_video(write_video(tmp_path / f"v{suffix}", frames, fps=12.5))
    assert video.frames.shape == frames.shape and video.fps == 12.5 and psnr(video.frames, frames) > 35


@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "libvpx-vp9"), (".avi", "mjpeg")])
def test_read_webm_and_avi(tmp_path, suffix, codec):
    path = tmp_path / f"testsrc{suffix}"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=15", "-frames:v", "7", "-c:v", codec, str(path))
    video = read_video(path)
    assert video.frames.shape == (7, 48, 64, 3) and video.fps == 15.0
    assert probe_video(path).frames == 7


def test_variable_frame_rate_is_read_frame_for_frame(tmp_path):
    """Irregular timestamps must not make the decoder repeat frames to reach a constant rate."""
    source = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "8", "-c:v", "ffv1"]
    ffmpeg(*source, str(tmp_path / "cfr.mkv"))
    ffmpeg(*source, "-vf", "setpts='(N+N*N)/10/TB'", "-fps_mode", "passthrough", str(tmp_path / "vfr.mkv"))
    cfr, vfr = read_video(tmp_path / "cfr.mkv"), read_video(tmp_path / "vfr.mkv")
    assert probe_video(tmp_path / "vfr.mkv").frames == 8
    assert vfr.frames.shape == (8, 48, 64, 3)
    np.testing.assert_array_equal(vfr.frames, cfr.frames)  # ffv1 is lossless: same 8 pictures


def test_write_refusals(tmp_path):
    frames = smooth_video(frames=3, height=16, width=16)
    with pytest.raises(InputError, match="even width and height, got 15x16"):
        write_video(tmp_path / "odd.mp4", frames[:, :, :15], fps=10)
    with pytest.raises(InputError, match="uint8"):
        write_video(tmp_path / "f.mp4", frames.astype(np.float32), fps=10)
    with pytest.raises(InputError, match="frame rate"):
        write_video(tmp_path / "f.mp4", frames, fps=0)
    with pytest.raises(InputError, match="must end in"):
        write_video(tmp_path / "f.gif", frames, fps=10)
    with pytest.raises(InputError, match="cannot write in"):
        write_video("/proc/mvt4g-missing/f.mp4", frames, fps=10)
    write_video(tmp_path / "f.mp4", frames, fps=10)
    with pytest.raises(OutputExistsError):
        write_video(tmp_path / "f.mp4", frames, fps=10)
    write_video(tmp_path / "f.mp4", frames[:2], fps=10, overwrite=True)
    assert probe_video(tmp_path / "f.mp4").frames == 2
    # an encoder failure leaves neither the output nor a temporary behind
    with pytest.raises(WorkFailed, match="ffmpeg could not encode"):
        write_video(tmp_path / "bad.mp4", frames, fps=10, preset="no-such-preset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mp4"]


def test_write_pad_to_even_keeps_pixel_grid(tmp_path):
    frames = smooth_video(frames=3, height=31, width=45)
    video = read_video(write_video(tmp_path / "p.mp4", frames, fps=10, pad_to_even=True))
    assert video.frames.shape == (3, 32, 46, 3)
    assert psnr(video.frames[:, :31, :45], frames) > 35  # padded at the right/bottom only


def test_write_grayscale_frames(tmp_path):
    gray = smooth_video(frames=3, height=32, width=48)[..., 1]
    video = read_video(write_video(tmp_path / "g.mp4", gray, fps=10))
    assert video.frames.shape == (3, 32, 48, 3) and psnr(video.frames, np.repeat(gray[..., None], 3, -1)) > 35


# ----------------------------------------------------------------------------- bad inputs


def test_missing_path(tmp_path):
    for fn in (probe_video, read_video):
        with pytest.raises(InputError, match="no such file or folder") as exc:
            fn(tmp_path / "nope.mp4")
        one_line_error(exc, tmp_path / "nope.mp4")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a shopping list, not a video\n")
    for fn in (probe_video, read_video):
        with pytest.raises(InputError, match="not a readable video") as exc:
            fn(path)
        one_line_error(exc, path)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputError, match="empty file"):
        read_video(empty)


def test_truncated_mp4_without_index(tmp_path):
    """bear.mp4 keeps its moov index at the end: cut in half, nothing can be decoded."""
    data = real_video("bear.mp4").read_bytes()
    path = tmp_path / "bear_half.mp4"
    path.write_bytes(data[: len(data) // 2])
    messages = set()
    for fn in (probe_video, read_video, read_video):
        with pytest.raises(InputError, match="truncated MP4: the 'moov' index is missing") as exc:
            fn(path)
        messages.add(one_line_error(exc, path))
    assert len(messages) == 1  # deterministic


def test_truncated_mp4_with_index_first_is_refused(tmp_path):
    """Our own files put the index first (faststart): cut short, the index still promises
    every frame but the data ends early. We refuse rather than return a shorter video."""
    full = write_video(tmp_path / "full.mp4", smooth_video(frames=30, height=64, width=96), fps=30)
    data = full.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.6)])
    messages = set()
    for fn in (probe_video, read_video, read_video):
        with pytest.raises(InputError, match="truncated or corrupt video") as exc:
            fn(path)
        messages.add(one_line_error(exc, path))
    assert len(messages) == 1


def test_video_with_zero_frames(tmp_path):
    path = tmp_path / "zero.y4m"  # a valid YUV4MPEG2 stream header and no frames
    path.write_bytes(b"YUV4MPEG2 W64 H48 F30:1 Ip A1:1 C420jpeg\n")
    for fn in (probe_video, read_video):
        with pytest.raises(InputError, match="0 frames"):
            fn(path)


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "sound.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.2", str(path))
    with pytest.raises(InputError, match="no video stream") as exc:
        read_video(path)
    one_line_error(exc, path)


def test_rotated_video_is_turned_upright(tmp_path):
    frames = smooth_video(frames=3, height=32, width=48)
    plain = write_video(tmp_path / "plain.mp4", frames, fps=10)
    rotated = tmp_path / "rotated.mp4"
    try:
        ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    except subprocess.CalledProcessError:
        pytest.skip("this ffmpeg cannot set display rotation")
    info = probe_video(rotated)
    assert (info.height, info.width) == (48, 32)
    video = read_video(rotated)
    # 90 degrees counter-clockwise, as the display matrix says
    np.testing.assert_array_equal(video.frames, np.rot90(read_video(plain).frames, k=1, axes=(1, 2)))


# ----------------------------------------------------------------------------- folders


def test_frames_folder_round_trip_davis_layout(tmp_path):
    seq = tmp_path / "JPEGImages" / "480p" / "bear"
    seq.parent.mkdir(parents=True)
    frames = smooth_video(frames=4, height=24, width=40)
    written = write_frames(seq, frames, ext="png")
    assert [p.name for p in written] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    video = read_video(seq)
    np.testing.assert_array_equal(video.frames, frames)  # png is lossless
    assert video.fps == FOLDER_FPS == 30.0 and video.source == seq
    assert read_video(seq, fps=24).fps == 24.0
    assert read_video(seq, max_frames=2).frames.shape[0] == 2
    info = probe_video(seq)
    assert (info.frames, info.height, info.width, info.fps) == (4, 24, 40, 30.0)
    # the parent of sequence folders holds no images: the error says what to pass instead
    with pytest.raises(InputError, match="pass one sequence folder"):
        read_video(seq.parent)


def test_frames_folder_jpeg_and_overwrite(tmp_path):
    frames = smooth_video(frames=3, height=32, width=48)
    out = tmp_path / "seq"
    write_frames(out, frames)  # jpg by default
    assert psnr(read_video(out).frames, frames) > 30
    with pytest.raises(OutputExistsError):
        write_frames(out, frames)
    write_frames(out, frames[:2], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["00000.jpg", "00001.jpg"]
    with pytest.raises(InputError, match="jpg or png"):
        write_frames(tmp_path / "x", frames, ext="bmp")


def test_frames_folder_natural_order_and_conversions(tmp_path):
    """Unpadded names sort by number; gray, RGBA and 16-bit images become 8-bit RGB."""
    seq = tmp_path / "seq"
    seq.mkdir()
    rgb = smooth_video(frames=1, height=8, width=12)[0]
    gray = rgb[..., 1]
    cv2.imwrite(str(seq / "1.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(seq / "2.png"), gray)
    rgba = np.concatenate([rgb, np.full((8, 12, 1), 7, np.uint8)], axis=-1)
    cv2.imwrite(str(seq / "10.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(str(seq / "11.png"), cv2.cvtColor(rgb.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    (seq / "notes.txt").write_text("ignored")
    (seq / ".hidden.png").write_bytes(b"ignored")
    frames = read_video(seq).frames
    assert frames.shape == (4, 8, 12, 3)
    np.testing.assert_array_equal(frames[0], rgb)
    np.testing.assert_array_equal(frames[1], np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_array_equal(frames[2], rgb)
    np.testing.assert_array_equal(frames[3], rgb)


def test_frames_folder_refusals(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="folder has no images") as exc:
        read_video(empty)
    one_line_error(exc, empty)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "00000.jpg"), np.zeros((10, 20, 3), np.uint8))
    cv2.imwrite(str(mixed / "00001.jpg"), np.zeros((12, 20, 3), np.uint8))
    with pytest.raises(InputError, match="must share one size") as exc:
        read_video(mixed)
    one_line_error(exc, mixed / "00001.jpg")

    broken = tmp_path / "broken"
    broken.mkdir()
    cv2.imwrite(str(broken / "00000.jpg"), np.zeros((10, 20, 3), np.uint8))
    (broken / "00001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="not a readable image"):
        read_video(broken)
