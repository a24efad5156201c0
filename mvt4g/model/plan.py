"""A memory and FLOP plan of training and generation, before any work (docs/ARCHITECTURE.md, "Memory plan").

Per stage (text encoder, DiT forward/backward, VAE decode) the plan gives FLOPs and peak
memory; training with and without gradient checkpointing and in three variants:

    diffusion   L_diff only (no tap, no tracking head)
    corr        L_diff + L_corr (the tapped block's Q/K, no tracking head)
    full        L_diff + L_track (tracking head) + L_corr: the paper's method

How the numbers are obtained:

* DiT and VAE: the real modules run on PyTorch's meta device (shapes only, nothing
  allocated), under torch's ``FlopCounterMode`` for FLOPs and a dispatch mode that adds up
  the bytes of live tensor storages for the peak (what the step itself allocates: inputs,
  activations kept for backward, temporaries, gradients). Attention runs as a flash kernel
  (``_scaled_dot_product_flash_attention_for_cpu``, which has meta shapes) so the plan keeps
  O(S) per head like CUDA's flash/memory-efficient kernels: the default on the meta device,
  the math path, would hold S x S scores (96 GiB per block at 81x480x832).
* Weights, gradients and Adam's two moments: parameter counts times the bytes of their dtype
  (gradients and moments of the trainable parameters only: the paper's fine-tuning scope).
* umT5-XXL, Wan's text encoder (not built here: 5.7B parameters): analytic, 2 FLOPs per
  weight per token plus attention; memory = weights + a few [L, 4096] activations.
* Generation under each offload mode (``--offload none|model|sequential``, placed as
  :data:`mvt4g.model.placement.PLACEMENT` says, as the pipeline does): the resident
  components' weights + the worst stage's activations and its non-resident weights (all of
  them when staged; when streamed, the largest block + the largest other module).

The peak is of tensor memory (what ``torch.cuda.max_memory_allocated`` reports); the CUDA
context (~0.5 GiB) and allocator fragmentation come on top, hence ``device_fit.HEADROOM`` in the fit
check. A test compares the meta peak with the same step on real CPU tensors, and the DiT
FLOPs with :func:`dit_forward_flops_analytic`.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mvt4g.errors import InputError
from mvt4g.model.placement import OFFLOAD_MODES, PLACEMENT, check_offload, streamed_bytes

GIB = 1024**3
VARIANTS = ("diffusion", "corr", "full")
_BYTES = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}
# Wan2.1's text encoder (google/umt5-xxl, encoder only): the sizes its config.json gives.
UMT5_XXL = {"layers": 24, "dim": 4096, "ffn": 10240, "heads": 64, "vocab": 256384, "tokens": 512}


@dataclass(frozen=True)
class PlanShape:
    """One sample's video size, the batch, the tracked query points and the text length."""

    frames: int
    height: int
    width: int
    batch: int = 1
    queries: int = 256


@dataclass
class Stage:
    """One stage's cost: FLOPs (multiply-add = 2) and peak bytes, split as it adds up."""

    name: str
    flops: float
    peak_bytes: float
    parts: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- shapes ---------------------------------------------------------------------------------
def latent_grid(config, shape: PlanShape) -> tuple[int, int, int]:
    """(latent frames, latent height, latent width) of one view; InputError if the video does not fit the model."""
    tf, sf = config.autoencoder.temporal_factor, config.autoencoder.spatial_factor
    stride = config.token_stride
    if shape.frames < 1 or (shape.frames - 1) % tf:
        raise InputError(f"--frames must be {tf}k+1 for this model, got {shape.frames}")
    if shape.height % stride or shape.width % stride or shape.height < stride or shape.width < stride:
        raise InputError(f"--size must be multiples of the model's {stride}-pixel token stride, got {shape.height}x{shape.width}")
    return config.latent_frames(shape.frames), shape.height // sf, shape.width // sf


