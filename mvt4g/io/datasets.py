"""Readers for the evaluation datasets: DAVIS 2017 and DyCheck iPhone (the subsets of their layouts we accept).

DAVIS 2017 (``DavisDataset(root)``), exactly this part of the official layout::

    ROOT/JPEGImages/480p/SEQ/00000.jpg ...      frames (required)
    ROOT/Annotations/480p/SEQ/00000.png ...     object masks, indexed-colour PNGs (optional)
    ROOT/ImageSets/2017/train.txt, val.txt      sequence names, one per line (for a split)

Frames are read in natural name order (``mvt4g.io.video.read_video`` on the folder). Masks
are palette-index PNGs (pixel value = object id, 0 = background); a sequence's masks are
only returned when every frame has one with the same file stem (test-dev sequences, with a
first-frame mask only, have none to return).

DyCheck iPhone (``DycheckSequence(root)``, ``root`` = one sequence folder)::

    ROOT/rgb/Nx/CAM_TIME.png                  frames at downsampling factor N (required)
    ROOT/camera/CAM_TIME.json                 DyCheck cameras for the full-size images (required)
    ROOT/splits/train.json, val.json          {"frame_names", "camera_ids", "time_ids"}
    ROOT/dataset.json                         {"train_ids", "val_ids"}: used when splits/ is absent
    ROOT/covisible/Nx/val/CAM_TIME.png        co-visibility masks of validation frames (optional)

Frame names are ``f"{camera_id}_{time_id:05d}"``. Cameras are read with
``mvt4g.camera.converters.read_dycheck_camera`` (OpenCV axes, no distortion) and their
intrinsics rescaled to the size of the images actually read; their positions are used as
stored (DyCheck's ``scene.json`` centring and scaling is not applied: only relative poses
and directions matter to our metrics). Covisibility masks come from the same factor folder;
if only another factor has them they are resized with nearest-neighbour sampling. The other
files of the release (depth, keypoints, points.npy, metadata.json, ...) are not read.

The iPhone benchmark (:meth:`DycheckSequence.benchmark_pairs`): the reference is the
handheld camera 0 and the targets are the validation cameras (1 and 2) at the same time ids;
each target keeps its longest run of consecutive time ids (a video needs contiguous time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mvt4g.camera.converters import read_dycheck_camera
from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.errors import InputError
from mvt4g.fs.jsonio import read_json
from mvt4g.io.video import Video, read_video

DAVIS_SPLITS = ("train", "val")
_FRAME_NAME = re.compile(r"(\d+)_(\d+)")

# ----------------------------------------------------------------------------- DAVIS


@dataclass(frozen=True)
class DavisSequence:
    """One DAVIS sequence: its frame folder and (optional) annotation folder."""

    name: str
    frames_dir: Path
    annotations_dir: Path | None

    def read_frames(self, max_frames: int | None = None) -> Video:
        """Frames as uint8 ``[T, H, W, 3]`` (30 fps, DAVIS's rate)."""
        return read_video(self.frames_dir, max_frames)

    def read_masks(self, max_frames: int | None = None) -> np.ndarray | None:
        """Object ids uint8 ``[T, H, W]`` (0 = background), or ``None`` without an annotation folder.

        Raises :class:`InputError` when annotations do not cover every frame or differ in size.
        """
        if self.annotations_dir is None:
            return None
        frames = _image_files(self.frames_dir)[: max_frames or None]
        masks = []
        for frame in frames:
            path = self.annotations_dir / f"{frame.stem}.png"
            if not path.is_file():
                have = len(_image_files(self.annotations_dir, (".png",), required=False))
                raise InputError(f"annotations cover {have} of {len(_image_files(self.frames_dir))} frames "
                                 f"(no {path.name})", path=self.annotations_dir)  # fmt: skip
            masks.append(_read_index_png(path))
        if len({m.shape for m in masks}) != 1:
            raise InputError("annotation images differ in size", path=self.annotations_dir)
        return np.stack(masks)


class DavisDataset:
    """A DAVIS 2017 folder (see the module docstring for the accepted layout)."""

    def __init__(self, root: str | Path, resolution: str = "480p"):
        self.root = Path(root)
        self.resolution = resolution
        self.frames_root = self.root / "JPEGImages" / resolution
        if not self.root.is_dir():
            raise InputError("no such folder", path=self.root)
        if not self.frames_root.is_dir():
            raise InputError(f"not a DAVIS 2017 folder: JPEGImages/{resolution} is missing", path=self.root)

    def sequences(self, split: str = "val") -> list[str]:
        """Sequence names of ``split`` (``train``/``val`` from ImageSets/2017, ``all`` = every frame folder)."""
        if split == "all":
            return sorted(p.name for p in self.frames_root.iterdir() if p.is_dir())
        if split not in DAVIS_SPLITS:
            raise InputError(f"unknown DAVIS split {split!r} (choose train, val or all)")
        path = self.root / "ImageSets" / "2017" / f"{split}.txt"
        if not path.is_file():
            raise InputError(f"DAVIS split file ImageSets/2017/{split}.txt is missing", path=self.root)
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise InputError("split file lists no sequences", path=path)
        return names

    def sequence(self, name: str) -> DavisSequence:
        """One sequence; raises :class:`InputError` naming the missing folder."""
        frames_dir = self.frames_root / name
        if not frames_dir.is_dir():
            raise InputError(f"sequence {name!r} has no frame folder JPEGImages/{self.resolution}/{name}", path=self.root)
        _image_files(frames_dir)
        ann = self.root / "Annotations" / self.resolution / name
        return DavisSequence(name, frames_dir, ann if ann.is_dir() else None)


def _image_files(folder: Path, suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png"), required: bool = True) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith(".")),
                   key=lambda p: [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)])  # fmt: skip
    if required and not files:
        raise InputError(f"folder has no images ({', '.join(suffixes)})", path=folder)
    return files


