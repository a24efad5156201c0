"""GeneratePipeline (Python API): the same result as a hand-written loop over the model,
guidance batching, tracks, model-directory resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.plucker import plucker_rays
from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import preset_trajectory
from mvt4g.errors import InputError
from mvt4g.model.checkpoint import load_autoencoder, save_pretrained
from mvt4g.model.config import preset
from mvt4g.model.lookup import resolve_model_dir
from mvt4g.model.mvt4g_model import MVT4GModel
from mvt4g.sample.pipeline import GeneratePipeline
from mvt4g.sample.reference import PreparedReference
from mvt4g.sample.sampler import SamplingSettings
from mvt4g.sample.targets import target_cameras

FRAMES, H, W = 9, 32, 40  # tiny preset: temporal factor 4, token stride 4


def _perturbed_tiny(seed: int = 0, **changes) -> MVT4GModel:
    torch.manual_seed(seed)
    cfg = preset("tiny")
    for key, value in changes.items():
        setattr(cfg, key, value)
    model = MVT4GModel(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # leave the zero-initialised camera path and heads non-trivial
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen_model")
    (root / "run").mkdir()
    save_pretrained(_perturbed_tiny(), root / "run" / "model")
    return root / "run"


@pytest.fixture(scope="module")
def pipe(model_dir):
    return GeneratePipeline(model_dir, device="cpu")


def _reference(seed: int = 0) -> PreparedReference:
    rng = np.random.default_rng(seed)
    # Smooth colour ramps plus noise: a video whose latents are not all alike.
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx * 6, yy * 7, (xx + yy) * 3], axis=-1)[None] + np.arange(FRAMES)[:, None, None, None] * 5
    frames = np.clip(base + rng.integers(0, 40, (FRAMES, H, W, 3)), 0, 255).astype(np.uint8)
    K = Intrinsics.from_fov(55.0, W, H).K
    cams = ViewCameras(W, H, K, np.tile(np.eye(4), (FRAMES, 1, 1)))
    return PreparedReference(path=None, frames=frames, fps=10.0, cameras=cams, report={})


def _hand_inputs(ae, ref: PreparedReference, traj: np.ndarray, seed: int):
    """What the pipeline should feed the model, computed by hand: the reference latents, the
    reference/target Plücker maps at the latent frames, and the seeded starting noise."""
    video = torch.from_numpy(ref.frames.astype(np.float32) / 127.5 - 1).permute(3, 0, 1, 2)[None]
    ref_lat = ae.encode(video)
    idx = np.arange(0, FRAMES, 4)
    K = ref.cameras.K[0]
    rays = np.stack([plucker_rays(K, np.tile(np.eye(4), (len(idx), 1, 1)), H, W), plucker_rays(K, traj[idx], H, W)])
    x = torch.randn(ref_lat.shape, generator=torch.Generator().manual_seed(seed))
    return ref_lat, torch.from_numpy(rays)[None], x


@pytest.mark.slow
def test_pipeline_equals_a_hand_written_euler_loop(pipe):
    """Independent reference: our own encode, Plücker maps, seeded noise, diffusers' scheduler, decode."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    ref = _reference()
    traj = preset_trajectory("arc-left", FRAMES)
    tgt = target_cameras(ref.cameras, traj)
    steps, seed = 3, 11
    result = pipe.generate(ref, tgt, settings=SamplingSettings(steps=steps), seed=seed)
    assert result.frames.shape == (FRAMES, H, W, 3) and result.frames.dtype == np.uint8
    assert result.info["guidance"]["applied"] is False and "null text" in result.info["guidance"]["note"]

    model = pipe.model
    ae = load_autoencoder(pipe.model_dir)
    ref_lat, plucker, x = _hand_inputs(ae, ref, traj, seed)
    sched = FlowMatchEulerDiscreteScheduler(shift=5.0)
    sched.set_timesteps(sigmas=np.linspace(1, 0, steps + 1)[:-1])
    with torch.no_grad():
        for t in sched.timesteps:
            v = model(ref_lat, x, t.expand(1), plucker=plucker, tap=False).velocity
            x = sched.step(v, t, x).prev_sample
        expected = ((ae.decode(x)[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
    diff = np.abs(result.frames.astype(int) - expected.astype(int))
    assert diff.max() <= 1, diff.max()
    # The camera matters: another trajectory gives another video.
    other = pipe.generate(ref, target_cameras(ref.cameras, preset_trajectory("pan-right", FRAMES)),
                          settings=SamplingSettings(steps=steps), seed=seed)  # fmt: skip
    assert np.abs(other.frames.astype(int) - result.frames.astype(int)).mean() > 0.5


@pytest.mark.slow
def test_seed_reproducibility_and_unipc(pipe):
    ref = _reference(1)
    tgt = target_cameras(ref.cameras, preset_trajectory("zoom-in", FRAMES))
    a = pipe.generate(ref, tgt, settings=SamplingSettings(steps=2), seed=3).frames
    b = pipe.generate(ref, tgt, settings=SamplingSettings(steps=2), seed=3).frames
    c = pipe.generate(ref, tgt, settings=SamplingSettings(steps=2), seed=4).frames
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    u = pipe.generate(ref, tgt, settings=SamplingSettings(steps=2, sampler="unipc"), seed=3)
    assert u.frames.shape == a.shape and u.info["sampling"]["sampler"] == "unipc"


@pytest.mark.slow
def test_classifier_free_guidance_batches_like_two_passes(model_dir):
    """With a text encoder present, cond and uncond run as one batch of 2 and combine as CFG."""
    pipe = GeneratePipeline(model_dir, device="cpu")
    g = torch.Generator().manual_seed(5)
    text_dim = pipe.config.backbone.text_dim
    cond_emb, uncond_emb = torch.randn(1, 6, text_dim, generator=g), torch.randn(1, 6, text_dim, generator=g)
    # Stand in for a loaded umT5 (transformers is optional): embeddings come from the prompt cache.
    pipe.text = ("tokenizer", "encoder")
    pipe._prompt_cache = {"a red ball rolls": cond_emb, "": uncond_emb}
    ref = _reference(2)
    traj = preset_trajectory("tilt-up", FRAMES)
    scale, steps, seed = 3.0, 2, 7
    result = pipe.generate(ref, target_cameras(ref.cameras, traj), settings=SamplingSettings(steps=steps, guidance=scale),
                           seed=seed, prompt="a red ball rolls")  # fmt: skip
    assert result.info["guidance"]["applied"] is True

    model, ae = pipe.model, pipe.autoencoder
    ref_lat, plucker, x = _hand_inputs(ae, ref, traj, seed)
    sigmas = [1.0, 5 * 0.5 / (1 + 4 * 0.5), 0.0]
    with torch.no_grad():
        for i in range(steps):
            t = torch.tensor([1000.0 * sigmas[i]])
            vc = model(ref_lat, x, t, plucker=plucker, text_embeds=cond_emb, tap=False).velocity
            vu = model(ref_lat, x, t, plucker=plucker, text_embeds=uncond_emb, tap=False).velocity
            x = x + (sigmas[i + 1] - sigmas[i]) * (vu + scale * (vc - vu))
        expected = ((ae.decode(x)[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
    assert np.abs(result.frames.astype(int) - expected.astype(int)).max() <= 1

    same = pipe.generate(ref, target_cameras(ref.cameras, traj), settings=SamplingSettings(steps=1), prompt="")
    assert same.info["guidance"]["applied"] is False and "negative prompt" in same.info["guidance"]["note"]


@pytest.mark.slow
def test_tracks_from_the_head_at_the_chosen_step(pipe):
    ref = _reference(3)
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-right", FRAMES))
    queries = np.array([[0, 0, 10.5, 12.5], [1, 4, 20.0, 8.0], [0, 6, 30.0, 20.0], [0, 1, 5.0, 5.0]], np.float32)
    result = pipe.generate(ref, tgt, settings=SamplingSettings(steps=3), queries=queries, track_timestep=900)
    ts = result.tracks
    assert ts.tracks.shape == (2, FRAMES, 4, 2) and ts.visible.shape == (2, FRAMES, 4)
    assert ts.views == ["reference", "generated"] and ts.image_size == (H, W)
    # Frames snap to latent frames (0, 4, 8): 6 -> 8 (ties go later), 1 -> 0.
    assert ts.queries[:, 1].tolist() == [0, 4, 8, 0]
    for n, (v, f, x, y) in enumerate(ts.queries):
        assert np.allclose(ts.tracks[int(v), int(f), n], [x, y]) and ts.visible[int(v), int(f), n]
    info = result.info["tracks"]
    assert info["step"] == 1 and info["timestep"] == pytest.approx(1000 / 1.1, abs=1e-3) and info["query_frames_snapped"]
    assert np.isfinite(ts.tracks).all()


def test_pipeline_refuses_bad_shapes(pipe):
    ref = _reference()
    tgt = target_cameras(ref.cameras, preset_trajectory("arc-left", FRAMES))
    bad = PreparedReference(None, ref.frames[:8], 10.0, ref.cameras.select_frames(np.arange(8)), {})
    with pytest.raises(InputError, match="4k\\+1"):
        pipe.generate(bad, target_cameras(bad.cameras, preset_trajectory("arc-left", 8)))
    with pytest.raises(InputError, match="outside"):
        pipe.generate(ref, tgt, settings=SamplingSettings(steps=1), queries=np.array([[0, 0, 99.0, 1.0]]))


def test_model_dir_resolution(tmp_path, model_dir):
    assert resolve_model_dir(model_dir) == model_dir / "model"
    assert resolve_model_dir(model_dir / "model") == model_dir / "model"

    def refused(path, needle):
        with pytest.raises(InputError, match=needle) as err:
            resolve_model_dir(path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)

    refused(tmp_path / "nope", "no such")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "not an mvt4g model directory")
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    refused(tmp_path / "pipe", "diffusers pipeline")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel"}))
    refused(tmp_path / "other", "not an mvt4g model config")
    (tmp_path / "w.ckpt").write_bytes(b"x")
    refused(tmp_path / "w.ckpt", "mvt4g convert")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((model_dir / "model" / "config.json").read_text())
    refused(half, "no model.safetensors")


@pytest.mark.slow
def test_wan_vae_model_and_tiled_decoding():
    """The Wan-VAE code path (tiny-wanvae: 8x spatial, 16 channels) in memory via from_modules;
    forcing tiled decoding gives the same video when the frames fit in one tile."""
    from mvt4g.model.autoencoder import build_autoencoder

    torch.manual_seed(0)
    cfg = preset("tiny-wanvae")  # 64x64 pixels -> 8x8 latents -> 4x4 tokens, stride 16
    model, ae = MVT4GModel(cfg), build_autoencoder(cfg.autoencoder)
    frames, size = 5, 64
    rng = np.random.default_rng(0)
    K = Intrinsics.from_fov(60.0, size, size).K
    ref = PreparedReference(None, rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8), 8.0,
                            ViewCameras(size, size, K, np.tile(np.eye(4), (frames, 1, 1))), {})  # fmt: skip
    tgt = target_cameras(ref.cameras, preset_trajectory("translate-up", frames))
    plain = GeneratePipeline.from_modules(model, ae).generate(ref, tgt, settings=SamplingSettings(steps=2))
    tiled = GeneratePipeline.from_modules(model, ae, tiled_decode=True).generate(ref, tgt, settings=SamplingSettings(steps=2))
    assert plain.frames.shape == (frames, size, size, 3)
    assert plain.info["tiled_decode"] is False and tiled.info["tiled_decode"] is True
    assert np.abs(plain.frames.astype(int) - tiled.frames.astype(int)).max() <= 1
    with pytest.raises(InputError, match="stride 16"):
        GeneratePipeline.from_modules(model, ae).check_video_shape(5, 40, 64)