def tokens(config, shape: PlanShape) -> int:
    """Tokens of one sample: reference + target views."""
    frames, h, w = latent_grid(config, shape)
    _, ph, pw = config.backbone.patch_size
    return 2 * frames * (h // ph) * (w // pw)


# ---- analytic FLOPs -------------------------------------------------------------------------
def dit_forward_flops_analytic(config, shape: PlanShape) -> float:
    """FLOPs of one DiT forward (matmuls, convolutions, attention; element-wise ops are not
    counted, as FlopCounterMode does not count them). N tokens of width D, L text tokens:

    per block  self-attention 4 projections 8ND^2 + scores and values 4N^2D,
               cross-attention q/o 4ND^2 + k/v on the text 4LD^2 + 4NLD, FFN 4NDF,
               camera projection 2ND^2 (plucker), ReCamMaster's output projector 2ND^2
    once       patch embedding 2ND(C pt ph pw), output projection on the target half
               2(N/2)D(C' pt ph pw), time embedding 2(f D + D^2) + 12 D^2, text embedding
               2L(T D + D^2), Plücker conv 2ND(6 s^2) or ReCamMaster's 2(N/2)(12 D) per block.
    """
    b = config.backbone
    n = tokens(config, shape)
    d, ffn, layers, text_len = b.inner_dim, b.ffn_dim, b.num_layers, config.text.null_length
    patch = math.prod(b.patch_size)
    mode = config.camera.mode
    projector = config.camera.output_projector or mode == "recammaster"
    block = 8 * n * d * d + 4 * n * n * d + 4 * n * d * d + 4 * text_len * d * d + 4 * n * text_len * d + 4 * n * d * ffn
    block += 2 * n * d * d * (mode == "plucker") + 2 * n * d * d * projector
    once = 2 * n * d * b.in_channels * patch + 2 * (n // 2) * d * b.out_channels * patch
    once += 2 * (b.freq_dim * d + d * d) + 12 * d * d + 2 * text_len * (b.text_dim * d + d * d)
    if mode == "plucker":
        once += 2 * n * d * 6 * config.token_stride**2
    elif mode == "recammaster":
        # ReCamMaster's Linear(12, dim) runs once per latent frame and block, then broadcasts.
        once += layers * 2 * latent_grid(config, shape)[0] * 12 * d
    return float(shape.batch * (layers * block + once))


def text_encoder_stage(dtype_bytes: int = 2) -> Stage:
    """umT5-XXL encoding one prompt of 512 tokens (analytic; the encoder is not built)."""
    u = UMT5_XXL
    per_layer = 4 * u["dim"] ** 2 + 3 * u["dim"] * u["ffn"]  # attention + gated FFN
    weights = (u["layers"] * per_layer + u["vocab"] * u["dim"]) * dtype_bytes
    # Streamed (--offload sequential): the token embedding (1B parameters, run alone before the
    # layers) or one layer, whichever is larger, is on the device at a time.
    streamed = max(per_layer, u["vocab"] * u["dim"]) * dtype_bytes
    flops = 2 * u["layers"] * per_layer * u["tokens"] + 4 * u["layers"] * u["tokens"] ** 2 * u["dim"]
    # a handful of [L, dim] and [L, ffn] activations live at once (no backward)
    activations = 8 * u["tokens"] * (u["dim"] + u["ffn"]) * 4
    return Stage("text encoder (umT5-XXL)", float(flops), float(weights + activations),
                 {"weights": float(weights), "activations": float(activations), "streamed_weights": float(streamed)})  # fmt: skip


# ---- running on the meta device ---------------------------------------------------------------
class _LiveTensors(TorchDispatchMode):
    """Peak bytes of tensor storages created while active, and answers for data-dependent
    scalars on meta tensors (the tracking head's and L_corr's input checks ask whether any
    query is out of range: no). Storages of ``existing`` tensors (the weights) are not counted,
    though ops return views of them (``t()`` of every Linear weight)."""

    def __init__(self, existing=()):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()
        self._existing = {t.untyped_storage()._cdata for t in existing}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default) and args[0].is_meta:
            return False if args[0].dtype == torch.bool else 0
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type in ("meta", "cpu"):
                self._track(t.untyped_storage())
        return out

    def _track(self, storage) -> None:
        key = storage._cdata
        if key in self._seen or key in self._existing:
            return
        self._seen.add(key)
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key, storage.nbytes())

    def _free(self, key: int, nbytes: int) -> None:
        if key in self._seen:
            self._seen.discard(key)
            self.live -= nbytes


