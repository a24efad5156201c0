"""The memory and FLOP plan (mvt4g.model.plan, `mvt4g info --plan`) and benchmarks/gpu.py's smoke mode."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest
import torch
from helpers import assert_one_line_error

from mvt4g.errors import InputError
from mvt4g.model import device_fit as fit
from mvt4g.model import plan
from mvt4g.model.config import preset

ROOT = Path(__file__).resolve().parents[2]
TINY = plan.PlanShape(frames=9, height=32, width=32, queries=4)


def _forward_flops(config, shape, dtype=torch.float32) -> float:
    model = plan.build_model(config, dtype=dtype, checkpointing=False)

    def forward():
        data = plan.random_batch(config, shape, device="meta", dtype=dtype)
        with torch.no_grad():
            model(data["reference"], data["x0"], torch.full((1,), 500.0, device="meta", dtype=dtype),
                  plucker=data["plucker"], camera_pose=data.get("camera_pose"), tap=False)  # fmt: skip

    return plan.measure(forward, model)[0]


@pytest.mark.parametrize("camera", ["plucker", "recammaster"])
def test_flop_counter_on_meta_equals_the_analytic_dit_count(camera):
    config = preset("tiny")
    config.camera.mode = camera
    assert _forward_flops(config, TINY) == plan.dit_forward_flops_analytic(config, TINY)


@pytest.mark.slow
def test_checkpointing_adds_one_forward_of_every_checkpointed_block():
    config = preset("tiny")
    on = plan.train_stage(config, TINY, variant="diffusion", checkpointing=True)
    off = plan.train_stage(config, TINY, variant="diffusion", checkpointing=False)
    forward = plan.dit_forward_flops_analytic(config, TINY)
    config.backbone.num_layers = 0  # what runs outside the blocks
    outside = plan.dit_forward_flops_analytic(config, TINY)
    assert on.flops - off.flops == pytest.approx(forward - outside)
    # backward of the frozen layers computes input gradients only: between 1x and 2x the forward
    assert forward * 2 < off.flops < forward * 3


@pytest.mark.slow
def test_meta_peak_matches_the_same_step_on_real_cpu_tensors(one_thread):
    config = preset("tiny")
    for variant in ("diffusion", "full"):
        meta = plan.train_stage(config, TINY, variant=variant, checkpointing=True, dtype=torch.float32)
        model = plan.build_model(config, device="cpu", dtype=torch.float32, checkpointing=True)

        def step():
            data = plan.random_batch(config, TINY, device="cpu", dtype=torch.float32)
            plan.training_step(model, data, variant)

        flops, cpu_peak = plan.measure(step, model)
        assert flops == meta.flops
        assert cpu_peak == pytest.approx(meta.parts["step"], rel=0.25), variant


@pytest.mark.slow
def test_memory_grows_with_the_video_and_checkpointing_saves_it():
    config = preset("small")
    small = plan.PlanShape(frames=9, height=32, width=32, queries=4)
    bigger = plan.PlanShape(frames=17, height=64, width=64, queries=4)
    rows = {}
    for shape in (small, bigger):
        for ckpt in (True, False):
            rows[shape, ckpt] = plan.train_stage(config, shape, variant="diffusion", checkpointing=ckpt)
    for ckpt in (True, False):
        assert rows[bigger, ckpt].peak_bytes > rows[small, ckpt].peak_bytes
        assert rows[bigger, ckpt].flops > rows[small, ckpt].flops
    assert rows[bigger, True].peak_bytes < rows[bigger, False].peak_bytes
    parts = rows[small, True].parts
    assert rows[small, True].peak_bytes == parts["weights"] + parts["adam"] + parts["step"]
    assert parts["adam"] == 2 * parts["grads"] > 0


@pytest.mark.slow
def test_train_plan_has_every_variant_and_the_ratios():
    p = plan.train_plan(preset("tiny"), TINY)
    assert {(r["variant"], r["checkpointing"]) for r in p["rows"]} == {(v, c) for v in plan.VARIANTS for c in (True, False)}
    by = {(r["variant"], r["checkpointing"]): r for r in p["rows"]}
    ratio = p["ratios"]["checkpointing"]
    assert ratio["flops"] == by["full", True]["flops"] / by["diffusion", True]["flops"]
    assert ratio["memory"] == by["full", True]["peak_bytes"] / by["diffusion", True]["peak_bytes"]
    assert p["text_encoder"] is None  # tiny: the learned null text, no umT5
    json.dumps(p)


def test_generate_plan_stages_and_the_wan_vae():
    config = preset("tiny-wanvae")
    shape = plan.PlanShape(frames=9, height=64, width=64)
    p = plan.generate_plan(config, shape, steps=4)
    names = [s["name"] for s in p["stages"]]
    assert names == ["DiT sampling", "VAE decode"]
    dit = p["stages"][0]
    assert dit["flops"] == 4 * dit["parts"]["flops_per_step"]
    assert p["guidance"] is False  # no text encoder: nothing to guide on
    assert p["peak_bytes_resident"] >= p["peak_bytes_staged"]
    assert p["stages"][1]["flops"] > 0
    by = p["peak_bytes_by_offload"]
    assert p["offload"] == "none" and p["peak_bytes"] == by["none"] >= by["model"] >= by["sequential"]
    assert by["model"] == p["peak_bytes_staged"]


def _stage(name, weights, activations, streamed=None):
    parts = {"weights": weights} | ({} if streamed is None else {"streamed_weights": streamed})
    return plan.Stage(name, 0.0, weights + activations, parts)


def test_offload_peaks_price_the_placement():
    """none: DiT + VAE resident, the text encoder staged; model: the largest stage; sequential:
    the streamed weights of DiT and text encoder, the VAE staged (mvt4g.model.placement)."""
    stages = {"text_encoder": _stage("text", 10.0, 1.0, streamed=2.0), "dit": _stage("dit", 3.0, 4.0, streamed=0.5),
              "autoencoder": _stage("vae", 0.5, 5.0)}  # fmt: skip
    assert plan.offload_peak(stages, "none") == 3.0 + 0.5 + (10.0 + 1.0)
    assert plan.offload_peak(stages, "model") == 10.0 + 1.0
    assert plan.offload_peak(stages, "sequential") == 0.5 + 5.0
    no_text = {**stages, "text_encoder": None, "autoencoder": None}
    assert plan.offload_peak(no_text, "none") == plan.offload_peak(no_text, "model") == 7.0
    assert plan.offload_peak(no_text, "sequential") == 4.5
    with pytest.raises(InputError, match="--offload must be one of none, model, sequential"):
        plan.generate_plan(preset("tiny"), TINY, offload="cpu")


def _refusal(device_gib: float, mode: str = "none") -> str:
    by = {"none": 20 * plan.GIB, "model": 12 * plan.GIB, "sequential": 5 * plan.GIB}
    fake = {"shape": {"frames": 81, "height": 480, "width": 832}, "offload": mode, "peak_bytes": by[mode],
            "peak_bytes_by_offload": by, "peak_bytes_resident": 25 * plan.GIB}  # fmt: skip
    with pytest.raises(InputError) as err:
        fit.check_generate_fits(fake, device_gib * plan.GIB)
    return str(err.value)


def test_a_refusal_names_the_offload_modes_that_would_fit():
    fit.check_generate_fits({"shape": {}, "offload": "none", "peak_bytes": 20 * plan.GIB,
                              "peak_bytes_by_offload": {}, "peak_bytes_resident": 0}, 24 * plan.GIB)  # fmt: skip
    both = _refusal(16)  # 14.4 GiB usable
    assert "needs ~20.0 GiB on cuda with no offload" in both
    assert "--offload model (~12.0 GiB)" in both and "--offload sequential (~5.0 GiB)" in both
    only = _refusal(8)
    assert "--offload sequential" in only and "--offload model" not in only
    neither = _refusal(4)
    assert "--offload" not in neither.split("would fit:")[1] and "--device cpu" in neither
    chosen = _refusal(8, "model")
    assert "with --offload model," in chosen and "--offload sequential (~5.0 GiB)" in chosen


def test_umt5_stage_is_the_wan_text_encoder():
    text = plan.text_encoder_stage()
    assert 11e9 < text.parts["weights"] < 12e9  # ~5.7B parameters in bf16 (ReCamMaster's text encoder: ~11 GB)
    assert 4e12 < text.flops < 6e12


def test_bad_shapes_are_input_errors():
    config = preset("tiny")
    with pytest.raises(InputError, match="--frames must be 4k\\+1"):
        plan.tokens(config, plan.PlanShape(8, 32, 32))
    with pytest.raises(InputError, match="--size must be multiples"):
        plan.tokens(config, plan.PlanShape(9, 30, 32))


@pytest.mark.slow
def test_generate_refuses_what_does_not_fit_and_names_what_would():
    config = preset("tiny")
    shape = dict(frames=17, height=32, width=32, steps=2, guidance=False, device="cuda")
    p = fit.check_device_fits(config, **shape, dtype=torch.float32, device_bytes=1e12)
    need = p["peak_bytes"]
    fit.check_device_fits(config, **shape, dtype=torch.float32, device_bytes=need / fit.HEADROOM * 1.01)
    with pytest.raises(InputError) as err:
        fit.check_device_fits(config, **shape, dtype=torch.float32, device_bytes=need / fit.HEADROOM * 0.9)
    message = str(err.value)
    assert message.startswith("generating 17x32x32 needs ~")
    for option in ("--dtype bfloat16", "--frames ", "--size 16x16", "--device cpu"):
        assert option in message, (option, message)
    frames = int(message.split("--frames ")[1].split(",")[0])
    assert frames < 17 and (frames - 1) % 4 == 0
    # Tiny has no text encoder nor VAE: --offload model saves nothing, sequential the weights.
    by = p["peak_bytes_by_offload"]
    assert by["model"] == by["none"] > by["sequential"]
    assert "--offload model" not in message  # saves nothing here: never named
    assert ("--offload sequential" in message) == (by["sequential"] <= need * 0.9)
    between = (by["sequential"] + by["none"]) / 2 / fit.HEADROOM
    with pytest.raises(InputError, match="would fit: --offload sequential"):
        fit.check_device_fits(config, **shape, dtype=torch.float32, device_bytes=between)
    fit.check_device_fits(config, **shape, dtype=torch.float32, device_bytes=between, offload="sequential")


@pytest.mark.slow
def test_offload_peaks_at_wan_shapes_on_the_meta_device():
    """wan2.1-1.3b at the paper's 81x480x832 with umT5-XXL: each mode needs less than the last,
    every mode fits a 24 GB GPU's usable memory, and tiles cut the sequential mode's peak."""
    p = plan.generate_plan(preset("wan2.1-1.3b"), plan.PlanShape(81, 480, 832), offload="model", tiled=True)
    by = p["peak_bytes_by_offload"]
    assert p["peak_bytes"] == by["model"]
    assert p["peak_bytes_resident"] > by["none"] > by["model"] > by["sequential"]
    dit = next(s for s in p["stages"] if s["name"] == "DiT sampling")
    assert dit["parts"]["streamed_weights"] < dit["parts"]["weights"] / 10  # a block of 30, and the small modules
    assert by["none"] < fit.HEADROOM * 24e9
    # Whole frames, the float32 VAE decode sets the sequential peak; in tiles it is the DiT again.
    tiled = p["tiled"]["peak_bytes_by_offload"]
    assert tiled["sequential"] < by["sequential"] and tiled["sequential"] < by["model"] / 2
    assert tiled["none"] == by["none"]  # there the umT5 stage is the peak, not the decode


@pytest.mark.slow
def test_info_plan_cli(cli):
    result = cli("info", "--preset", "tiny", "--plan", "train", "--frames", "9", "--size", "32x32", "--json")
    assert result.code == 0, result.stderr
    p = json.loads(result.stdout)["plan"]
    assert p["plan"] == "train" and p["shape"]["frames"] == 9 and len(p["rows"]) == 6
    human = cli("info", "--preset", "tiny", "--plan", "generate", "--frames", "9", "--size", "32x32")
    assert human.code == 0 and "DiT sampling" in human.stderr and "peak per `generate --offload` mode" in human.stderr
    seq = cli("info", "--preset", "tiny", "--plan", "generate", "--frames", "9", "--size", "32x32", "--offload",
              "sequential", "--json")  # fmt: skip
    assert seq.code == 0 and json.loads(seq.stdout)["plan"]["offload"] == "sequential"
    assert_one_line_error(cli("info", "--preset", "tiny", "--plan", "generate", "--offload", "cpu"), "--offload", "'cpu'")
    assert_one_line_error(cli("info", "--preset", "tiny", "--plan", "train", "--offload", "model"), "--plan generate")
    assert_one_line_error(cli("info", "--preset", "tiny", "--plan", "infer"), "--plan must be train or generate")
    assert_one_line_error(cli("info", "--preset", "tiny", "--frames", "9"), "--plan")
    assert_one_line_error(cli("info", "--preset", "tiny", "--plan", "train", "--size", "33x32"), "--size")


def _gpu_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_benchmark_smoke_runs_on_cpu(one_thread):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert _gpu_benchmark().main(["--smoke", "--json"]) == 0
    result = json.loads(out.getvalue())
    cases = [r["case"] for r in result["rows"]]
    assert cases == ["train diffusion", "train full", "generate step", "generate step (offload model)",
                     "generate step (offload sequential)"]  # fmt: skip
    assert result["offload_model_copy_in_s"] >= 0
    assert all(r["seconds"] > 0 and r["peak_GiB"] > 0 and r["TFLOP"] > 0 for r in result["rows"])


def test_gpu_benchmark_without_cuda_says_so_in_one_line(monkeypatch):
    module = _gpu_benchmark()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert module.main([]) == 0
    assert len(out.getvalue().strip().splitlines()) == 1 and "CUDA is not available" in out.getvalue()


@pytest.mark.slow
def test_generate_on_cuda_refuses_what_cannot_fit_before_any_work(cli, monkeypatch, tmp_path):
    from types import SimpleNamespace

    import mvt4g.sample.pipeline as pipeline

    monkeypatch.setattr(pipeline, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=2**20))
    reference = tmp_path / "ref.mp4"
    reference.write_bytes(b"not read: the check comes first")
    out = tmp_path / "out.mp4"
    result = cli("generate", reference, "--traj", "arc-left", "--steps", "2", "--out", out)
    assert_one_line_error(result, "needs ~", "on cuda with no offload", "which has 0.0 GiB", "--device cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.mp4"]


# ---- the VAE decoding in tiles, planned up front ----------------------------------------------------
@pytest.mark.slow
def test_tiled_decode_peak_extrapolated_from_two_lengths_matches_a_full_measurement():
    """The plan measures a tiled decode at 5 and 9 latent frames and extrapolates; the full
    measurement at 13 latent frames (2x2 tiles, on the meta device) is the reference."""
    config = preset("tiny-wanvae")
    shape = plan.PlanShape(frames=49, height=256, width=384)
    whole = plan.vae_decode_stage(config, shape)
    tiled = plan.tiled_vae_decode_stage(config, shape, whole)
    vae = plan._meta_wan_vae(config)
    vae.enable_tiling()
    frames, h, w = plan.latent_grid(config, shape)
    assert (frames, h, w) == (13, 32, 48)
    measured = plan.peak_bytes(plan._decode_fn(vae, config, frames, h, w), vae)
    assert tiled.parts["decode"] == pytest.approx(measured, rel=0.05)
    assert tiled.parts["decode"] < whole.parts["decode"]  # what tiles are for
    # Tiles of 32 latent pixels every 24 cover rows (32 + 8) and columns (32 + 24) of 32 x 48.
    assert tiled.flops == pytest.approx(whole.flops * (40 * 56) / (32 * 48))


@pytest.mark.slow
def test_generation_decodes_in_tiles_when_whole_frames_do_not_fit():
    config = preset("tiny-wanvae")
    shape = dict(frames=49, height=256, width=384, steps=1, guidance=False, device="cuda", dtype=torch.float32)
    p = plan.generate_plan(config, plan.PlanShape(49, 256, 384), steps=1, guidance=False, dtype=torch.float32,
                           tiled=True)  # fmt: skip
    whole, tiles = p["peak_bytes_by_offload"]["sequential"], p["tiled"]["peak_bytes_by_offload"]["sequential"]
    assert tiles < whole
    roomy = fit.check_device_fits(config, **shape, offload="sequential", device_bytes=whole / fit.HEADROOM * 1.01)
    assert roomy["tiled_decode"] is False  # whole frames fit: no tiles
    between = (tiles + whole) / 2 / fit.HEADROOM
    chosen = fit.check_device_fits(config, **shape, offload="sequential", device_bytes=between)
    assert chosen["tiled_decode"] is True and chosen["peak_bytes"] == pytest.approx(tiles)
    assert [s["name"] for s in chosen["stages"]] == ["DiT sampling", "VAE decode (tiled)"]
    with pytest.raises(InputError, match="with --offload sequential and the VAE decoding in tiles"):
        fit.check_device_fits(config, **shape, offload="sequential", device_bytes=tiles / fit.HEADROOM * 0.9)
