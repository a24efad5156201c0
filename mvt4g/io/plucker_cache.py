"""Cached Plücker ray maps: ``<clip>/plucker/<view>.safetensors``.

Each file holds one tensor ``rays`` ``[F, 6, H, W]`` and string metadata: the frame indices,
dtype, reference view and a ``key`` (SHA-256 of every input: intrinsics, poses, size, frame
indices, dtype, reference pose, format version). A file whose key differs from the key of
the current inputs is stale and is recomputed; a file with the same key is reused.

Many clips (what ``mvt4g plucker`` does)::

    jobs = plan_plucker_jobs(["data/synth/scene_0000"], relative_to_view="cam01")
    rows = [run_plucker_job(job) for job in jobs]     # one JSON-ready dict per view
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.plucker import plucker_rays
from mvt4g.camera.pose import relative_to
from mvt4g.camera.rig import ViewCameras, read_cameras_json
from mvt4g.errors import InputError
from mvt4g.memory import check_plucker

PLUCKER_FORMAT_VERSION = "1"
#: ``--frames`` of ``mvt4g plucker``: one map per latent frame (every 4th) or every frame.
FRAME_MODES = ("latent", "all")
#: ``--dtype`` names (the first is the default: half the disk).
DTYPE_NAMES = ("float16", "float32")
DTYPES = {"float32": np.float32, "float16": np.float16}


def frame_indices(frames: int, mode: str, stride: int = 4) -> np.ndarray:
    """Pixel-frame indices whose rays are stored: ``all`` or ``latent`` (every ``stride``-th).

    ``latent`` needs ``frames = stride * k + 1`` (0, 4, ..., 80 for 81 frames): those are the
    frames the video autoencoder keeps one latent frame for.
    """
    if mode == "all":
        return np.arange(frames)
    if mode == "latent":
        if (frames - 1) % stride:
            raise InputError(f"--frames latent needs {stride}k+1 frames, the cameras have {frames}")
        return np.arange(0, frames, stride)
    raise InputError(f"frames must be one of {', '.join(FRAME_MODES)}, got {mode!r}")


@dataclass
class PluckerRequest:
    """One view's ray map to compute: cameras, which frames, the output dtype, the reference pose."""

    view: str
    cameras: ViewCameras
    indices: np.ndarray
    dtype: str = "float16"
    reference_c2w: np.ndarray | None = None  # [4, 4]; poses are expressed relative to it
    reference_view: str = ""

    def key(self) -> str:
        digest = hashlib.sha256()
        for part in (
            PLUCKER_FORMAT_VERSION,
            self.dtype,
            f"{self.cameras.width}x{self.cameras.height}",
            self.reference_view,
        ):
            digest.update(part.encode() + b"\0")
        arrays = [self.cameras.K, self.cameras.c2w, self.indices.astype(np.int64)]
        if self.reference_c2w is not None:
            arrays.append(np.asarray(self.reference_c2w, dtype=np.float64))
        for arr in arrays:
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()

    def compute(self) -> np.ndarray:
        """The ray map ``[F, 6, H, W]`` in the requested dtype."""
        c2w = self.cameras.c2w[self.indices]
        if self.reference_c2w is not None:
            c2w = relative_to(c2w, self.reference_c2w)
        K = self.cameras.K[self.indices]
        return plucker_rays(K, c2w, self.cameras.height, self.cameras.width, dtype=DTYPES[self.dtype])

    def metadata(self) -> dict[str, str]:
        return {
            "format_version": PLUCKER_FORMAT_VERSION,
            "key": self.key(),
            "view": self.view,
            "frame_indices": json.dumps(self.indices.tolist()),
            "dtype": self.dtype,
            "relative_to": self.reference_view,
            "channels": "dx,dy,dz,mx,my,mz",
        }