@contextlib.contextmanager
def flash_attention():
    """Route ``F.scaled_dot_product_attention`` (no mask) to the flash kernel that has meta
    shapes, so saved tensors are O(S) as on CUDA (see the module docstring). A patch of the
    function rather than a TorchFunctionMode: checkpointed blocks recompute in backward,
    where the mode would not be active and the saved tensors would differ."""
    original = F.scaled_dot_product_attention

    def flash(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if attn_mask is not None or enable_gqa:
            return original(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, dropout_p, is_causal, scale=scale)[0]  # fmt: skip

    F.scaled_dot_product_attention = flash
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _flash_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(q, k, v)


def _flash_backward_flops(grad_out, q, k, v, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, q, k, v)


_FLOP_MAPPING = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _flash_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _flash_backward_flops,
}


def measure(fn, module=None) -> tuple[float, float]:
    """(FLOPs, peak bytes of tensors created) of ``fn()``, on whatever device its tensors live;
    ``module``'s parameters and buffers exist before and are not counted.

    Two passes: FlopCounterMode's module hooks keep block outputs alive (with it, a
    checkpointed step's peak read 10x too high), so memory is measured without it."""
    return count_flops(fn, module), peak_bytes(fn, module)


def peak_bytes(fn, module=None) -> float:
    """Peak bytes of the tensors ``fn()`` creates (``module``'s weights excluded)."""
    tracker = _LiveTensors(_existing(module))
    _fresh_grads(module)
    with flash_attention(), tracker:
        fn()
    _fresh_grads(module)
    return float(tracker.peak)


