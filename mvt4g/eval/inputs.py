"""Input checks shared by the evaluation metrics, and the "metric could not be computed" error.

Every metric takes videos as uint8 RGB ``[T, H, W, 3]`` (what ``mvt4g.io.read_video``
returns) and refuses, with one line, anything it cannot score honestly: a size or length
mismatch between the two videos, a wrong dtype, an empty video, a mask of another shape.
Nothing is resized or cropped silently here; callers resize explicitly and say so.
"""

from __future__ import annotations

import numpy as np

from mvt4g.errors import InputError, WorkFailed


class MetricUnavailable(WorkFailed):
    """The inputs were valid but the metric has no honest value (e.g. no SIFT matches at all).

    Callers report the metric as skipped with ``str(err)`` as the reason instead of a number.
    """


def check_video(video: object, *, name: str = "video", min_frames: int = 1) -> np.ndarray:
    """Return ``video`` as a uint8 ``[T, H, W, 3]`` array or raise :class:`InputError`.

    A single ``[H, W, 3]`` image is accepted as a one-frame video.
    """
    arr = np.asarray(video)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(f"{name} must be RGB frames [T, H, W, 3], got shape {list(arr.shape)}")
    if arr.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 (0-255), got {arr.dtype}")
    if arr.shape[0] < min_frames or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise InputError(f"{name} needs at least {min_frames} frame(s) of non-zero size, got shape {list(arr.shape)}")
    return arr


def check_video_pair(
    pred: object, target: object, *, names: tuple[str, str] = ("generated video", "ground truth")
) -> tuple[np.ndarray, np.ndarray]:
    """Both videos as uint8 ``[T, H, W, 3]`` of the same shape, or one-line :class:`InputError`."""
    a = check_video(pred, name=names[0])
    b = check_video(target, name=names[1])
    if a.shape[1:3] != b.shape[1:3]:
        raise InputError(
            f"{names[0]} is {a.shape[2]}x{a.shape[1]} but {names[1]} is {b.shape[2]}x{b.shape[1]} "
            "(resize one explicitly before scoring)"
        )
    if a.shape[0] != b.shape[0]:
        raise InputError(f"{names[0]} has {a.shape[0]} frames but {names[1]} has {b.shape[0]}")
    return a, b


def check_mask(mask: object, frames: int, height: int, width: int, *, name: str = "mask") -> np.ndarray:
    """A boolean ``[T, H, W]`` mask (nonzero = counted); ``[H, W]`` is broadcast over frames."""
    arr = np.asarray(mask)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.broadcast_to(arr, (frames,) + arr.shape)
    if arr.shape != (frames, height, width):
        raise InputError(f"{name} must have shape [{frames}, {height}, {width}] or [{height}, {width}], got {list(arr.shape)}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or inf")
    return arr != 0
