"""Frame-size and frame-count policy for model inputs (numpy and OpenCV; no file I/O).

Size: :func:`resize_cover` scales a video so it covers the target size, keeping the aspect
ratio, then centre-crops. Its geometry is the one ``Intrinsics.cover_crop`` applies to a
camera (same scale, same rounding of the resized size, same crop offsets), so cameras,
tracks and pixels stay consistent: a point at continuous pixel ``(x, y)`` of the input
(pixel centres at ``+0.5``) lands at ``(x * rw / W0 - x0, y * rh / H0 - y0)``
(:meth:`CropInfo.map_points`). OpenCV's ``resize`` samples with the same centre convention.

Count: the Wan VAE compresses time 4x and needs ``4k + 1`` frames (81 -> 21 latent frames).
:func:`fit_frame_count` makes a clip that length and says what it did. A longer clip keeps
its first frames (no temporal subsampling: the frame rate, and so the motion per frame, stays
that of the input). A shorter one is padded by repeating its last frame, trimmed to the
largest ``4k + 1`` it holds, or refused, as the caller chooses.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mvt4g.errors import InputError

#: Frames of one Wan/ReCamMaster clip (docs/FACTS.md, section 1: 81 frames 480x832 -> 21 latent frames).
DEFAULT_FRAMES = 81
#: Temporal compression of the Wan VAE.
TEMPORAL_STRIDE = 4
FRAME_POLICIES = ("trim", "pad", "error")

_CV2_INTERP = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


# ----------------------------------------------------------------------------- size


@dataclass(frozen=True)
class CropInfo:
    """How :func:`resize_cover` mapped an ``src_width x src_height`` image to ``width x height``.

    The image was resized to ``resized_width x resized_height`` (``scale`` is the cover
    factor before rounding) and the window at ``(x0, y0)`` of that size was kept.
    """

    src_height: int
    src_width: int
    height: int
    width: int
    scale: float
    resized_height: int
    resized_width: int
    x0: int
    y0: int

    @property
    def scale_x(self) -> float:
        """Exact horizontal factor of the resize (differs from ``scale`` by rounding)."""
        return self.resized_width / self.src_width

    @property
    def scale_y(self) -> float:
        return self.resized_height / self.src_height

    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """Continuous pixel coordinates ``[..., 2]`` (x, y) of the input -> of the output (float64)."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([xy[..., 0] * self.scale_x - self.x0, xy[..., 1] * self.scale_y - self.y0], axis=-1)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def cover_geometry(src_height: int, src_width: int, height: int, width: int) -> CropInfo:
    """Scale, resized size and centre-crop offsets that take a source image to ``height x width``.

    The same arithmetic as ``Intrinsics.cover_crop`` (Python ``round``, half to even).
    """
    if min(src_height, src_width) < 1 or min(height, width) < 1:
        raise InputError(f"sizes must be positive, got {src_width}x{src_height} -> {width}x{height}")
    scale = max(width / src_width, height / src_height)
    rw, rh = round(src_width * scale), round(src_height * scale)
    x0, y0 = (rw - width) // 2, (rh - height) // 2
    return CropInfo(int(src_height), int(src_width), int(height), int(width), scale, rh, rw, x0, y0)


