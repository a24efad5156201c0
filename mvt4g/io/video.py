"""Reading and writing videos and DAVIS-style frame folders.

Videos are decoded and encoded by the ffmpeg binary that ships with ``imageio-ffmpeg``
(``imageio_ffmpeg.get_ffmpeg_exe()``; the ``IMAGEIO_FFMPEG_EXE`` variable picks another).
We drive it directly rather than through imageio's reader and writer because we need what
they hide: imageio's reader returns the frames that decode from a truncated file without
saying so, and its writer silently resizes to a multiple of 16 pixels.

Policy on damaged input (deterministic, and the same for :func:`probe_video` and
:func:`read_video`): a file ffmpeg cannot open, a truncated file (an MP4 whose ``moov``
index was cut off, or one whose frame data ends early), a decode error, and a video with no
frames are all refused with :class:`~mvt4g.errors.InputError`. We never return a silently
shortened video.

Frame counts come from counting the packets of the first video stream (``ffmpeg -c copy``,
no decoding), not from the container's duration or frame-count fields, which describe the
file as it was written and so overstate a truncated one. For ordinary files the packet count
equals the number of decoded frames; :func:`read_video` checks that it does.

A folder of images (DAVIS ``JPEGImages/480p/<seq>/00000.jpg``) reads as a video: files
ending ``.jpg``, ``.jpeg`` or ``.png`` in natural name order (``2.png`` before ``10.png``;
the same as plain sorting for zero-padded names). A folder carries no frame rate, so it gets
:data:`FOLDER_FPS` unless the caller passes ``fps=``.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mvt4g.errors import InputError, WorkFailed
from mvt4g.fs.atomic import atomic_dir, atomic_path, check_output_path

#: Frame rate given to a folder of images, which has none of its own (DAVIS is 30 fps).
FOLDER_FPS = 30.0
#: Image files a frame folder may hold.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Containers :func:`write_video` writes H.264 into.
WRITE_SUFFIXES = (".mp4", ".mov", ".mkv")


@dataclass
class Video:
    """Decoded frames: ``frames`` uint8 ``[T, H, W, 3]`` RGB, ``fps`` frames per second."""

    frames: np.ndarray
    fps: float
    source: Path

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds: frame count, displayed size (after rotation) and rate."""

    frames: int
    height: int
    width: int
    fps: float


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg's bundled one unless IMAGEIO_FFMPEG_EXE is set)."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # no bundled binary for this platform and none on PATH
        raise WorkFailed(f"ffmpeg is not available ({_one_line(exc)})") from None


# ----------------------------------------------------------------------------- reading


def probe_video(path: str | Path, *, fps: float | None = None) -> VideoInfo:
    """Frame count, size and frame rate of a video file or a frame folder, without decoding.

    For a folder, only the first image's header is read (:func:`read_video` checks the rest);
    ``fps`` overrides the frame rate (default :data:`FOLDER_FPS` for folders).
    """
    path = _existing(path)
    if path.is_dir():
        files = _list_images(path)
        from PIL import Image

        try:
            with Image.open(files[0]) as img:
                width, height = img.size
        except (OSError, ValueError) as exc:
            raise InputError(f"not a readable image ({_one_line(exc)})", path=files[0]) from None
        return VideoInfo(len(files), int(height), int(width), _check_fps(fps, path) if fps is not None else FOLDER_FPS)
    info = _probe_file(path)
    return info if fps is None else VideoInfo(info.frames, info.height, info.width, _check_fps(fps, path))


def read_video(path: str | Path, max_frames: int | None = None, *, fps: float | None = None) -> Video:
    """Decode a video file or a frame folder into uint8 RGB ``[T, H, W, 3]``.

    ``max_frames`` keeps only the first frames. ``fps`` overrides the frame rate (a folder
    has none: :data:`FOLDER_FPS` by default). Grayscale, RGBA, 16-bit and YUV inputs come
    back as 8-bit RGB. Raises :class:`InputError` for a missing, unreadable, truncated or
    empty input and for a folder whose images differ in size.
    """
    path = _existing(path)
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"max_frames must be >= 1, got {max_frames}", path=path)
    if path.is_dir():
        frames = _read_folder(path, max_frames)
        return Video(frames, _check_fps(fps, path) if fps is not None else FOLDER_FPS, path)
    info = _probe_file(path)
    frames = _decode_file(path, info, max_frames)
    return Video(frames, info.fps if fps is None else _check_fps(fps, path), path)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError("empty file, not a video", path=path)
    return path


