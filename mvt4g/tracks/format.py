"""The multi-view track file ``tracks.npz`` (docs/ARCHITECTURE.md, "Track file") and its in-memory form.

Arrays (V views, T frames, N tracks)::

    tracks          float32 [V, T, N, 2]  pixel (x, y); pixel centres at (u + 0.5, v + 0.5)
    visible         bool    [V, T, N]     the point is in the image and not occluded
    queries         float32 [N, 4]        (view, frame, x, y) where track n was defined
    image_size      int64   [2]           (H, W) of every view
    method          str                   what made the tracks ("geometry", "flow", "synth", ...)
    format_version  str                   "1"
    views           str     [V]           optional view names (clip view order)
    input_key       str                   optional key of the inputs the tracks were made from
                                          (``mvt4g tracks`` skips clips whose key is current)

Track n is the same physical point in every view and frame. Coordinates of points that are not
visible are kept when finite (a tracker's guess, useful for drawing) but carry no meaning; the
writer stores non-finite ones as 0 so that a file never holds NaN, and the reader rejects NaN.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mvt4g.errors import InputError

if TYPE_CHECKING:
    from mvt4g.io.clip import Clip

FORMAT_VERSION = "1"
REQUIRED_KEYS = ("tracks", "visible", "queries", "image_size", "method", "format_version")


@dataclass
class TrackSet:
    """Multi-view point tracks: see the module docstring for the arrays.

    Validated on construction (raises :class:`InputError`): shapes agree, coordinates are
    finite wherever visible, queries are finite with an integer view in ``[0, V)`` and frame in
    ``[0, T)``, ``image_size`` is two positive ints, ``views`` (when given) names V distinct views.
    """

    tracks: np.ndarray
    visible: np.ndarray
    queries: np.ndarray
    image_size: tuple[int, int]
    method: str
    views: list[str] | None = None

    def __post_init__(self) -> None:
        self.tracks = np.asarray(self.tracks, dtype=np.float32)
        visible = np.asarray(self.visible)
        self.queries = np.asarray(self.queries, dtype=np.float32)
        if self.tracks.ndim != 4 or self.tracks.shape[-1] != 2:
            raise InputError(f"tracks must have shape [V, T, N, 2], got {list(self.tracks.shape)}")
        v, t, n, _ = self.tracks.shape
        if visible.shape != (v, t, n):
            raise InputError(f"visible has shape {list(visible.shape)}, expected {[v, t, n]} (V, T, N)")
        if visible.dtype != bool:
            if not np.isin(visible, (0, 1)).all():
                raise InputError("visible must hold booleans (or 0/1)")
            visible = visible.astype(bool)
        self.visible = visible
        if self.queries.shape != (n, 4):
            raise InputError(f"queries has shape {list(self.queries.shape)}, expected {[n, 4]} (N, 4)")
        if not np.isfinite(self.queries).all():
            raise InputError("queries contain NaN or inf")
        if not np.isfinite(self.tracks[self.visible]).all():
            raise InputError("tracks contain NaN or inf at visible points")
        qv, qt = self.queries[:, 0], self.queries[:, 1]
        if n and (np.any(qv != np.round(qv)) or np.any(qt != np.round(qt))):
            raise InputError("query view and frame (queries[:, 0:2]) must be integers")
        if n and (qv.min() < 0 or qv.max() >= v):
            raise InputError(f"query view out of range [0, {v}): {int(qv.min())}..{int(qv.max())}")
        if n and (qt.min() < 0 or qt.max() >= t):
            raise InputError(f"query frame out of range [0, {t}): {int(qt.min())}..{int(qt.max())}")
        size = tuple(int(s) for s in np.asarray(self.image_size).reshape(-1))
        if len(size) != 2 or min(size) <= 0:
            raise InputError(f"image_size must be two positive ints (H, W), got {list(size)}")
        self.image_size = (size[0], size[1])
        self.method = str(self.method)
        if self.views is not None:
            self.views = [str(name) for name in self.views]
            if len(self.views) != v:
                raise InputError(f"{len(self.views)} view names for {v} views")
            if len(set(self.views)) != v:
                raise InputError(f"view names repeat: {self.views}")

    @property
    def num_views(self) -> int:
        return self.tracks.shape[0]

    @property
    def num_frames(self) -> int:
        return self.tracks.shape[1]

    @property
    def num_tracks(self) -> int:
        return self.tracks.shape[2]

    @property
    def query_views(self) -> np.ndarray:
        """int64 ``[N]``."""
        return self.queries[:, 0].astype(np.int64)

    @property
    def query_frames(self) -> np.ndarray:
        """int64 ``[N]``."""
        return self.queries[:, 1].astype(np.int64)


def write_tracks(path: str | Path, trackset: TrackSet, *, input_key: str | None = None) -> None:
    """Write ``trackset`` to ``path`` (an ``.npz``) atomically.

    ``input_key`` (optional) is stored so a later run can tell the tracks are current.
    """
    from mvt4g.fs.atomic import atomic_path

    tracks = np.where(np.isfinite(trackset.tracks), trackset.tracks, np.float32(0.0)).astype(np.float32)
    arrays: dict[str, np.ndarray] = {
        "tracks": tracks,
        "visible": trackset.visible.astype(bool),
        "queries": trackset.queries.astype(np.float32),
        "image_size": np.asarray(trackset.image_size, dtype=np.int64),
        "method": np.asarray(trackset.method),
        "format_version": np.asarray(FORMAT_VERSION),
    }
    if trackset.views is not None:
        arrays["views"] = np.asarray(trackset.views, dtype=np.str_)
    if input_key is not None:
        arrays["input_key"] = np.asarray(str(input_key))
    # Write through a file object: np.savez given a name would append ".npz" to the temp name.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _open_npz(path: Path):
    if not path.exists():
        raise InputError("no such track file", path=path)
    if not path.is_file():
        raise InputError("not a file", path=path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"not a readable .npz track file ({type(exc).__name__})", path=path) from None


def _scalar_str(data, key: str, path: Path) -> str:
    arr = data[key]
    if arr.shape != () or arr.dtype.kind not in "US":
        raise InputError(f"{key!r} must be a string", path=path)
    return str(arr)


def read_tracks(path: str | Path) -> TrackSet:
    """Read and validate a track file; every problem is one :class:`InputError` line naming it."""
    path = Path(path)
    npz = _open_npz(path)
    if not hasattr(npz, "files"):
        raise InputError("not an .npz track file (a single .npy array)", path=path)
    with npz as data:
        missing = [k for k in REQUIRED_KEYS if k not in data.files]
        if missing:
            raise InputError(f"not a track file: missing {', '.join(missing)}", path=path)
        try:
            version = _scalar_str(data, "format_version", path)
            if version != FORMAT_VERSION:
                raise InputError(f"unsupported format_version {version!r} (this mvt4g reads {FORMAT_VERSION!r})", path=path)
            tracks = data["tracks"]
            visible = data["visible"]
            queries = data["queries"]
            image_size = data["image_size"]
            method = _scalar_str(data, "method", path)
            views = [str(v) for v in data["views"].reshape(-1)] if "views" in data.files else None
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"corrupt track file ({type(exc).__name__}: {exc})", path=path) from None
    for key, arr in (("tracks", tracks), ("queries", queries), ("image_size", image_size)):
        if arr.dtype.kind not in "fiu":
            raise InputError(f"{key!r} must be numeric, got dtype {arr.dtype}", path=path)
    if np.isnan(tracks).any() or np.isnan(queries).any():
        raise InputError("track file contains NaN", path=path)
    try:
        return TrackSet(tracks, visible, queries, tuple(image_size.reshape(-1).tolist()), method, views)
    except InputError as exc:
        raise InputError(str(exc), path=path) from None


def read_input_key(path: str | Path) -> str | None:
    """The stored ``input_key`` of a track file, or None (no file, unreadable, or no key)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "input_key" not in data.files:
                return None
            return str(data["input_key"])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, AttributeError, TypeError):
        return None


def check_fits_clip(trackset: TrackSet, clip: Clip, path: str | Path, *, what: str = "tracks") -> None:
    """Raise :class:`InputError` (naming ``path``) unless ``trackset`` has ``clip``'s views, frames and image size.

    ``what`` names the file's role in the message ("tracks", "queries"); sizes are HxW.
    """
    V, T, H, W = len(clip.views), clip.frames, clip.height, clip.width
    if trackset.tracks.shape[:2] != (V, T) or tuple(trackset.image_size) != (H, W):
        h, w = trackset.image_size
        raise InputError(
            f"{what} are for {trackset.num_views} views x {trackset.num_frames} frames of {h}x{w}, "
            f"clip {clip.root} has {V} x {T} of {H}x{W}",
            path=path,
        )
