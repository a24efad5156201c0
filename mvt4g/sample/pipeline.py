"""``GeneratePipeline``: load a model and its autoencoder once, generate many novel views.

    pipe = GeneratePipeline("runs/exp1")                      # run dir or model dir
    ref = read_reference(plan_reference("bear.mp4", opts), opts)
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-left", ref.num_frames))
    result = pipe.generate(ref, tgt, settings=SamplingSettings(steps=50), seed=0)
    result.frames        # uint8 [T, H, W, 3]

One generation: the reference frames ``[-1, 1]`` -> normalised latents (the clean reference
half of the token sequence); Plücker maps (or ReCamMaster poses) of both views at the latent
frames, relative to the reference's first pose (``mvt4g.model.conditioning``); seeded noise
drawn on the CPU (the same latents on every device) in float32; the flow-matching sampler
(:mod:`mvt4g.sample.sampler`); decoding; uint8 frames. With query points, the tracking head
runs once, at the last step (or the step nearest ``track_timestep``), on the same forward
pass as the velocity.

Text: a model whose config names a text encoder (``text.encoder_path``, resolved against the
model directory when relative) that loads gets prompt embeddings and classifier-free guidance
(the unconditional branch is the negative prompt, "" by default; both branches run as one
batch of two). Without one, the model's learned null text embedding is used, guidance is
skipped, and ``result.info["guidance"]`` says why.

Memory (``offload``, :mod:`mvt4g.sample.offload`): ``none`` keeps the DiT and autoencoder on
the device; ``model`` keeps every component on the CPU and copies each to the device for its
stage only (peak: the largest stage); ``sequential`` streams the DiT and the text encoder
block by block (peak: about one block's weights + the activations). In every mode the text
encoder is copied to the device only while it encodes a prompt not yet in the cache:
encoding runs once per prompt, and its weights need not hold device memory through sampling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mvt4g.camera.rig import ViewCameras
from mvt4g.errors import ConfigError, InputError, WorkFailed
from mvt4g.io.frames import latent_frame_indices
from mvt4g.memory import check_video
from mvt4g.model.checkpoint import from_pretrained, load_autoencoder, read_config
from mvt4g.model.conditioning import pair_camera_pose, pair_plucker
from mvt4g.model.lookup import resolve_model
from mvt4g.model.placement import PLACEMENT, check_offload
from mvt4g.sample.offload import STORAGE, Offloader
from mvt4g.sample.queries import (
    check_queries,
    latent_tracks_to_video,
    to_latent_queries,
)
from mvt4g.sample.reference import PreparedReference
from mvt4g.sample.sampler import (
    SamplingSettings,
    guided_velocity,
    make_sampler,
    nearest_step,
    sample_flow,
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TRACK_METHOD = "mvt4g-tracking-head"


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an InputError."""
    text = str(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available to PyTorch")
    if text != "cpu" and not text.startswith("cuda"):
        raise InputError(f"unknown device {text!r} (choose auto, cpu, cuda or cuda:N)")
    return torch.device(text)


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``/None -> bfloat16 on CUDA, float32 on CPU."""
    if isinstance(name, torch.dtype):
        return name
    if name in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise InputError(f"unknown dtype {name!r} (choose auto, {', '.join(DTYPES)})")
    return DTYPES[name]


@dataclass
class GenerationResult:
    """frames: uint8 ``[T, H, W, 3]``; tracks: a ``TrackSet`` (view 0 reference, 1 generated)
    or None; info: sampling, guidance, tracking and timing details (JSON-ready)."""

    frames: np.ndarray
    tracks: object | None = None
    info: dict = field(default_factory=dict)


class GeneratePipeline:
    """A loaded model + autoencoder (+ text encoder) that generates target views; see the module docstring.

    ``load_seconds``: reading the config, weights, autoencoder and text encoder;
    ``import_seconds``: importing the model code (diffusers) first, ~0 when already imported.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = "auto",
        text_encoder: str | Path | None = "config",
        tiled_decode: bool | None = None,
        offload: str = "none",
    ):
        check_offload(offload)
        start = time.perf_counter()
        # The model code imports diffusers (about 2.6 s of a 3 s tiny-model load on a CPU, once
        # per process): timed apart, so load_seconds is this model's loading alone.
        import mvt4g.model.mvt4g_model  # noqa: F401

        self.import_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model_dir = resolve_model(model)
        config = read_config(model_dir)
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device)
        # An offloaded DiT is loaded where its weights are stored: it never goes whole onto the
        # device outside its stage (and under sequential, never whole at all).
        resident = PLACEMENT[offload]["dit"] == "resident"
        net = from_pretrained(model_dir, device=str(device if resident else STORAGE), dtype=dtype)
        # The autoencoder stays float32 (as Wan's pipelines keep the VAE); it is small next to the DiT.
        autoencoder = load_autoencoder(model_dir, config)
        self._setup(net, autoencoder, model_dir, device, text_encoder, tiled_decode, offload)
        self.load_seconds = time.perf_counter() - start

    @classmethod
    def from_modules(
        cls, model, autoencoder, *, model_dir: str | Path | None = None, text_encoder=None, tiled_decode: bool | None = None,
        offload: str = "none", device: str | torch.device | None = None,
    ) -> GeneratePipeline:
        """A pipeline around an in-memory model and autoencoder (e.g. right after training, or
        random weights in a benchmark); dtype is the model's, which is put in eval mode without
        gradients. ``device``: where generation runs (default: the model's); with ``offload``
        the modules are moved to their storage (the CPU) or the device as the mode places them.
        ``text_encoder``: a path, or ``(tokenizer, encoder)`` in memory. ``model_dir`` only
        resolves a relative text encoder path and is recorded in the metadata."""
        check_offload(offload)
        self = cls.__new__(cls)
        device = next(model.parameters()).device if device is None else resolve_device(device)
        self._setup(model, autoencoder, Path(model_dir) if model_dir else None, device, text_encoder, tiled_decode, offload)
        self.load_seconds = self.import_seconds = 0.0
        return self

    def _setup(self, model, autoencoder, model_dir, device, text_encoder, tiled_decode, offload) -> None:
        self.model_dir = model_dir
        self.config = model.config
        self.device = torch.device(device)
        self.dtype = next(model.parameters()).dtype
        self.offload = offload
        self.offloader = Offloader(offload, self.device)
        self.model = self.offloader.add("dit", model.eval(), blocks=model.transformer.blocks)
        self.model.requires_grad_(False)
        self.autoencoder = self.offloader.add("autoencoder", autoencoder.eval())
        self.autoencoder.requires_grad_(False)
        self.tiled_decode = tiled_decode
        self.text, self.text_note = self._load_text_encoder(text_encoder)
        self._prompt_cache: dict[str, torch.Tensor] = {}

    def remove_offload(self) -> None:
        """Remove the offload hooks (a streamed model runs as a plain module again); every
        weight stays where it is stored: on the device when resident, else on the CPU."""
        self.offloader.remove()

    # ---- setup ----------------------------------------------------------------------------
    def _load_text_encoder(self, choice):
        if choice is None:
            return None, "text encoder disabled: the model's learned null text embedding is used"
        if isinstance(choice, tuple):  # (tokenizer, encoder) already in memory (from_modules)
            return self._use_text_encoder(*choice, None), "text encoder in memory"
        path = self.config.text.encoder_path if choice == "config" else str(choice)
        if not path:
            return None, "the model has no text encoder: its learned null text embedding is used"
        path = Path(path)
        if not path.is_absolute() and choice == "config" and self.model_dir is not None:
            path = self.model_dir / path
        from mvt4g.model.text import load_text_encoder

        try:
            # On the CPU: the offloader copies it to the device while it encodes (module docstring).
            tokenizer, encoder = load_text_encoder(path, device=STORAGE, dtype=self.dtype)
        except InputError as exc:
            return None, f"text encoder unavailable ({exc}); the learned null text embedding is used"
        return self._use_text_encoder(tokenizer, encoder, path), f"text encoder {path}"

    def _use_text_encoder(self, tokenizer, encoder, where) -> tuple:
        if encoder.config.d_model != self.config.backbone.text_dim:
            raise ConfigError(
                f"text encoder width {encoder.config.d_model} differs from the model's text_dim {self.config.backbone.text_dim}",
                path=where,
            )
        layers = getattr(getattr(encoder, "encoder", None), "block", ())  # umT5's transformer layers
        self.offloader.add("text_encoder", encoder.eval().requires_grad_(False), blocks=layers)
        return tokenizer, encoder

    @property
    def temporal_factor(self) -> int:
        return self.config.autoencoder.temporal_factor

    @property
    def token_stride(self) -> int:
        return self.config.token_stride

    def default_video(self) -> tuple[int, int, int]:
        """``(frames, height, width)`` the model's config proposes."""
        v = self.config.video
        return v.frames, v.height, v.width

    def check_video_shape(self, frames: int, height: int, width: int) -> None:
        """InputError unless the model can take ``frames`` x ``height`` x ``width``."""
        check_video_shape(self.config, frames, height, width)

    # ---- text -----------------------------------------------------------------------------
    def _embed(self, *prompts: str) -> list[torch.Tensor]:
        """Embeddings of ``prompts`` from the cache; the missing ones are encoded together, so
        the text encoder goes to the device once for them."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._prompt_cache]
        if missing:
            from mvt4g.model.text import encode_prompts

            tokenizer, encoder = self.text
            with self.offloader.stage("text_encoder"):
                for prompt in missing:  # one at a time: the same embeddings as a batch of one
                    emb = encode_prompts([prompt], tokenizer, encoder, max_length=self.config.text.max_length)
                    self._prompt_cache[prompt] = emb.to(self.device, self.dtype)
        return [self._prompt_cache[p] for p in prompts]

    def text_conditioning(self, prompt: str | None, negative_prompt: str, guidance: float):
        """``(cond [1, L, D] or None, uncond or None, info)``; uncond None means no guidance."""
        info = {"scale": guidance, "applied": False, "prompt": prompt, "negative_prompt": negative_prompt}
        if self.text is None:
            info["note"] = self.text_note + ("; the prompt was ignored" if prompt else "")
            return None, None, info
        if guidance == 1.0:
            info["note"] = "guidance scale 1: conditional prediction only"
            return self._embed(prompt or "")[0], None, info
        if (prompt or "") == negative_prompt:
            info["note"] = "prompt equals the negative prompt: guidance would change nothing"
            return self._embed(prompt or "")[0], None, info
        info["applied"] = True
        cond, uncond = self._embed(prompt or "", negative_prompt)
        return cond, uncond, info

    # ---- generation -----------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        reference: PreparedReference,
        target: ViewCameras,
        *,
        settings: SamplingSettings | None = None,
        seed: int = 0,
        prompt: str | None = None,
        negative_prompt: str = "",
        queries: np.ndarray | None = None,
        track_timestep: float | None = None,
        callback: Callable[[int, int], None] | None = None,
    ) -> GenerationResult:
        """Generate the target view of ``reference`` along ``target`` (same frames and size).

        ``queries`` ``[N, 4]`` (view, video frame, x, y) in output pixels run the tracking
        head; ``callback(done, total)`` is called after each denoising step.
        """
        settings = settings or SamplingSettings()
        frames_np = reference.frames
        T, H, W = frames_np.shape[:3]
        self.check_video_shape(T, H, W)
        if target.frames != T or (target.height, target.width) != (H, W):
            raise InputError(f"target cameras are {target.frames} x {target.height}x{target.width}, the reference {T} x {H}x{W}")
        if queries is not None:
            if self.model.tracking_head is None:
                raise InputError("this model has no tracking head (use_tracking_head is off): drop --query-points")
            queries = check_queries(queries, height=H, width=W, frames=T)
        timings: dict[str, float] = {}
        dev, dt = self.device, self.dtype
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

        t0 = time.perf_counter()
        video = torch.from_numpy(frames_np).to(dev).permute(3, 0, 1, 2)[None].to(torch.float32) / 127.5 - 1.0
        with self.offloader.stage("autoencoder"):
            ref_latents = self.autoencoder.encode(video).to(dt)
        cond = self._camera_inputs(reference.cameras, target, T, (H, W))
        sync()
        timings["encode_s"] = time.perf_counter() - t0

        text_cond, text_uncond, guidance_info = self.text_conditioning(prompt, negative_prompt, settings.guidance)
        use_cfg = text_uncond is not None
        sampler = make_sampler(settings, dev)
        generator = torch.Generator("cpu").manual_seed(int(seed))
        noise = torch.randn(ref_latents.shape, generator=generator, dtype=torch.float32).to(dev)

        track_index, latent_q, snapped_q = None, None, None
        if queries is not None:
            track_index = len(sampler.timesteps) - 1 if track_timestep is None else nearest_step(sampler, track_timestep)
            latent_q, snapped_q = to_latent_queries(queries, self.temporal_factor)
        captured: dict = {}

        batch = 2 if use_cfg else 1
        ref_b = ref_latents.expand(batch, *ref_latents.shape[1:])
        cam_b = {k: v.expand(batch, *v.shape[1:]) for k, v in cond.items()}
        text_b = torch.cat([text_uncond, text_cond]) if use_cfg else text_cond
        q_tensor = torch.from_numpy(latent_q).to(dev)[None].expand(batch, -1, -1) if latent_q is not None else None

        def velocity(x: torch.Tensor, t: torch.Tensor, index: int) -> torch.Tensor:
            want_tracks = index == track_index
            x_in = x.to(dt).expand(batch, *x.shape[1:])
            out = self.model(
                ref_b, x_in, t.expand(batch), text_embeds=text_b, queries=q_tensor if want_tracks else None,
                image_size=(H, W), tap=want_tracks, **cam_b,
            )  # fmt: skip
            if want_tracks:
                captured.update(out.tracks, timestep=float(t[0]))
            if use_cfg:
                v_uncond, v_cond = out.velocity.float().chunk(2)
                return guided_velocity(v_cond, v_uncond, settings.guidance)
            return out.velocity

        t0 = time.perf_counter()
        with self.offloader.stage("dit"):
            latents = sample_flow(velocity, noise, sampler, callback=callback)
        sync()
        timings["denoise_s"] = time.perf_counter() - t0
        timings["per_step_s"] = timings["denoise_s"] / settings.steps
        if not torch.isfinite(latents).all():
            raise WorkFailed("the sampler produced NaN or inf latents (try --dtype float32)")

        t0 = time.perf_counter()
        with self.offloader.stage("autoencoder"):
            decoded, tiled = self._decode(latents)
        out_frames = ((decoded[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
        sync()
        timings["decode_s"] = time.perf_counter() - t0
        if out_frames.shape != frames_np.shape:
            raise WorkFailed(f"decoded video has shape {list(out_frames.shape)}, expected {list(frames_np.shape)}")

        info = {
            "sampling": {**settings.to_dict(), "seed": int(seed), "timesteps": [round(float(v), 4) for v in sampler.timesteps]},
            "guidance": guidance_info,
            "device": str(dev),
            "dtype": str(dt).replace("torch.", ""),
            "tiled_decode": tiled,
            "offload": self.offload,
            "timings": {k: round(v, 4) for k, v in timings.items()},
        }
        tracks = None
        if queries is not None:
            tracks = self._trackset(captured, snapped_q, T, (H, W))
            info["tracks"] = {
                "method": TRACK_METHOD,
                "step": track_index,
                "timestep": round(captured["timestep"], 4),
                "points": len(queries),
                "frames_interpolated_between_latent_frames": self.temporal_factor > 1,
                "query_frames_snapped": bool(np.any(snapped_q[:, 1] != queries[:, 1])),
            }
        return GenerationResult(out_frames, tracks, info)

    def _camera_inputs(self, ref: ViewCameras, tgt: ViewCameras, frames: int, size: tuple[int, int]) -> dict:
        mode = self.config.camera.mode
        index = latent_frame_indices(frames, self.temporal_factor)
        if mode == "plucker":
            maps = pair_plucker(ref, tgt, index, size)
            return {"plucker": torch.from_numpy(maps)[None].to(self.device, self.dtype)}
        if mode == "recammaster":
            pose = pair_camera_pose(ref, tgt, index)
            return {"camera_pose": torch.from_numpy(pose)[None].to(self.device, self.dtype)}
        return {}

    def _decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, bool]:
        vae = getattr(self.autoencoder, "vae", None)
        if vae is not None and self.tiled_decode:
            vae.enable_tiling()
            return self.autoencoder.decode(latents), True
        try:
            return self.autoencoder.decode(latents), False
        except torch.cuda.OutOfMemoryError:
            if vae is None or self.tiled_decode is False:
                raise WorkFailed("out of GPU memory while decoding") from None
        # Not enough memory for a whole-frame decode: Wan's VAE decodes in overlapping tiles.
        torch.cuda.empty_cache()
        vae.enable_tiling()
        return self.autoencoder.decode(latents), True

    def _trackset(self, captured: dict, snapped: np.ndarray, frames: int, size: tuple[int, int]):
        from mvt4g.tracks.format import TrackSet

        coords = captured["coords"][-1][-1].float().cpu().numpy()  # conditional batch item: [V, F, N, 2]
        visible = (captured["vis_logits"][-1].float() > 0).cpu().numpy()  # sigmoid > 0.5
        tracks, vis = latent_tracks_to_video(coords, visible, frames, self.temporal_factor)
        n = np.arange(len(snapped))
        qv, qt = snapped[:, 0].astype(np.int64), snapped[:, 1].astype(np.int64)
        # At its own view and frame a track IS its query point.
        tracks[qv, qt, n] = snapped[:, 2:4]
        vis[qv, qt, n] = True
        return TrackSet(tracks, vis, snapped, size, TRACK_METHOD, views=["reference", "generated"])


def check_video_shape(config, frames: int, height: int, width: int) -> None:
    """InputError unless ``frames`` is ``tf k + 1`` and the size a multiple of the token stride."""
    tf = config.autoencoder.temporal_factor
    if frames < 1 or (frames - 1) % tf:
        raise InputError(f"--frames must be {tf}k+1 for this model (e.g. {tf * ((max(frames, 1) - 1) // tf) + 1}), got {frames}")
    stride = config.token_stride
    if height % stride or width % stride:
        raise InputError(
            f"--size {height}x{width} is not divisible by the model's stride {stride} "
            f"(e.g. {max(stride, height // stride * stride)}x{max(stride, width // stride * stride)})"
        )
    check_video(frames=frames, height=height, width=width)
    latent = (frames - 1) // tf + 1
    if 2 * latent > config.backbone.rope_max_seq_len:
        raise InputError(f"--frames {frames} gives {2 * latent} latent frames, more than the model's RoPE table ({config.backbone.rope_max_seq_len})")