def resize_cover(
    frames: np.ndarray, height: int, width: int, *, interpolation: str = "auto"
) -> tuple[np.ndarray, CropInfo]:
    """Resize ``[T, H0, W0, C]`` or ``[T, H0, W0]`` frames to cover ``height x width``, centre-crop.

    ``interpolation``: ``auto`` uses area averaging when shrinking and bilinear when
    enlarging; ``nearest`` is for label maps (masks). Any dtype OpenCV resizes (uint8,
    uint16, float32, float64) is kept. Returns the ``[T, height, width, ...]`` frames and
    the :class:`CropInfo`. Same size in and out returns a copy, untouched.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or frames.shape[0] < 1:
        raise InputError(f"frames must be [T, H, W] or [T, H, W, C] with T >= 1, got shape {list(frames.shape)}")
    info = cover_geometry(frames.shape[1], frames.shape[2], int(height), int(width))
    if interpolation == "auto":
        interpolation = "area" if info.scale < 1 else "linear"
    if interpolation not in _CV2_INTERP:
        raise InputError(f"unknown interpolation {interpolation!r} (choose auto, {', '.join(_CV2_INTERP)})")
    flag = _CV2_INTERP[interpolation]
    resize_needed = (info.resized_height, info.resized_width) != frames.shape[1:3]
    out = np.empty((frames.shape[0], info.height, info.width) + frames.shape[3:], frames.dtype)
    window = np.s_[info.y0 : info.y0 + info.height, info.x0 : info.x0 + info.width]
    for t, frame in enumerate(frames):
        if resize_needed:
            # cv2 takes (width, height); it drops a trailing channel axis of size 1, restored by the slice assignment
            frame = cv2.resize(frame, (info.resized_width, info.resized_height), interpolation=flag)
        out[t] = frame[window].reshape(out.shape[1:])
    return out, info


# ----------------------------------------------------------------------------- count


def is_valid_frame_count(count: int, stride: int = TEMPORAL_STRIDE) -> bool:
    """Whether ``count`` is of the form ``stride * k + 1`` (k >= 0)."""
    return count >= 1 and (count - 1) % stride == 0


def largest_valid_count(count: int, stride: int = TEMPORAL_STRIDE) -> int:
    """The largest ``stride * k + 1 <= count`` (``count`` >= 1)."""
    return (count - 1) // stride * stride + 1


@dataclass(frozen=True)
class FramePolicyReport:
    """What :func:`fit_frame_count` did.

    ``indices`` int64 ``[output_frames]``: the input frame each output frame is (the last
    index repeats when padding); apply it to cameras, depth or masks of the same clip.
    ``message`` is a sentence for the user, e.g. "trimmed 82 -> 81 frames".
    """

    input_frames: int
    output_frames: int
    action: str  # "kept" | "trimmed" | "padded"
    indices: np.ndarray
    message: str


def fit_frame_count(
    frames: np.ndarray,
    target: int | None = DEFAULT_FRAMES,
    policy: str = "trim",
    stride: int = TEMPORAL_STRIDE,
    *,
    min_frames: int = 5,
) -> tuple[np.ndarray, FramePolicyReport]:
    """Make ``frames`` ``[T, ...]`` exactly ``target`` long (``stride * k + 1``).

    More than ``target`` frames: the first ``target`` are kept, whatever the policy.
    Fewer: ``pad`` repeats the last frame up to ``target``; ``trim`` keeps the largest
    ``stride * k + 1 <= T``; ``error`` raises :class:`InputError`. ``target=None`` means
    the largest ``stride * k + 1 <= T``. Clips shorter than ``min_frames`` are refused.
    The result is a view of ``frames`` when frames are only dropped.
    """
    if policy not in FRAME_POLICIES:
        raise InputError(f"unknown frame policy {policy!r} (choose {', '.join(FRAME_POLICIES)})")
    if stride < 1:
        raise InputError(f"temporal stride must be >= 1, got {stride}")
    frames = np.asarray(frames)
    count = int(frames.shape[0]) if frames.ndim else 0
    if count < max(1, min_frames):
        raise InputError(f"needs at least {max(1, min_frames)} frames, got {count}")
    if target is None:
        target = largest_valid_count(count, stride)
    if not is_valid_frame_count(int(target), stride):
        raise InputError(f"frame count must be {stride}k+1 (e.g. 81), got {target}")
    target = int(target)

    if count < target and policy == "error":
        raise InputError(
            f"has {count} frames, fewer than the {target} required (pad or trim with the frame policy)"
        )
    if count < target and policy == "pad":
        indices = np.concatenate([np.arange(count), np.full(target - count, count - 1)]).astype(np.int64)
        report = FramePolicyReport(
            count, target, "padded", indices, f"padded {count} -> {target} frames by repeating the last frame"
        )
        return frames[indices], report
    keep = target if count >= target else largest_valid_count(count, stride)
    indices = np.arange(keep, dtype=np.int64)
    if keep == count:
        return frames, FramePolicyReport(count, count, "kept", indices, f"kept {count} frames")
    message = f"trimmed {count} -> {keep} frames (kept the first {keep})"
    return frames[:keep], FramePolicyReport(count, keep, "trimmed", indices, message)


def latent_frame_indices(frames: int | np.ndarray, stride: int = TEMPORAL_STRIDE) -> np.ndarray:
    """Indices ``[0, stride, 2 * stride, ...]`` of the frames that line up with latent frames.

    ``frames`` is a count or an array ``[T, ...]``; ``T`` must be ``stride * k + 1``, giving
    ``1 + (T - 1) // stride`` indices (int64), e.g. 81 -> 21 (ReCamMaster's camera frames).
    """
    count = int(frames) if np.ndim(frames) == 0 else int(np.shape(frames)[0])
    if not is_valid_frame_count(count, stride):
        raise InputError(f"frame count must be {stride}k+1 (e.g. 81), got {count}")
    return np.arange(0, count, stride, dtype=np.int64)
