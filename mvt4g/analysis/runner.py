"""The attention-correspondence analysis: clips x view pairs x timesteps, all layers per pass.

For each clip, each drawn (reference, target) view pair and each analysed timestep:

1. the target's clean latents ``x0`` are noised with rectified-flow noise at that timestep,
   ``x_t = (1 - sigma) x0 + sigma eps`` (one ``eps`` per pair, shared by its timesteps, so the
   timesteps lie on one noising path); the reference latents stay clean, as in generation;
2. the model runs ONCE with tap processors on every analysed block
   (:class:`~mvt4g.analysis.taps.LayerTaps`); as each block finishes, its Q/K are reduced to
   correspondence sums (:func:`~mvt4g.analysis.correspondence.correspondence_sums`) and dropped,
   so one layer's Q/K is alive at a time.

Timesteps: ``--timesteps N`` analyses the N sigmas of an N-step Euler sampler
(:func:`~mvt4g.model.flow_matching.inference_sigmas` with the sampler's shift, 5 by default),
from ``sigma = 1`` (pure noise) towards clean; the model sees ``t = 1000 sigma``.

Sums are pooled over clips, pairs, query points and frames, then turned into tables and the
harmonic mean (:mod:`mvt4g.analysis.summary`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mvt4g.analysis.correspondence import (
    MetricSums,
    correspondence_sums,
    default_delta_px,
    query_attention,
)
from mvt4g.analysis.inputs import (
    ClipSource,
    PairData,
    choose_pairs,
    load_pair,
    open_clip_source,
    visualize_point,
)
from mvt4g.analysis.taps import LayerTaps, parse_layers
from mvt4g.errors import InputError
from mvt4g.model.config import ModelConfig
from mvt4g.model.lookup import resolve_model
from mvt4g.threads import torch_threads

#: Model dtypes ``--dtype`` offers (a literal: the CLI reads it without importing torch).
DTYPE_NAMES = ("float32", "bfloat16", "float16")
DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}


@dataclass
class AnalysisSettings:
    """Options of one analysis run (the CLI's flags).

    layers: ``"all"``, ``"a-b"``, ``"i,j"`` (0-based blocks). timesteps: number of sampler
    sigmas. pairs: view pairs per clip. queries: tracks per pair (all their visible latent
    frames become query points). delta_px: threshold in analysed pixels (None: the token
    stride, see :func:`~mvt4g.analysis.correspondence.default_delta_px`). heads: ``"mean"`` or
    a head index. visualize: ``(x, y, frame)`` of a target-view point in clip pixels.
    """

    layers: str = "all"
    timesteps: int = 10
    shift: float = 5.0
    pairs: int = 1
    queries: int = 256
    delta_px: float | None = None
    heads: str | int = "mean"
    seed: int = 0
    chunk_size: int | None = None
    device: str = "auto"
    dtype: str = "float32"
    visualize: tuple[float, float, int] | None = None
    #: torch CPU threads for the forward passes (0: leave torch's count), restored after.
    threads: int = 0

    def validate(self) -> AnalysisSettings:
        if self.threads < 0:
            raise InputError(f"--threads must be >= 0, got {self.threads}")
        if self.timesteps < 1:
            raise InputError(f"--timesteps must be >= 1, got {self.timesteps}")
        if self.pairs < 1:
            raise InputError(f"--pairs must be >= 1, got {self.pairs}")
        if self.queries < 1:
            raise InputError(f"--queries must be >= 1, got {self.queries}")
        if not self.shift > 0:
            raise InputError(f"--shift must be > 0, got {self.shift}")
        if self.delta_px is not None and not self.delta_px > 0:
            raise InputError(f"--delta must be > 0 pixels, got {self.delta_px}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise InputError(f"chunk size must be >= 1, got {self.chunk_size}")
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise InputError(f"--device must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.seed < 0:
            raise InputError(f"--seed must be >= 0, got {self.seed}")
        if self.heads != "mean":
            try:
                self.heads = int(self.heads)
            except (TypeError, ValueError):
                raise InputError(f"--head must be mean or a head index, got {self.heads!r}") from None
        return self


def parse_visualize(text: str | None) -> tuple[float, float, int] | None:
    """``"x,y,frame"`` (clip pixels, clip frame) -> tuple; InputError on anything else."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        x, y, frame = float(parts[0]), float(parts[1]), int(parts[2])
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError
    except ValueError:
        raise InputError(f"--visualize must be x,y,frame (pixels of the target view, frame index), got {text!r}") from None
    return x, y, frame


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available")
    return torch.device(name)


@dataclass
class AnalysisPlan:
    """What will run, checked before anything heavy is loaded."""

    model_dir: Path
    config: ModelConfig
    layers: list[int]
    sigmas: np.ndarray
    sources: list[ClipSource]
    pairs: list[tuple[int, str, str]]  # (source index, reference view, target view)
    delta_px: float
    visualize: tuple[int, tuple[float, float]] | None  # (latent frame, analysed (x, y)) on pairs[0]

    @property
    def size(self) -> tuple[int, int]:
        return self.config.video.height, self.config.video.width

    @property
    def cells(self) -> int:
        return len(self.layers) * len(self.sigmas)


def plan_analysis(model: str | Path, clips: list[str | Path], settings: AnalysisSettings) -> AnalysisPlan:
    """Validate every input (model config, layers, clips, tracks, --visualize); loads no weights."""
    from mvt4g.model.checkpoint import read_config
    from mvt4g.model.flow_matching import inference_sigmas

    settings.validate()
    if not clips:
        raise InputError("give at least one clip directory")
    model_dir = resolve_model(model)
    config = read_config(model_dir)
    layers = parse_layers(settings.layers, config.backbone.num_layers)
    if settings.heads != "mean" and not 0 <= int(settings.heads) < config.backbone.num_attention_heads:
        raise InputError(f"--head {settings.heads} is out of range: the model has {config.backbone.num_attention_heads} heads")
    size = (config.video.height, config.video.width)
    tf = config.autoencoder.temporal_factor
    sources = [open_clip_source(c, size, config.video.frames, tf) for c in clips]
    for source in sources:
        frames = len(source.latent_frames)
        if 2 * frames > config.backbone.rope_max_seq_len:
            raise InputError(f"{frames} latent frames exceed the model's RoPE length", path=source.path)
    pairs = [
        (si, a, b) for si, s in enumerate(sources) for a, b in choose_pairs(s.clip.views, settings.pairs, settings.seed, si)
    ]
    vis = None
    if settings.visualize is not None:
        x, y, frame = settings.visualize
        vis = visualize_point(sources[pairs[0][0]], x, y, frame)
    sigmas = inference_sigmas(settings.timesteps, settings.shift).numpy()
    delta = settings.delta_px if settings.delta_px is not None else default_delta_px(config.token_stride)
    return AnalysisPlan(model_dir, config, layers, sigmas, sources, pairs, float(delta), vis)


@dataclass
class AnalysisResult:
    """Raw results: ``cells[layer index][timestep index]`` pooled sums, and what was analysed."""

    plan: AnalysisPlan
    cells: list[list[MetricSums]]
    pairs: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    visual_maps: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (li, ti) -> [2, F, h, w]
    visual_pair: PairData | None = None
    seconds: float = 0.0
    forward_passes: int = 0


def camera_inputs(config: ModelConfig, source: ClipSource, pair: PairData, device, dtype) -> dict:
    """The model's camera keyword arguments for a pair (Plücker maps or ReCamMaster poses)."""
    from mvt4g.model.conditioning import pair_camera_pose, pair_plucker

    ref, tgt = source.clip.cameras[pair.reference], source.clip.cameras[pair.target]
    mode = config.camera.mode
    if mode == "plucker":
        rays = pair_plucker(ref, tgt, pair.camera_frames, source.size)
        return {"plucker": torch.from_numpy(rays)[None].to(device=device, dtype=dtype)}
    if mode == "recammaster":
        pose = pair_camera_pose(ref, tgt, pair.camera_frames)
        return {"camera_pose": torch.from_numpy(np.asarray(pose, dtype=np.float32))[None].to(device=device, dtype=dtype)}
    return {}


def _pair_seed(seed: int, source_index: int, pair_index: int) -> int:
    return int(np.random.SeedSequence([seed, source_index, pair_index]).generate_state(1)[0])


def run_analysis(
    plan: AnalysisPlan,
    settings: AnalysisSettings,
    *,
    model: torch.nn.Module | None = None,
    autoencoder: torch.nn.Module | None = None,
    on_forward: Callable[[], None] | None = None,
) -> AnalysisResult:
    """Run every (clip, pair, timestep) forward pass and pool the per-layer sums, on
    ``settings.threads`` torch threads.

    ``model`` / ``autoencoder`` default to the ones in ``plan.model_dir`` (loaded here).
    ``on_forward()`` is called after each forward pass (progress).
    """
    with torch_threads(settings.threads):
        return _forward_passes(plan, settings, model, autoencoder, on_forward)


def _forward_passes(
    plan: AnalysisPlan,
    settings: AnalysisSettings,
    model: torch.nn.Module | None,
    autoencoder: torch.nn.Module | None,
    on_forward: Callable[[], None] | None,
) -> AnalysisResult:
    from mvt4g.model.checkpoint import from_pretrained, load_autoencoder
    from mvt4g.model.flow_matching import RectifiedFlow

    device = resolve_device(settings.device)
    dtype = DTYPES[settings.dtype]
    if model is None:
        model = from_pretrained(plan.model_dir, device=device, dtype=dtype)
    if autoencoder is None:
        autoencoder = load_autoencoder(plan.model_dir, plan.config)
    model = model.eval()
    autoencoder = autoencoder.to(device).eval()
    layer_pos = {layer: li for li, layer in enumerate(plan.layers)}
    result = AnalysisResult(plan, [[MetricSums() for _ in plan.sigmas] for _ in plan.layers])
    start = time.perf_counter()
    for pair_index, (si, ref_view, tgt_view) in enumerate(plan.pairs):
        source = plan.sources[si]
        pair_seed = _pair_seed(settings.seed, si, pair_index)
        pair = load_pair(source, ref_view, tgt_view, settings.queries, pair_seed)
        info = {"clip": str(source.path), "reference": ref_view, "target": tgt_view}
        if isinstance(pair, str):
            result.skipped.append({**info, "reason": pair})
            for _ in plan.sigmas:
                if on_forward:
                    on_forward()
            continue
        visualize = plan.visualize if pair_index == 0 else None
        if visualize is not None:
            result.visual_pair = pair
        info["tracks"] = int(pair.track_ids.shape[0])
        info["latent_frames"] = int(pair.tracks.shape[1])
        result.pairs.append(info)
        with torch.no_grad():
            video = torch.from_numpy(pair.video).to(device)
            latents = autoencoder.encode(video, normalize=True).to(dtype)  # [2, C, F, h, w]
            ref_latents, x0 = latents[:1], latents[1:]
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(pair_seed), dtype=torch.float32)
            noise = noise.to(device=device, dtype=dtype)
            cams = camera_inputs(plan.config, source, pair, device, dtype)
            tracks = torch.from_numpy(pair.tracks).to(device)
            visible = torch.from_numpy(pair.visible).to(device)
            for ti, sigma in enumerate(plan.sigmas):
                sig = torch.tensor([float(sigma)], device=device)
                noisy = RectifiedFlow.add_noise(x0, noise, sig)

                def sink(layer: int, tap, ti=ti, visualize=visualize, tracks=tracks, visible=visible, size=source.size):
                    # Runs inside the forward pass, as each tapped block finishes.
                    q, k = tap.q[0], tap.k[0]
                    sums = correspondence_sums(q, k, tracks, visible, size, delta_px=plan.delta_px,
                                               heads=settings.heads, chunk_size=settings.chunk_size)  # fmt: skip
                    result.cells[layer_pos[layer]][ti].add(sums)
                    if visualize is not None:
                        frame, xy = visualize
                        maps = query_attention(q, k, 1, frame, xy, size, heads=settings.heads)
                        result.visual_maps[(layer_pos[layer], ti)] = maps["per_frame"].astype(np.float16)

                LayerTaps(model, plan.layers, sink)(ref_latents, noisy, sig * 1000.0, **cams)
                result.forward_passes += 1
                if on_forward:
                    on_forward()
    result.seconds = time.perf_counter() - start
    if not result.pairs:
        reasons = "; ".join(s["reason"] for s in result.skipped[:2])
        raise InputError(f"nothing to analyse: {reasons}")
    return result