def read_plucker(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """Read a cached map: ``(rays [F, 6, H, W], metadata)``."""
    from safetensors import SafetensorError
    from safetensors.numpy import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            rays = handle.get_tensor("rays")
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise InputError(f"not a Plücker cache file ({exc})", path=path) from None
    if rays.ndim != 4 or rays.shape[1] != 6:
        raise InputError(f"rays must be [F, 6, H, W], got {list(rays.shape)}", path=path)
    return rays, meta


def cached_key(path: Path) -> str | None:
    """The key stored in a cache file, or None when there is no readable file."""
    from safetensors import SafetensorError
    from safetensors.numpy import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return (handle.metadata() or {}).get("key")
    except (SafetensorError, OSError, ValueError):
        return None


def write_plucker(path: str | Path, request: PluckerRequest) -> tuple[int, ...]:
    """Compute and atomically write one view's map ``[F, 6, H, W]``; returns its shape.

    Missing folders (e.g. ``CLIP/plucker``) are created.
    """
    from safetensors.numpy import save_file

    from mvt4g.fs.atomic import atomic_path, check_output_location

    path = Path(path)
    check_output_location(path)
    rays = request.compute()
    with atomic_path(path) as tmp:
        save_file({"rays": np.ascontiguousarray(rays)}, str(tmp), metadata=request.metadata())
    return tuple(rays.shape)


def load_camera_source(path: str | Path) -> tuple[dict[str, ViewCameras], Path]:
    """Cameras and the default output folder for a clip directory or a cameras file.

    A clip writes to ``<clip>/plucker``; a ``cameras.json`` inside a clip's ``cameras/``
    folder writes to that clip's ``plucker``; any other cameras file writes next to itself.
    """
    path = Path(path)
    if path.is_dir():
        from mvt4g.io.clip import read_clip

        return read_clip(path).cameras, path / "plucker"
    if not path.exists():
        raise InputError("no such file or clip directory", path=path)
    if path.name == "camera_extrinsics.json":
        raise InputError("a camera_extrinsics.json stores no intrinsics: pass the clip directory instead", path=path)
    cameras = read_cameras_json(path)
    base = path.parent.parent if path.parent.name == "cameras" else path.parent
    return cameras, base / "plucker"


def plan_requests(
    cameras: dict[str, ViewCameras],
    *,
    frames: str = "latent",
    dtype: str = "float16",
    relative_to_view: str | None = None,
    size: tuple[int, int] | None = None,
) -> list[PluckerRequest]:
    """One request per view. ``size`` = (H, W) resizes-to-cover and centre-crops the cameras first."""
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    reference = None
    if relative_to_view is not None:
        if relative_to_view not in cameras:
            raise InputError(f"--relative-to {relative_to_view!r} is not a view (views: {', '.join(cameras)})")
        reference = cameras[relative_to_view].c2w[0]
    requests = []
    for view, cams in cameras.items():
        if size is not None:
            cams = cams.resized_cover(size[1], size[0])
        requests.append(
            PluckerRequest(view, cams, frame_indices(cams.frames, frames), dtype, reference, relative_to_view or "")
        )
    return requests


@dataclass
class PluckerJob:
    """One view's planned map (:func:`plan_plucker_jobs`): ``status`` is ``"current"`` (the
    file at ``path`` holds this request's key: kept) or ``"todo"`` (computed and written)."""

    source: Path
    request: PluckerRequest
    path: Path
    status: str


def plan_plucker_jobs(
    sources: Sequence[str | Path],
    *,
    frames: str = "latent",
    dtype: str = "float16",
    relative_to_view: str | None = None,
    size: tuple[int, int] | None = None,
    out: str | Path | None = None,
    force: bool = False,
) -> list[PluckerJob]:
    """One job per view of every source (clip directory or ``cameras.json``), all checked first.

    Maps go to ``out`` (one source only) or the source's own ``plucker/`` folder
    (:func:`load_camera_source`); ``frames``, ``dtype``, ``relative_to_view`` and ``size``
    (H, W) as in :func:`plan_requests`. A file whose key matches is ``current`` unless
    ``force``. Raises :class:`InputError` for any bad source before anything is written.
    """
    if out is not None and len(sources) > 1:
        raise InputError("--out takes one source; without it each clip gets its own plucker/ folder")
    from mvt4g.fs.atomic import check_output_location

    jobs = []
    for source in sources:
        cameras, default_out = load_camera_source(source)
        requests = plan_requests(cameras, frames=frames, dtype=dtype, relative_to_view=relative_to_view, size=size)
        for request in requests:
            h, w = request.cameras.height, request.cameras.width
            option = f"--size {h}x{w}" if size is not None else f"{source} ({h}x{w}, {len(request.indices)} frames)"
            check_plucker(frames=len(request.indices), height=h, width=w, option=option)
        out_dir = Path(out) if out is not None else default_out
        check_output_location(out_dir / "x.safetensors")
        for request in requests:
            path = out_dir / f"{request.view}.safetensors"
            current = not force and cached_key(path) == request.key()
            jobs.append(PluckerJob(Path(source), request, path, "current" if current else "todo"))
    return jobs


def run_plucker_job(job: PluckerJob) -> dict:
    """Write the job's map unless it is current; returns the JSON-ready row ``mvt4g plucker
    --json`` prints: ``source``, ``view``, ``path``, ``status`` (``written`` or ``current``),
    ``frames`` (F), ``height``, ``width``, ``dtype`` and ``shape`` ([F, 6, H, W] when written)."""
    req = job.request
    shape = write_plucker(job.path, req) if job.status == "todo" else None
    return {"source": str(job.source), "view": req.view, "path": str(job.path),
            "status": "written" if shape else "current", "frames": len(req.indices),
            "height": req.cameras.height, "width": req.cameras.width, "dtype": req.dtype,
            "shape": list(shape) if shape else None}  # fmt: skip
