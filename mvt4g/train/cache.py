"""Feature cache for training: latents, Plücker maps and text embeddings, keyed by their inputs.

Training reads every clip many times; encoding its videos each time would dominate a step.
:class:`FeatureCache` computes each feature once and stores it as one safetensors file whose
NAME is the SHA-256 key of everything it was computed from, so a changed input gives a new
key and a stale file is never read (it is simply unused). Files::

    CACHE/latents/KEY.safetensors   "latents" [C, F, h, w]  normalised latents of one view
    CACHE/plucker/KEY.safetensors   "plucker" [2, F, 6, H, W]  one (reference, target) pair
    CACHE/text/KEY.safetensors      "text" [L, text_dim]  prompt embedding (umT5 only)

``CACHE`` is ``data.cache_dir`` when set, else ``CLIP/cache`` beside each clip's videos.

Keys cover: the video file's content hash (latents), the frame window (count and temporal
reversal), the model's pixel size and resize rule, the autoencoder's config (and, for a
loaded Wan VAE, its files' sizes and times), the cameras' numbers (Plücker), the caption and
text encoder (text), the storage dtype and this format's version.

Stored tensors are cast to ``dtype`` (``float32`` default; ``bfloat16`` halves a Wan cache)
and read back as float32. A freshly computed feature goes through the same cast before it
is returned, so a cache hit and a miss give bit-identical tensors.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvt4g.errors import InputError
from mvt4g.fs.atomic import atomic_path
from mvt4g.io.clip import Clip
from mvt4g.io.frames import (
    cover_geometry,
    fit_frame_count,
    latent_frame_indices,
    resize_cover,
)
from mvt4g.model.config import ModelConfig

CACHE_FORMAT = "1"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, memoised per (path, size, mtime) within the process."""
    path = Path(path).resolve()
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def _key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _array_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def autoencoder_fingerprint(model_config: ModelConfig) -> dict[str, Any]:
    """What identifies the autoencoder's output: its config and, when loaded, its files."""
    ae = model_config.autoencoder
    out: dict[str, Any] = {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(ae).items()}}
    if ae.kind == "wan_vae" and ae.path:
        root = Path(ae.path)
        folder = root / "vae" if (root / "vae").is_dir() else root
        if folder.is_dir():
            out["files"] = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    return out


def frame_window(clip: Clip, frames: int, reverse: bool) -> np.ndarray:
    """Indices of the clip's frames that make one sample: the first ``frames``, optionally reversed."""
    if clip.frames < frames:
        raise InputError(f"clip has {clip.frames} frames; training needs {frames} (set data.frames lower)", path=clip.root)
    index = np.arange(frames, dtype=np.int64)
    return index[::-1].copy() if reverse else index


@dataclass(frozen=True)
class SampleShape:
    """The model's input size: ``frames`` (``tf*k + 1``), ``height`` x ``width`` pixels."""

    frames: int
    height: int
    width: int
    temporal_factor: int = 4

    @property
    def latent_indices(self) -> np.ndarray:
        """Pixel frames of the window that line up with latent frames (0, tf, 2 tf, ...)."""
        return latent_frame_indices(self.frames, self.temporal_factor)