def _read_index_png(path: Path) -> np.ndarray:
    """A palette or grayscale PNG as its raw indices, uint8 ``[H, W]``."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "1"):
                raise InputError(f"annotation is a {img.mode} image; expected an indexed (palette) PNG", path=path)
            return np.array(img.convert("L") if img.mode == "1" else img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable PNG ({exc})", path=path) from None


# ----------------------------------------------------------------------------- DyCheck


@dataclass
class DycheckView:
    """Frames of one DyCheck camera at chosen time ids.

    ``frames`` uint8 ``[T, H, W, 3]``; ``K`` float64 ``[T, 3, 3]`` and ``c2w`` ``[T, 4, 4]`` for
    those images; ``covisible`` bool ``[T, H, W]`` (True = seen during training) or ``None``.
    """

    camera_id: int
    time_ids: np.ndarray
    frames: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    covisible: np.ndarray | None = None

    @property
    def intrinsics(self) -> Intrinsics:
        """Frame 0's intrinsics (DyCheck's validation cameras are fixed)."""
        return Intrinsics.from_K(self.K[0], self.frames.shape[2], self.frames.shape[1])


@dataclass
class DycheckPair:
    """One iPhone benchmark item: the handheld reference and one validation camera at the same times."""

    reference: DycheckView
    target: DycheckView


class DycheckSequence:
    """One DyCheck iPhone sequence folder (see the module docstring for the accepted layout)."""

    def __init__(self, root: str | Path, factor: int = 1):
        self.root = Path(root)
        self.factor = int(factor)
        if not self.root.is_dir():
            raise InputError("no such folder", path=self.root)
        for needed in (f"rgb/{self.factor}x", "camera"):
            if not (self.root / needed).is_dir():
                raise InputError(f"not a DyCheck sequence: {needed}/ is missing", path=self.root)

    def split(self, name: str) -> list[tuple[str, int, int]]:
        """``(frame name, camera id, time id)`` of every frame of split ``train`` or ``val``."""
        if name not in ("train", "val"):
            raise InputError(f"unknown DyCheck split {name!r} (choose train or val)")
        path = self.root / "splits" / f"{name}.json"
        if path.is_file():
            data = _load_json(path)
            try:
                rows = list(zip(data["frame_names"], data["camera_ids"], data["time_ids"], strict=True))
                return [(str(n), int(c), int(t)) for n, c, t in rows]
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"malformed split file ({exc})", path=path) from None
        dataset = self.root / "dataset.json"
        if not dataset.is_file():
            raise InputError(f"neither splits/{name}.json nor dataset.json is present", path=self.root)
        data = _load_json(dataset)
        key = f"{name}_ids"
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise InputError(f"dataset.json has no {key} list", path=dataset)
        out = []
        for frame in data[key]:
            match = _FRAME_NAME.fullmatch(str(frame))
            if not match:
                raise InputError(f"frame name {frame!r} is not CAMERA_TIME", path=dataset)
            out.append((str(frame), int(match.group(1)), int(match.group(2))))
        return out

    def read_view(self, camera_id: int, time_ids: object, covisible_split: str | None = None) -> DycheckView:
        """Frames, cameras and (optionally) covisibility masks of one camera at ``time_ids``."""
        times = np.asarray(time_ids, dtype=np.int64).ravel()
        if times.size == 0:
            raise InputError(f"no time ids requested for camera {camera_id}", path=self.root)
        frames, Ks, poses, masks = [], [], [], []
        for t in times:
            name = f"{camera_id}_{t:05d}"
            img = _read_rgb(self.root / "rgb" / f"{self.factor}x" / f"{name}.png")
            if frames and img.shape != frames[0].shape:
                raise InputError(f"frame {name} is {img.shape[1]}x{img.shape[0]}, unlike the others", path=self.root)
            intr, c2w = read_dycheck_camera(self.root / "camera" / f"{name}.json")
            h, w = img.shape[:2]
            if abs(intr.width / self.factor - w) > 1 or abs(intr.height / self.factor - h) > 1:
                raise InputError(f"camera {name}.json is for {intr.width}x{intr.height} images but rgb/{self.factor}x/"
                                 f"{name}.png is {w}x{h}", path=self.root)  # fmt: skip
            frames.append(img)
            Ks.append(intr.resized(w, h).K)
            poses.append(c2w)
            if covisible_split is not None:
                masks.append(self._covisible(name, covisible_split, h, w))
        cov = None if covisible_split is None else np.stack(masks)
        return DycheckView(int(camera_id), times, np.stack(frames), np.stack(Ks), np.stack(poses), cov)

    def _covisible(self, name: str, split: str, height: int, width: int) -> np.ndarray:
        base = self.root / "covisible"
        path = base / f"{self.factor}x" / split / f"{name}.png"
        if not path.is_file():
            others = sorted(base.glob(f"*x/{split}/{name}.png")) if base.is_dir() else []
            if not others:
                raise InputError(f"covisible mask covisible/{self.factor}x/{split}/{name}.png is missing", path=self.root)
            path = others[0]
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise InputError("not a readable image", path=path)
        mask = mask if mask.ndim == 2 else mask[..., 0]
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        return mask > 0

    def benchmark_pairs(self, max_frames: int | None = None, covisible: bool = True) -> list[DycheckPair]:
        """Reference camera 0 vs each validation camera, at the target's longest run of consecutive times.

        ``covisible``: read the targets' covisibility masks (an :class:`InputError` if any is missing).
        """
        val = self.split("val")
        targets = sorted({c for _, c, _ in val})
        if not targets:
            raise InputError("the val split lists no frames", path=self.root)
        pairs = []
        for cam in targets:
            times = _longest_run(sorted({t for _, c, t in val if c == cam}))[: max_frames or None]
            target = self.read_view(cam, times, "val" if covisible else None)
            reference = self.read_view(0, times)
            pairs.append(DycheckPair(reference, target))
        return pairs


def _longest_run(times: list[int]) -> list[int]:
    """The longest stretch of consecutive integers in a sorted list (the first one on ties)."""
    best: list[int] = []
    run: list[int] = []
    for t in times:
        run = run + [t] if run and t == run[-1] + 1 else [t]
        if len(run) > len(best):
            best = run
    return best


def _load_json(path: Path) -> object:
    return read_json(path, expect=None)


def _read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError("frame is missing", path=path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("not a readable image", path=path)
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