def count_flops(fn, module=None) -> float:
    """FLOPs of ``fn()`` by torch's FlopCounterMode (attention as the flash kernel)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_FLOP_MAPPING)
    _fresh_grads(module)
    with flash_attention(), counter, _LiveTensors(_existing(module)):
        fn()
    _fresh_grads(module)
    return float(counter.get_total_flops())


def _existing(module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()] if module is not None else []


def _fresh_grads(module) -> None:
    # A second backward into existing .grad adds in place: the gradients would not be counted.
    if module is not None:
        module.zero_grad(set_to_none=True)


# ---- the model and a training step ---------------------------------------------------------------
def build_model(config, *, device: str | torch.device = "meta", dtype: torch.dtype = torch.bfloat16,
                checkpointing: bool = True):  # fmt: skip
    """The model in the paper's fine-tuning scope: the DiT (and null text) in ``dtype``, the
    small tracking head in float32 as mixed-precision training keeps it."""
    from mvt4g.model.freeze import freeze_for_finetuning
    from mvt4g.model.mvt4g_model import MVT4GModel

    config = config.replace()
    config.gradient_checkpointing = checkpointing
    with torch.device(device):
        model = MVT4GModel(config)
    for module in (model.backbone, model.null_text):
        for p in module.parameters():
            p.data = p.data.to(dtype)
    freeze_for_finetuning(model)
    return model


def random_batch(config, shape: PlanShape, *, device, dtype: torch.dtype, seed: int = 0) -> dict:
    """Random latents, Plücker maps, query points and tracks at ``shape`` (any device, meta included)."""
    g = torch.Generator().manual_seed(seed)
    frames, h, w = latent_grid(config, shape)
    b, n = shape.batch, shape.queries
    latent = (b, config.backbone.in_channels, frames, h, w)
    size = torch.tensor([shape.width, shape.height], dtype=torch.float32)

    def rand(*dims, kind=torch.randn, dt=dtype):
        if torch.device(device).type == "meta":
            return torch.empty(*dims, device="meta", dtype=dt)
        return kind(*dims, generator=g).to(device=device, dtype=dt)

    queries = torch.cat([torch.randint(0, 2, (b, n, 1), generator=g).float(),
                         torch.randint(0, frames, (b, n, 1), generator=g).float(),
                         torch.rand(b, n, 2, generator=g) * size], dim=-1)  # fmt: skip
    tracks = torch.rand(b, 2, frames, n, 2, generator=g) * size
    visible = torch.rand(b, 2, frames, n, generator=g) > 0.2
    small = {"queries": queries, "tracks": tracks, "visible": visible}
    batch = {k: v.to("meta") if torch.device(device).type == "meta" else v.to(device) for k, v in small.items()}
    batch.update(reference=rand(*latent), x0=rand(*latent), noise=rand(*latent),
                 plucker=rand(b, 2, frames, 6, shape.height, shape.width), image_size=(shape.height, shape.width))
    if config.camera.mode == "recammaster":
        batch["camera_pose"] = rand(b, frames, 12)
        batch["plucker"] = None
    return batch


def training_step(model, data: dict, variant: str, *, backward: bool = True) -> torch.Tensor:
    """Forward (+ backward) of one fine-tuning step of ``variant`` (see the module docstring)."""
    from mvt4g.model.correspondence import CorrespondenceLoss
    from mvt4g.model.flow_matching import diffusion_loss
    from mvt4g.model.losses import total_loss, track_loss

    x0, noise = data["x0"], data["noise"]
    sigma = torch.full((x0.shape[0],), 0.5, device=x0.device, dtype=x0.dtype)
    noisy = (1 - sigma.view(-1, 1, 1, 1, 1)) * x0 + sigma.view(-1, 1, 1, 1, 1) * noise
    track = variant == "full" and model.tracking_head is not None
    out = model(data["reference"], noisy, 1000 * sigma, plucker=data["plucker"], camera_pose=data.get("camera_pose"),
                queries=data["queries"] if track else None, image_size=data["image_size"], tap=variant != "diffusion")  # fmt: skip
    l_diff = diffusion_loss(out.velocity, noise - x0)
    l_corr = l_track = None
    if variant != "diffusion":
        l_corr = CorrespondenceLoss()(out.tap.q, out.tap.k, data["queries"], data["tracks"], data["visible"], data["image_size"])
    if track:
        l_track = track_loss(out.tracks, data["tracks"], data["visible"])["loss"]
    loss = total_loss(l_diff, l_track, l_corr)["loss"]
    if backward:
        loss.backward()
    return loss.detach()


def _param_bytes(params) -> float:
    return float(sum(p.numel() * p.element_size() for p in params))


def train_stage(config, shape: PlanShape, *, variant: str, checkpointing: bool,
                dtype: torch.dtype = torch.bfloat16, memory: bool = True) -> Stage:  # fmt: skip
    """One training step of the DiT (+ head and losses): forward + backward FLOPs; peak =
    weights + Adam's two moments of the trainable parameters + what the step allocates
    (inputs, saved activations, temporaries and the gradients). ``memory=False``: FLOPs only."""
    model = build_model(config, dtype=dtype, checkpointing=checkpointing)
    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = _param_bytes(model.parameters())
    adam = 2 * _param_bytes(trainable)

    def step():
        data = random_batch(config, shape, device="meta", dtype=dtype)
        training_step(model, data, variant)

    flops = count_flops(step, model)
    step_peak = peak_bytes(step, model) if memory else float("nan")
    parts = {"weights": weights, "grads": _param_bytes(trainable), "adam": adam, "step": step_peak}
    return Stage(f"DiT train step ({variant})", flops, weights + adam + step_peak, parts)


def generate_dit_stage(config, shape: PlanShape, *, steps: int, guidance: bool,
                       dtype: torch.dtype = torch.bfloat16, memory: bool = True) -> Stage:  # fmt: skip
    """Sampling: ``steps`` DiT forwards (two per step with guidance: conditional and not),
    run one after another, so the peak is one forward's."""
    model = build_model(config, dtype=dtype, checkpointing=False)
    weights = _param_bytes(model.parameters())

    def forward():
        data = random_batch(config, shape, device="meta", dtype=dtype)
        with torch.no_grad():
            model(data["reference"], data["x0"], torch.full((shape.batch,), 500.0, device="meta"),
                  plucker=data["plucker"], camera_pose=data.get("camera_pose"), tap=False)  # fmt: skip

    flops = count_flops(forward, model)
    peak = peak_bytes(forward, model) if memory else float("nan")
    per_step = flops * (2 if guidance else 1)
    streamed = streamed_bytes(model, model.transformer.blocks)  # --offload sequential: a block at a time
    return Stage("DiT sampling", per_step * steps, weights + peak,
                 {"weights": weights, "forward": peak, "flops_per_step": per_step, "steps": float(steps),
                  "streamed_weights": streamed})  # fmt: skip