def _check_fps(fps: float, path: Path) -> float:
    if not (math.isfinite(float(fps)) and float(fps) > 0):
        raise InputError(f"frame rate must be a positive number, got {fps}", path=path)
    return float(fps)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# Lines ffmpeg prints for data that ends early or does not decode: refuse such files.
_DAMAGE = re.compile(
    r"partial file|corrupt input packet|invalid data found|error splitting the input|decoding error"
    r"|error while decoding",
    re.IGNORECASE,
)


def _probe_file(path: Path) -> VideoInfo:
    """Parse the stream header and count packets of the first video stream (no decoding)."""
    # framecrc lists one line per packet with its flags, still without decoding anything.
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-i", str(path), "-map", "0:V:0"]
    cmd += ["-c", "copy", "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    log = proc.stderr.decode(errors="replace").replace(str(path), "<input>")  # a name is not a symptom
    if proc.returncode != 0:
        if "matches no streams" in log and "Input #0" in log:
            raise InputError("has no video stream", path=path)
        raise InputError(_unreadable_reason(path, log), path=path)
    frames = _count_kept_packets(proc.stdout.decode(errors="replace"))
    damage = _DAMAGE.search(log)
    if damage:
        raise InputError(
            f"truncated or corrupt video: the data ends or breaks near frame {frames} (ffmpeg: {damage.group(0)})",
            path=path,
        )
    stream = _video_stream_line(log)
    size = re.search(r",\s(\d+)x(\d+)\b", stream) if stream else None
    if size is None:
        raise InputError(_unreadable_reason(path, log), path=path)
    width, height = int(size.group(1)), int(size.group(2))
    if _rotation_quarter_turns(log) % 2:  # ffmpeg turns the frames upright when decoding
        width, height = height, width
    if frames == 0:
        raise InputError("video has 0 frames", path=path)
    return VideoInfo(frames, height, width, _stream_fps(stream, path))


_PKT_FLAG_DISCARD = 0x4  # libavcodec: packet outside the edit list, decoded but never shown


def _count_kept_packets(framecrc: str) -> int:
    """Packets of a ``framecrc`` listing that yield a frame (edit-list discards excluded).

    Lines are ``stream, dts, pts, duration, size, crc[, F=0x<flags>]``; flags are printed
    only when they differ from "key frame".
    """
    count = 0
    for line in framecrc.splitlines():
        if not line or line.startswith("#"):
            continue
        flags = re.search(r"F=0x([0-9A-Fa-f]+)", line)
        if flags is None or not int(flags.group(1), 16) & _PKT_FLAG_DISCARD:
            count += 1
    return count


def _unreadable_reason(path: Path, log: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[4:8] == b"ftyp" and "moov atom not found" in log:
        return "truncated MP4: the 'moov' index is missing (file cut short or still being written)"
    errors = [ln.strip() for ln in log.splitlines() if re.search(r"error|invalid|not found|no such", ln, re.IGNORECASE)]
    detail = _one_line(errors[0]) if errors else "ffmpeg could not open it"
    detail = re.sub(r"^\[[^\]]*\]\s*", "", detail)  # drop ffmpeg's "[in#0 @ 0x...]" prefix
    return f"not a readable video ({detail})"


def _video_stream_line(log: str) -> str | None:
    """The header line of the first video stream that is not an attached picture (cover art)."""
    for line in log.split("Stream mapping:")[0].splitlines():
        if re.search(r"Stream #\d+:\d+.*: Video:", line) and "attached pic" not in line:
            return line
    return None


def _stream_fps(stream: str, path: Path) -> float:
    # ffmpeg prints the rate rounded to 2 decimals ("29.97 fps"); "tbr" is its guess when
    # the container stores no average rate.
    for unit in ("fps", "tbr"):
        m = re.search(rf"([\d.]+)(k?) {unit}\b", stream)
        if m:
            value = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
            if math.isfinite(value) and value > 0:
                return value
    raise InputError("video stream has no frame rate (pass fps= to set one)", path=path)


def _rotation_quarter_turns(log: str) -> int:
    m = re.search(r"rotation of (-?[\d.]+) degrees", log, re.IGNORECASE) or re.search(
        r"^\s*rotate\s*:\s*(-?[\d.]+)", log, re.MULTILINE
    )
    return round(float(m.group(1)) / 90.0) % 4 if m else 0


def _decode_file(path: Path, info: VideoInfo, max_frames: int | None) -> np.ndarray:
    """Decode to rgb24 straight into a preallocated ``[T, H, W, 3]`` array."""
    want = info.frames if max_frames is None else min(info.frames, int(max_frames))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i", str(path), "-map", "0:V:0"]
    # passthrough: one output frame per decoded frame, never duplicated or dropped to
    # reach a constant rate (the rawvideo muxer would otherwise do that for VFR input).
    cmd += ["-fps_mode", "passthrough", "-frames:v", str(want), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    out = np.empty((want, info.height, info.width, 3), np.uint8)
    frame_bytes = info.height * info.width * 3
    got_frames = 0
    with tempfile.TemporaryFile() as err_file:  # a file, not a pipe: ffmpeg never blocks on it
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_file)
        try:
            while got_frames < want:
                got = _read_into(proc.stdout, memoryview(out[got_frames]).cast("B"))
                if got == 0:
                    break
                if got != frame_bytes:
                    raise InputError(f"decoded a partial frame ({got} of {frame_bytes} bytes)", path=path)
                got_frames += 1
        finally:
            proc.stdout.close()  # ffmpeg, if still writing, gets EPIPE and exits
            proc.wait()
        err_file.seek(0)
        log = err_file.read().decode(errors="replace").replace(str(path), "<input>")
    damage = _DAMAGE.search(log)
    if damage or proc.returncode != 0:
        last_line = log.strip().splitlines()[-1] if log.strip() else f"exit status {proc.returncode}"
        detail = damage.group(0) if damage else _one_line(last_line)
        raise InputError(
            f"truncated or corrupt video: decoding failed after {got_frames} frames (ffmpeg: {detail})", path=path
        )
    if got_frames < want:
        raise InputError(f"truncated or corrupt video: only {got_frames} of {want} frames decode", path=path)
    return out


def _read_into(stream, buf: memoryview) -> int:
    """Fill ``buf`` from ``stream``; fewer bytes only at end of stream."""
    total = 0
    while total < len(buf):
        n = stream.readinto(buf[total:])
        if not n:
            break
        total += n
    return total


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _list_images(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not files:
        subdirs = [p for p in folder.iterdir() if p.is_dir()]
        hint = f"; it holds {len(subdirs)} folder(s): pass one sequence folder" if subdirs else ""
        raise InputError(f"folder has no images ({', '.join(IMAGE_SUFFIXES)}){hint}", path=folder)
    return sorted(files, key=_natural_key)


def _read_folder(folder: Path, max_frames: int | None) -> np.ndarray:
    files = _list_images(folder)[: max_frames or None]
    first = _read_image(files[0])
    out = np.empty((len(files),) + first.shape, np.uint8)
    out[0] = first
    for i, file in enumerate(files[1:], start=1):
        img = _read_image(file)
        if img.shape != first.shape:
            raise InputError(
                f"image is {img.shape[1]}x{img.shape[0]} but {files[0].name} is {first.shape[1]}x{first.shape[0]}: "
                "frames of a folder must share one size",
                path=file,
            )
        out[i] = img
    return out


def _read_image(file: Path) -> np.ndarray:
    """One image as uint8 RGB ``[H, W, 3]`` (gray, alpha and 16-bit converted)."""
    img = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("not a readable image", path=file)
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)  # 65535 -> 255 exactly
    elif img.dtype != np.uint8:
        raise InputError(f"unsupported image sample type {img.dtype}", path=file)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)  # alpha dropped
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- writing


def _as_rgb_uint8(frames: np.ndarray, path: Path) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:  # [T, H, W] grayscale
        frames = np.repeat(frames[..., None], 3, axis=3)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] < 1:
        raise InputError(f"frames must be [T, H, W, 3] with T >= 1, got shape {list(frames.shape)}", path=path)
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {frames.dtype}", path=path)
    return np.ascontiguousarray(frames)


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    *,
    crf: int = 18,
    preset: str = "medium",
    pad_to_even: bool = False,
    overwrite: bool = False,
) -> Path:
    """Encode uint8 RGB ``[T, H, W, 3]`` (or gray ``[T, H, W]``) as H.264 (libx264, yuv420p).

    yuv420p needs an even width and height: odd sizes raise :class:`InputError` unless
    ``pad_to_even`` (one column/row repeated at the right/bottom edge, so pixel coordinates
    and intrinsics stay valid). Frames are never resized. ``crf`` is x264's quality (0-51,
    lower is better; 18 is visually lossless). The file is written atomically (a temporary
    sibling with the same suffix, then renamed) with the index at the front (faststart).
    """
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise InputError(f"video output must end in {', '.join(WRITE_SUFFIXES)}", path=path)
    check_output_path(path, overwrite=overwrite)
    frames = _as_rgb_uint8(frames, path)
    fps = _check_fps(fps, path)
    if not 0 <= int(crf) <= 51:
        raise InputError(f"crf must be in 0..51, got {crf}", path=path)
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        if not pad_to_even:
            raise InputError(
                f"H.264 (yuv420p) needs an even width and height, got {width}x{height}: resize/crop or pad first",
                path=path,
            )
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        _, height, width, _ = frames.shape
    with atomic_path(path) as tmp:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostats", "-v", "error", "-y"]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", repr(fps), "-i", "-"]
        cmd += ["-an", "-c:v", "libx264", "-preset", preset, "-crf", str(int(crf)), "-pix_fmt", "yuv420p"]
        cmd += ["-movflags", "+faststart", str(tmp)]
        with tempfile.TemporaryFile() as err_file:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err_file)
            try:
                for frame in frames:
                    proc.stdin.write(frame.tobytes())
            except BrokenPipeError:
                pass  # ffmpeg quit early; its log below says why
            finally:
                proc.stdin.close()
                proc.wait()
            err_file.seek(0)
            log = err_file.read().decode(errors="replace").strip()
        if proc.returncode != 0:
            raise WorkFailed(f"ffmpeg could not encode the video ({_one_line(log) or proc.returncode})", path=path)
    return path


def write_frames(
    directory: str | Path,
    frames: np.ndarray,
    *,
    ext: str = "jpg",
    jpeg_quality: int = 95,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``[T, H, W, 3]`` uint8 RGB as ``00000.jpg, 00001.jpg, ...`` (DAVIS layout).

    ``ext`` is ``jpg`` or ``png`` (lossless). The folder is built next to ``directory`` and
    renamed into place, so a failure leaves nothing behind. Returns the written paths.
    """
    directory = Path(directory)
    ext = ext.lower().lstrip(".")
    if f".{ext}" not in IMAGE_SUFFIXES:
        raise InputError(f"frame format must be jpg or png, got {ext!r}", path=directory)
    check_output_path(directory, overwrite=overwrite, is_dir=True)
    frames = _as_rgb_uint8(frames, directory)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext in ("jpg", "jpeg") else []
    digits = max(5, len(str(len(frames) - 1)))
    names = [f"{i:0{digits}d}.{ext}" for i in range(len(frames))]
    with atomic_dir(directory, overwrite=overwrite) as tmp:
        for name, frame in zip(names, frames):
            if not cv2.imwrite(str(tmp / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params):
                raise WorkFailed("could not write image", path=directory / name)
    return [directory / name for name in names]
