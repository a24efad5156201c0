"""Clip directories: synchronized views of one scene with their cameras (docs/ARCHITECTURE.md, "Clip directory").

Layout (every file but the videos and cameras is optional)::

    clip/
      videos/cam01.mp4 ...              synchronized views (any name; the stem is the view name)
      cameras/cameras.json              mvt4g native cameras (mvt4g.camera.rig)
      cameras/camera_extrinsics.json    accepted instead (MultiCamVideo layout, see below)
      depth/cam01.npz                   array "depth" [T, H, W], z-depth in metres
      masks/cam01.npz                   array "masks" [T, H, W], integer object ids (0 = background)
      tracks.npz                        multi-view tracks (mvt4g.tracks)
      plucker/cam01.safetensors         cached ray maps (mvt4g plucker)
      meta.json                         fps, frames, caption, provenance

A clip's caption is ``meta.json``'s, else its row in a dataset's ``metadata.csv``
(:mod:`mvt4g.io.captions`, ReCamMaster's caption file).

MultiCamVideo stores no intrinsics: the focal length comes from ``meta.json``'s ``focal_mm``
or from a parent folder named like ``f24_aperture5``, on its 23.76 mm square sensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.rig import ViewCameras, read_cameras_json
from mvt4g.errors import InputError
from mvt4g.fs.atomic import is_temp_name
from mvt4g.fs.jsonio import read_json
from mvt4g.io.captions import caption_of

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
_FOCAL_DIR = re.compile(r"f(\d+(?:\.\d+)?)_aperture", re.IGNORECASE)


@dataclass
class Clip:
    """A validated clip directory. Arrays are read on demand.

    Attributes:
        root: the clip directory.
        cameras: view name -> cameras, in view order (sorted names).
        videos: view name -> video path.
        frames, height, width, fps: shared by every view.
        meta: the parsed ``meta.json`` (empty when absent).
        caption_source: the file the caption came from (None: no caption, "").
    """

    root: Path
    cameras: dict[str, ViewCameras]
    videos: dict[str, Path]
    frames: int
    height: int
    width: int
    fps: float
    meta: dict = field(default_factory=dict)
    caption_text: str = ""
    caption_source: Path | None = None

    @property
    def views(self) -> list[str]:
        return list(self.cameras)

    @property
    def tracks_path(self) -> Path:
        return self.root / "tracks.npz"

    @property
    def caption(self) -> str:
        return self.caption_text

    def read_video(self, view: str) -> np.ndarray:
        """Frames of one view, uint8 ``[T, H, W, 3]``."""
        from mvt4g.io.video import read_video

        frames = read_video(self.videos[view]).frames
        if frames.shape[:3] != (self.frames, self.height, self.width):
            raise InputError(
                f"decoded {list(frames.shape[:3])} frames x H x W, expected {[self.frames, self.height, self.width]}",
                path=self.videos[view],
            )
        return frames

    def has_depth(self) -> bool:
        return all((self.root / "depth" / f"{v}.npz").is_file() for v in self.views)

    def read_depth(self, view: str) -> np.ndarray:
        """z-depth in metres, float32 ``[T, H, W]``."""
        return self._read_array("depth", view, "depth", np.float32)

    def read_masks(self, view: str) -> np.ndarray:
        """Object ids, ``[T, H, W]``."""
        return self._read_array("masks", view, "masks", None)

    def _read_array(self, folder: str, view: str, key: str, dtype: object) -> np.ndarray:
        path = self.root / folder / f"{view}.npz"
        try:
            with np.load(path) as data:
                if key not in data:
                    raise InputError(f"missing array {key!r}", path=path)
                arr = data[key]
        except FileNotFoundError:
            raise InputError("no such file", path=path) from None
        except (OSError, ValueError) as exc:
            raise InputError(f"not a readable .npz file ({exc})", path=path) from None
        want = (self.frames, self.height, self.width)
        if arr.shape != want:
            raise InputError(f"{key} has shape {list(arr.shape)}, expected {list(want)} (T, H, W)", path=path)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
            if not np.isfinite(arr).all():
                raise InputError(f"{key} contains NaN or inf", path=path)
        return arr


def _read_meta(root: Path) -> dict:
    path = root / "meta.json"
    if not path.is_file():
        return {}
    return read_json(path, what="meta.json")


def _multicamvideo_focal_mm(root: Path, meta: dict) -> float:
    if "focal_mm" in meta:
        return float(meta["focal_mm"])
    for parent in (root, *root.parents):
        match = _FOCAL_DIR.search(parent.name)
        if match:
            return float(match.group(1))
    raise InputError(
        "camera_extrinsics.json stores no intrinsics: put the clip under a folder like "
        "'f24_aperture5' or add \"focal_mm\" to meta.json",
        path=root / "cameras" / "camera_extrinsics.json",
    )


def _read_clip_cameras(root: Path, meta: dict, sizes: dict[str, tuple[int, int]]) -> dict[str, ViewCameras]:
    native = root / "cameras" / "cameras.json"
    if native.is_file():
        return read_cameras_json(native)
    mcv = root / "cameras" / "camera_extrinsics.json"
    if mcv.is_file():
        from mvt4g.camera.converters import read_multicamvideo_extrinsics

        poses = read_multicamvideo_extrinsics(mcv)
        focal = _multicamvideo_focal_mm(root, meta)
        cams = {}
        for view, c2w in poses.items():
            if view not in sizes:
                continue  # MultiCamVideo scenes ship 10 cameras; a clip may hold a subset of videos
            h, w = sizes[view]
            cams[view] = ViewCameras(w, h, Intrinsics.from_focal_mm(focal, w, h).K, c2w)
        return cams
    raise InputError("clip has no cameras (expected cameras/cameras.json or cameras/camera_extrinsics.json)", path=root)


def list_videos(root: Path) -> dict[str, Path]:
    """View name -> video path for ``root/videos``, sorted by name."""
    folder = root / "videos"
    if not folder.is_dir():
        raise InputError("clip has no videos/ folder", path=root)
    # Hidden names are not views: a writer's temporary (.cam01.….tmp.mp4, left by kill -9) is one.
    videos = {p.stem: p for p in sorted(folder.iterdir())
              if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() and not p.name.startswith(".")}  # fmt: skip
    if not videos:
        raise InputError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in videos/", path=root)
    return videos


def is_clip_dir(path: Path) -> bool:
    """A clip folder: a folder with ``videos/``."""
    return (path / "videos").is_dir()


def find_clips(root: str | Path) -> list[Path]:
    """Clip folders at or below ``root``, in sorted path order: a dataset folder may nest them
    (MultiCamVideo: ``train/f24_aperture5/scene1``); a clip folder is not searched further, and
    hidden names (``.NAME``, a killed writer's temporaries) are skipped.

    Raises :class:`InputError` when ``root`` is not a folder or holds no clip.
    """
    root = Path(root)
    if not root.exists():
        raise InputError("no such clip or dataset folder", path=root)
    if not root.is_dir():
        raise InputError("not a folder (expected a clip or a dataset folder)", path=root)
    if is_clip_dir(root):
        return [root]
    found: list[Path] = []
    seen: set[Path] = set()

    def walk(folder: Path) -> None:
        real = folder.resolve()
        if real in seen:  # a symlink loop
            return
        seen.add(real)
        try:
            children = sorted(p for p in folder.iterdir() if not _hidden(p.name) and p.is_dir())
        except OSError:
            return
        for child in children:
            if is_clip_dir(child):
                found.append(child)
            else:
                walk(child)

    walk(root)
    if not found:
        raise InputError("no clip folders (folders with videos/) here or below", path=root)
    return found


def _hidden(name: str) -> bool:
    return name.startswith(".") or is_temp_name(name)


def read_clip(path: str | Path) -> Clip:
    """Open and validate a clip directory.

    Checks: the folder exists; videos and cameras exist and name the same views; every video
    has the same frame count, size and frame rate; each view's cameras match its video's
    size and frame count. Pixel data is not decoded here.
    """
    from mvt4g.io.video import probe_video

    root = Path(path)
    if not root.exists():
        raise InputError("no such clip directory", path=root)
    if not root.is_dir():
        raise InputError("not a clip directory", path=root)
    meta = _read_meta(root)
    videos = list_videos(root)
    infos = {view: probe_video(p) for view, p in videos.items()}
    cameras = _read_clip_cameras(root, meta, {v: (i.height, i.width) for v, i in infos.items()})
    missing = sorted(set(videos) - set(cameras))
    if missing:
        raise InputError(f"no cameras for view(s) {', '.join(missing)}", path=root)
    extra = sorted(set(cameras) - set(videos))
    if extra:
        raise InputError(f"cameras for view(s) without a video: {', '.join(extra)}", path=root)
    first = next(iter(infos))
    ref = infos[first]
    for view, info in infos.items():
        if (info.frames, info.height, info.width) != (ref.frames, ref.height, ref.width):
            raise InputError(
                f"views differ: {first} has {ref.frames} frames of {ref.width}x{ref.height}, "
                f"{view} has {info.frames} frames of {info.width}x{info.height}",
                path=root,
            )
    if ref.frames < 2:
        raise InputError(f"videos have {ref.frames} frame(s); a clip needs at least 2", path=videos[first])
    for view in sorted(videos):
        cam = cameras[view]
        if (cam.width, cam.height) != (ref.width, ref.height):
            raise InputError(f"cameras of {view} are for {cam.width}x{cam.height}, video is {ref.width}x{ref.height}", path=root)
        if cam.frames != ref.frames:
            raise InputError(f"cameras of {view} have {cam.frames} frames, video has {ref.frames}", path=root)
    views = sorted(videos)
    caption = caption_of([videos[v] for v in views] + [root], meta=meta, meta_path=root / "meta.json")
    return Clip(
        root=root,
        cameras={v: cameras[v] for v in views},
        videos={v: videos[v] for v in views},
        frames=ref.frames,
        height=ref.height,
        width=ref.width,
        fps=float(meta.get("fps", ref.fps)),
        meta=meta,
        caption_text=caption.text,
        caption_source=caption.source,
    )