#: The pipeline keeps Wan's VAE in float32, as Wan's own pipelines do: its decode is priced so.
VAE_DTYPE = torch.float32
#: Latent frame counts a tiled decode is measured at (see :func:`tiled_vae_decode_stage`).
TILED_PROBE_FRAMES = (3, 5)


def _meta_wan_vae(config):
    from diffusers import AutoencoderKLWan

    from mvt4g.model.autoencoder import _wan_vae_kwargs

    with torch.device("meta"):
        vae = AutoencoderKLWan(**_wan_vae_kwargs(config.autoencoder))
    # nn.Module.to: diffusers' own .to() warns about float32 modules on every cast (it has none here)
    return torch.nn.Module.to(vae, VAE_DTYPE)


def _decode_fn(vae, config, frames: int, h: int, w: int, batch: int = 1):
    def decode():
        z = torch.empty(batch, config.autoencoder.latent_channels, frames, h, w, device="meta", dtype=VAE_DTYPE)
        with torch.no_grad():
            vae.decode(z)

    return decode


def vae_decode_stage(config, shape: PlanShape) -> Stage | None:
    """Decoding the generated view's latents, whole frames at once. None for the space-to-depth
    autoencoder (a reshape: no FLOPs, no weights)."""
    if config.autoencoder.kind != "wan_vae":
        return None
    vae = _meta_wan_vae(config)
    weights = _param_bytes(vae.parameters())
    frames, h, w = latent_grid(config, shape)
    flops, peak = measure(_decode_fn(vae, config, frames, h, w, shape.batch), vae)
    return Stage("VAE decode", flops, weights + peak, {"weights": weights, "decode": peak})