class FeatureCache:
    """Compute-or-read of the per-sample features (see the module docstring).

    Picklable (DataLoader workers): the autoencoder and text encoder are built lazily in
    each process. ``hits`` / ``misses`` count reads and computations in this process.
    """

    def __init__(
        self,
        model_config: ModelConfig,
        shape: SampleShape,
        *,
        cache_dir: str | Path = "",
        dtype: str = "float32",
        cache_plucker: bool = True,
        text_encoder_path: str = "",
        device: str | torch.device = "cpu",
    ):
        if dtype not in DTYPES:
            raise InputError(f"cache dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.model_config = model_config
        self.shape = shape
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.dtype = dtype
        self.cache_plucker = cache_plucker
        self.text_encoder_path = text_encoder_path
        self.device = torch.device(device)
        self.hits = 0
        self.misses = 0
        self._autoencoder = None
        self._text = None
        self._ae_fingerprint = autoencoder_fingerprint(model_config)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_autoencoder"] = None
        state["_text"] = None
        return state

    # ---- paths and storage ------------------------------------------------------------
    def folder(self, clip: Clip) -> Path:
        return self.cache_dir if self.cache_dir is not None else clip.root / "cache"

    def _read(self, path: Path, name: str, key: str) -> torch.Tensor | None:
        from safetensors import SafetensorError, safe_open

        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as fh:
                if (fh.metadata() or {}).get("key") != key:
                    return None
                tensor = fh.get_tensor(name)
        except (SafetensorError, OSError, ValueError):
            return None  # unreadable (e.g. a foreign file): recompute and replace it
        return tensor.to(torch.float32).clone()

    def _write(self, path: Path, name: str, key: str, tensor: torch.Tensor) -> None:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({name: tensor.contiguous()}, str(tmp), metadata={"key": key, "format": CACHE_FORMAT})

    def _get(self, kind: str, folder: Path, key: str, compute, store: bool = True) -> torch.Tensor:
        path = folder / kind / f"{key}.safetensors"
        if store:
            cached = self._read(path, kind, key)
            if cached is not None:
                self.hits += 1
                return cached
        self.misses += 1
        tensor = compute().to(DTYPES[self.dtype])
        if store:
            self._write(path, kind, key, tensor)
        return tensor.to(torch.float32)

    # ---- latents ----------------------------------------------------------------------
    def latent_key(self, clip: Clip, view: str, reverse: bool) -> str:
        s = self.shape
        return _key({
            "kind": "latents", "format": CACHE_FORMAT, "video": file_digest(clip.videos[view]),
            "frames": s.frames, "size": [s.height, s.width], "resize": "cover/auto", "reverse": bool(reverse),
            "autoencoder": self._ae_fingerprint, "dtype": self.dtype,
        })  # fmt: skip

    def latents(self, clip: Clip, view: str, reverse: bool) -> torch.Tensor:
        """Normalised latents ``[C, F, h, w]`` (float32) of one view's sample window."""
        key = self.latent_key(clip, view, reverse)
        return self._get("latents", self.folder(clip), key, lambda: self._encode(clip, view, reverse))

    def load_frames(self, clip: Clip, view: str, reverse: bool) -> np.ndarray:
        """The sample window of one view at the model's size: uint8 ``[T, H, W, 3]``."""
        s = self.shape
        window = frame_window(clip, s.frames, reverse)
        video, _ = fit_frame_count(clip.read_video(view), target=s.frames, policy="error", stride=s.temporal_factor, min_frames=1)
        video, _ = resize_cover(video, s.height, s.width)
        return np.ascontiguousarray(video[window])

    def autoencoder(self):
        if self._autoencoder is None:
            from mvt4g.model.autoencoder import build_autoencoder

            self._autoencoder = build_autoencoder(self.model_config.autoencoder).to(self.device)
        return self._autoencoder

    @torch.no_grad()
    def _encode(self, clip: Clip, view: str, reverse: bool) -> torch.Tensor:
        frames = self.load_frames(clip, view, reverse)
        video = torch.from_numpy(frames).to(self.device).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        return self.autoencoder().encode(video)[0].float().cpu()

    # ---- Plücker maps -----------------------------------------------------------------
    def plucker_key(self, clip: Clip, reference: str, target: str, reverse: bool) -> str:
        s = self.shape
        window = frame_window(clip, s.frames, reverse)
        ref, tgt = clip.cameras[reference], clip.cameras[target]
        return _key({
            "kind": "plucker", "format": CACHE_FORMAT,
            "cameras": _array_digest(ref.K[window], ref.c2w[window], tgt.K[window], tgt.c2w[window]),
            "source_size": [clip.height, clip.width], "size": [s.height, s.width],
            "latent_indices": s.latent_indices.tolist(), "dtype": self.dtype,
        })  # fmt: skip

    def plucker(self, clip: Clip, reference: str, target: str, reverse: bool) -> torch.Tensor:
        """Ray maps ``[2, F, 6, H, W]`` (view 0 reference) at the latent frames of the window."""
        key = self.plucker_key(clip, reference, target, reverse)
        return self._get("plucker", self.folder(clip), key, lambda: self._plucker(clip, reference, target, reverse),
                         store=self.cache_plucker)  # fmt: skip

    def camera_pose(self, clip: Clip, reference: str, target: str, reverse: bool) -> torch.Tensor:
        """ReCamMaster's relative poses ``[F, 12]`` at the latent frames of the window.

        The same function generation uses (:func:`~mvt4g.model.conditioning.pair_camera_pose`):
        the target's camera-to-world relative to the reference's first pose of the window,
        3x4 row-major. Cheap (F 4x4 products), so computed on the fly, never stored.
        """
        from mvt4g.model.conditioning import pair_camera_pose

        window = frame_window(clip, self.shape.frames, reverse)
        ref = clip.cameras[reference].select_frames(window)
        tgt = clip.cameras[target].select_frames(window)
        return torch.from_numpy(pair_camera_pose(ref, tgt, self.shape.latent_indices))

    def camera_inputs(self, clip: Clip, reference: str, target: str, reverse: bool) -> dict[str, torch.Tensor]:
        """What the model's camera conditioning reads: ``plucker`` maps or ReCamMaster's ``camera_pose``."""
        mode = self.model_config.camera.mode
        if mode == "plucker":
            return {"plucker": self.plucker(clip, reference, target, reverse)}
        if mode == "recammaster":
            return {"camera_pose": self.camera_pose(clip, reference, target, reverse)}
        return {}

    def _plucker(self, clip: Clip, reference: str, target: str, reverse: bool) -> torch.Tensor:
        from mvt4g.model.conditioning import pair_plucker

        s = self.shape
        window = frame_window(clip, s.frames, reverse)
        ref = clip.cameras[reference].select_frames(window)
        tgt = clip.cameras[target].select_frames(window)
        maps = pair_plucker(ref, tgt, s.latent_indices, (s.height, s.width))
        return torch.from_numpy(np.ascontiguousarray(maps))

    # ---- text -------------------------------------------------------------------------
    def text(self, clip: Clip) -> torch.Tensor | None:
        """The caption's umT5 embedding ``[L, text_dim]``, or None without a text encoder."""
        if not self.text_encoder_path:
            return None
        key = _key({"kind": "text", "format": CACHE_FORMAT, "caption": clip.caption,
                    "encoder": str(Path(self.text_encoder_path).resolve()),
                    "max_length": self.model_config.text.max_length, "dtype": self.dtype})  # fmt: skip
        return self._get("text", self.folder(clip), key, lambda: self._encode_text(clip.caption))

    @torch.no_grad()
    def _encode_text(self, caption: str) -> torch.Tensor:
        from mvt4g.model.text import encode_prompts, load_text_encoder

        if self._text is None:
            self._text = load_text_encoder(self.text_encoder_path, device=self.device)
        tokenizer, encoder = self._text
        emb = encode_prompts([caption], tokenizer, encoder, max_length=self.model_config.text.max_length)[0]
        if emb.shape[-1] != self.model_config.backbone.text_dim:
            raise InputError(f"text encoder gives {emb.shape[-1]}-dim embeddings, the model expects "
                             f"{self.model_config.backbone.text_dim}", path=self.text_encoder_path)  # fmt: skip
        return emb.float().cpu()


def crop_info(clip: Clip, shape: SampleShape):
    """How a clip's frames map onto the model's size (``resize_cover``'s geometry)."""
    return cover_geometry(clip.height, clip.width, shape.height, shape.width)


def prepare(dataset, *, reverse: bool, on_item=None) -> dict[str, int]:
    """Fill the cache for every clip of ``dataset``: each view's latents (forward and, when
    ``reverse``, reversed), every pair's Plücker maps (for a Plücker-conditioned model) and
    the caption's embedding.

    ``on_item(done, total)`` reports progress. Returns counts (items, hits, misses).
    """
    cache: FeatureCache = dataset.cache
    hits0, misses0 = cache.hits, cache.misses
    directions = (False, True) if reverse else (False,)
    jobs = []
    for clip in dataset.clips:
        for rev in directions:
            jobs.extend(("latents", clip, view, None, rev) for view in clip.views)
            if cache.cache_plucker and cache.model_config.camera.mode == "plucker":  # only Plücker models read them
                jobs.extend(("plucker", clip, ref, tgt, rev) for ref, tgt in dataset.pairs_of(clip))
        if cache.text_encoder_path:
            jobs.append(("text", clip, None, None, False))
    for done, (kind, clip, a, b, rev) in enumerate(jobs, 1):
        if kind == "latents":
            cache.latents(clip, a, rev)
        elif kind == "plucker":
            cache.plucker(clip, a, b, rev)
        else:
            cache.text(clip)
        if on_item is not None:
            on_item(done, len(jobs))
    return {"items": len(jobs), "hits": cache.hits - hits0, "computed": cache.misses - misses0,
            "clips": len(dataset.clips), "bytes": _folder_bytes({cache.folder(c) for c in dataset.clips}),
            "text": caption_summary(dataset.clips, cache.text_encoder_path)}  # fmt: skip


def caption_summary(clips, text_encoder_path: str | None) -> dict:
    """What training does with the clips' captions: ``encoder`` (None: the learned null text is
    used and captions are not read by the model), how many clips have one and where they came from."""
    sources = sorted({str(c.caption_source) for c in clips if c.caption and c.caption_source})
    return {"encoder": text_encoder_path or None, "captioned": sum(1 for c in clips if c.caption),
            "uncaptioned": sum(1 for c in clips if not c.caption), "sources": sources[:5]}  # fmt: skip


def _folder_bytes(folders: set[Path]) -> int:
    total = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            total += sum((Path(root) / f).stat().st_size for f in files)
    return total