def tiled_vae_decode_stage(config, shape: PlanShape, whole: Stage) -> Stage:
    """The same decode in Wan's overlapping spatial tiles (``AutoencoderKLWan.enable_tiling``).

    Its peak has two phases. While tiles are decoded (frame by frame, each tile's cache) it is
    one tile's activations plus the tiles decoded so far: measured at :data:`TILED_PROBE_FRAMES`
    latent frames and extrapolated linearly. When they are blended, every decoded tile is held
    with three full-size copies (the blended rows, their concatenation, the clamped video):
    counted exactly (:func:`_tile_blend_bytes`). The larger is the peak (both checked against a
    full measurement). FLOPs: the whole decode's, scaled by the area the overlapping tiles cover."""
    vae = _meta_wan_vae(config)
    vae.enable_tiling()
    weights = whole.parts["weights"]
    frames, h, w = latent_grid(config, shape)

    def peak_at(f: int) -> float:
        return peak_bytes(_decode_fn(vae, config, f, h, w, shape.batch), vae)

    lo, hi = TILED_PROBE_FRAMES
    if frames <= hi:
        peak = peak_at(frames)
    else:
        p_lo, p_hi = peak_at(lo), peak_at(hi)
        decoding = p_hi + (p_hi - p_lo) / (hi - lo) * (frames - hi)
        peak = max(decoding, _tile_blend_bytes(vae, config, shape, h, w))
    flops = whole.flops * _tile_coverage(vae, config, h, w)
    return Stage("VAE decode (tiled)", flops, weights + peak, {"weights": weights, "decode": peak})


def _tile_blend_bytes(vae, config, shape: PlanShape, h: int, w: int) -> float:
    """Bytes live while tiles are blended: every decoded tile (float32 RGB, all frames) and three
    copies of the output video (diffusers' ``tiled_decode``: rows, their concatenation, clamp)."""
    s = config.autoencoder.spatial_factor
    out_px = (h * s) * (w * s)
    tiles_px = _tile_coverage(vae, config, h, w) * out_px
    per_px = shape.batch * 3 * shape.frames * VAE_DTYPE.itemsize
    return per_px * (tiles_px + 3 * out_px)


def _tile_coverage(vae, config, h: int, w: int) -> float:
    """Latent area the overlapping tiles decode, over the frame's (>= 1)."""
    s = config.autoencoder.spatial_factor
    size_h, size_w = vae.tile_sample_min_height // s, vae.tile_sample_min_width // s
    step_h, step_w = vae.tile_sample_stride_height // s, vae.tile_sample_stride_width // s
    rows = sum(min(size_h, h - i) for i in range(0, h, step_h))
    cols = sum(min(size_w, w - j) for j in range(0, w, step_w))
    return rows * cols / (h * w)


# ---- plans -------------------------------------------------------------------------------------
def train_plan(config, shape: PlanShape, *, dtype: torch.dtype = torch.bfloat16) -> dict:
    """Training: every variant with and without gradient checkpointing, and the ratios
    full / diffusion (the paper's cost claim: <= 1.10)."""
    rows = []
    for checkpointing in (True, False):
        for variant in VARIANTS:
            stage = train_stage(config, shape, variant=variant, checkpointing=checkpointing, dtype=dtype)
            rows.append({"variant": variant, "checkpointing": checkpointing, **stage.to_dict()})
    text = text_encoder_stage() if _uses_umt5(config) else None
    return {"plan": "train", "shape": asdict(shape), "tokens": tokens(config, shape), "dtype": _dtype_name(dtype),
            "text_encoder": text.to_dict() if text else None, "rows": rows, "ratios": _ratios(rows),
            "analytic_dit_forward_flops": dit_forward_flops_analytic(config, shape)}  # fmt: skip


def generate_plan(config, shape: PlanShape, *, steps: int = 50, guidance: bool = True,
                  dtype: torch.dtype = torch.bfloat16, offload: str = "none", tiled: bool = False) -> dict:  # fmt: skip
    """Generation: text encoding, sampling and VAE decode (whole frames), and the peak under every
    offload mode (:mod:`mvt4g.model.placement`); ``peak_bytes`` is ``offload``'s.
    ``peak_bytes_resident``: every model on the device at once, text encoder included;
    ``peak_bytes_staged``: the largest stage alone (equal to ``--offload model``'s).

    ``tiled``: also price the VAE decode in tiles (``plan["tiled"]``: its stage and peaks per
    mode), which :func:`check_device_fits` chooses when whole frames do not fit."""
    check_offload(offload)
    text = text_encoder_stage() if _uses_umt5(config) else None
    guidance = guidance and text is not None  # guidance is on the text: none without an encoder
    dit = generate_dit_stage(config, shape, steps=steps, guidance=guidance, dtype=dtype)
    vae = vae_decode_stage(config, shape)
    components = {"text_encoder": text, "dit": dit, "autoencoder": vae}
    stages = [s for s in components.values() if s is not None]
    weights = sum(s.parts.get("weights", 0.0) for s in stages)
    resident = weights + max(s.peak_bytes - s.parts.get("weights", 0.0) for s in stages)
    by_offload = {mode: offload_peak(components, mode) for mode in OFFLOAD_MODES}
    plan = {"plan": "generate", "shape": asdict(shape), "tokens": tokens(config, shape), "dtype": _dtype_name(dtype),
            "vae_dtype": _dtype_name(VAE_DTYPE), "steps": steps, "guidance": guidance,
            "temporal_factor": config.autoencoder.temporal_factor, "stages": [s.to_dict() for s in stages],
            "flops": sum(s.flops for s in stages), "offload": offload, "tiled_decode": False,
            "peak_bytes": by_offload[offload], "peak_bytes_by_offload": by_offload, "peak_bytes_resident": resident,
            "peak_bytes_staged": max(s.peak_bytes for s in stages), "tiled": None}  # fmt: skip
    if tiled and vae is not None:
        stage = tiled_vae_decode_stage(config, shape, vae)
        with_tiles = {**components, "autoencoder": stage}
        plan["tiled"] = {"stage": stage.to_dict(),
                         "peak_bytes_by_offload": {m: offload_peak(with_tiles, m) for m in OFFLOAD_MODES}}  # fmt: skip
    return plan


def use_tiles(plan: dict) -> dict:
    """The plan with the tiled VAE decode in place of the whole-frame one (needs ``tiled=True``)."""
    tiled = plan["tiled"]
    stages = [tiled["stage"] if s["name"].startswith("VAE decode") else s for s in plan["stages"]]
    by_offload = tiled["peak_bytes_by_offload"]
    return {**plan, "stages": stages, "tiled_decode": True, "peak_bytes": by_offload[plan["offload"]],
            "peak_bytes_by_offload": by_offload, "flops": sum(s["flops"] for s in stages)}  # fmt: skip


def offload_peak(components: dict[str, Stage | None], mode: str) -> float:
    """Peak device bytes of a generation under offload ``mode``: the weights of the components
    resident throughout, plus at the worst stage what that stage adds: its activations and its
    own weights when they are not resident (all of them when staged, the streamed part's
    ``streamed_weights`` when moved block by block). ``components``: placement name -> Stage."""
    placement = PLACEMENT[mode]
    present = {name: stage for name, stage in components.items() if stage is not None}
    resident = sum(s.parts.get("weights", 0.0) for name, s in present.items() if placement[name] == "resident")

    def adds(name: str, stage: Stage) -> float:
        weights = stage.parts.get("weights", 0.0)
        moved = {"resident": 0.0, "staged": weights, "blocks": stage.parts.get("streamed_weights", weights)}
        return stage.peak_bytes - weights + moved[placement[name]]

    return resident + max(adds(name, s) for name, s in present.items())


def _ratios(rows: list[dict]) -> dict:
    out = {}
    for checkpointing in (True, False):
        by = {r["variant"]: r for r in rows if r["checkpointing"] == checkpointing}
        key = "checkpointing" if checkpointing else "no_checkpointing"
        out[key] = {"flops": by["full"]["flops"] / by["diffusion"]["flops"],
                    "memory": by["full"]["peak_bytes"] / by["diffusion"]["peak_bytes"]}  # fmt: skip
    return out


def _uses_umt5(config) -> bool:
    # Wan's DiT reads 4096-wide umT5-XXL embeddings; the small presets use their learned null text.
    return bool(config.text.encoder_path) or config.backbone.text_dim == UMT5_XXL["dim"]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")
