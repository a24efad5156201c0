"""Every example runs (with tiny settings) and produces what its docstring promises."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PIPELINE = EXAMPLES / "pipeline.sh"
# The smallest job the tiny preset takes: 2 scenes (one trained on, one held out) of 2 views x
# 5 frames at 16x16, a few training and denoising steps.
TINY = {"SCENES": "2", "VIEWS": "2", "FRAMES": "5", "SIZE": "16x16", "POINTS": "32", "STEPS": "3", "GEN_STEPS": "1"}


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_cameras_and_rays_example(tmp_path):
    result = run_example("cameras_and_rays.py", str(tmp_path))
    assert "arc-left: 81 frames, turned 30.0 deg" in result.stdout
    rays = np.load(tmp_path / "arc_left_rays.npy")
    assert rays.shape == (21, 6, 240, 416)
    assert (tmp_path / "arc_left.png").stat().st_size > 10_000


# ---- examples/pipeline.sh -------------------------------------------------------------------


def pipeline_env(out: Path, **settings: str) -> dict[str, str]:
    """This interpreter's mvt4g first on PATH, one thread per process, TINY settings."""
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(TINY)
    env.update(settings)
    return env


def run_pipeline(cwd: Path, out: Path, **settings: str) -> subprocess.CompletedProcess:
    # cwd is not the repository: the default CONFIG is the packaged example config `tiny`, found by name.
    return subprocess.run(["bash", str(PIPELINE)], cwd=cwd, env=pipeline_env(out, **settings),
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip


def log(out: Path, step: str) -> dict:
    return json.loads((out / "logs" / f"{step}.json").read_text())


def mtimes(out: Path) -> dict[str, int]:
    """Modification times of every output except the per-run logs and the run lock (it holds the pid of its last user)."""
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.is_file() and "logs" not in p.parts and p.name != ".mvt4g.lock"
    }


@pytest.mark.slow
def test_pipeline_runs_reuses_work_and_resumes_after_sigterm(tmp_path):
    out = tmp_path / "out"
    first = run_pipeline(tmp_path, out)
    assert first.returncode == 0, first.stderr

    # Every step's promised outputs.
    train_clip, held_out = out / "synth" / "scene_0000", out / "synth" / "scene_0001"
    for clip in (train_clip, held_out):
        for view in ("cam01", "cam02"):
            assert (clip / "videos" / f"{view}.mp4").is_file()
            assert (clip / "plucker" / f"{view}.safetensors").is_file()
        assert (clip / "tracks.npz").is_file()
    assert (out / "run" / "model" / "model.safetensors").is_file()
    assert (out / "run" / "checkpoints" / "step_000003").is_dir()
    for suffix in (".mp4", ".side-by-side.mp4", ".trajectory.json", ".meta.json"):
        assert (out / "generate" / "cam01" / f"arc-left{suffix}").is_file()
    assert (out / "eval" / "report.md").is_file()

    # Values passed between steps: train saw only the first scene, eval scored the held-out one.
    assert "scene_0000" in (out / "logs" / "train.args").read_text()
    assert "scene_0001" not in (out / "logs" / "train.args").read_text()
    assert log(out, "train")["model_dir"] == str(out / "run" / "model")
    assert log(out, "generate")["items"][0]["reference"] == str(held_out / "videos" / "cam01.mp4")
    scored = log(out, "eval")["videos"]
    assert [(v["sequence"], v["trajectory"]) for v in scored] == [("scene_0001", "cam02")]
    assert Path(scored[0]["video"]).is_file()
    psnr = log(out, "eval")["summary"]["overall"]["metrics"]["psnr"]
    assert isinstance(psnr, float) and math.isfinite(psnr) and psnr > 0
    assert f"eval: psnr = {psnr}" in first.stdout
    assert f"generated: {out}/generate/cam01/arc-left.mp4" in first.stdout

    # The same settings again: nothing is redone. `train --resume` rewrites the run's config.toml
    # and metrics.jsonl (with the same content); no other output file is touched.
    rewritten = ("run/config.toml", "run/metrics.jsonl")
    before, contents = mtimes(out), [(out / name).read_bytes() for name in rewritten]
    second = run_pipeline(tmp_path, out)
    assert second.returncode == 0, second.stderr
    after = mtimes(out)
    assert [(out / name).read_bytes() for name in rewritten] == contents
    assert {k: v for k, v in after.items() if k not in rewritten} == {
        k: v for k, v in before.items() if k not in rewritten
    }
    for step in ("generate", "eval"):
        assert f"step {step}: reusing" in second.stderr
    assert log(out, "synth")["skipped"] == log(out, "synth")["scenes"] == [str(train_clip), str(held_out)]
    assert "pipeline: synth: 2 scenes, 2 kept from an earlier run" in second.stderr
    assert {o["status"] for o in log(out, "plucker")["outputs"]} == {"current"}
    assert {c["status"] for c in log(out, "tracks")["clips"]} == {"exact"}
    assert log(out, "prepare")["computed"] == 0
    assert (log(out, "train")["start_step"], log(out, "train")["step"]) == (3, 3)
    assert second.stdout == first.stdout

    # Longer training, stopped by SIGTERM to the process group (what a scheduler sends).
    metrics = out / "run" / "metrics.jsonl"
    logged = len(metrics.read_text().splitlines())
    proc = subprocess.Popen(["bash", str(PIPELINE)], cwd=tmp_path, env=pipeline_env(out, STEPS="1000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(metrics.read_text().splitlines()) == logged and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]  # still training when the signal comes
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, stderr
    assert "step 'train' was interrupted (exit 143)" in stderr
    assert not (out / "logs" / "train.json").exists()  # a stopped step leaves no finished-looking log
    saved = max(int(p.name.removeprefix("step_")) for p in (out / "run" / "checkpoints").glob("step_*"))
    assert saved > 3

    # Rerun: train resumes from that checkpoint; the new weights make generate and eval run again.
    third = run_pipeline(tmp_path, out, STEPS=str(saved))
    assert third.returncode == 0, third.stderr
    train = log(out, "train")
    assert train["resumed_from"] == str(out / "run" / "checkpoints" / f"step_{saved:06d}")
    assert train["step"] == saved
    assert "step generate: mvt4g generate" in third.stderr and "step eval: mvt4g eval" in third.stderr
    assert math.isfinite(log(out, "eval")["summary"]["overall"]["metrics"]["psnr"])


@pytest.mark.slow
def test_pipeline_bad_input_exits_2_naming_the_step(tmp_path):
    bad_size = run_pipeline(tmp_path, tmp_path / "a", SIZE="abc")
    assert bad_size.returncode == 2
    assert "step 'synth' failed (exit 2)" in bad_size.stderr
    assert "size must be HxW" in bad_size.stderr
    assert not (tmp_path / "a" / "logs" / "synth.json").exists()

    too_few = run_pipeline(tmp_path, tmp_path / "b", SCENES="1")
    assert too_few.returncode == 2
    assert "SCENES must be a whole number >= 2" in too_few.stderr
    assert not (tmp_path / "b").exists()

    # Checked before any work: a scheduler learns at once, not after the scenes are rendered.
    missing = tmp_path / "missing.toml"
    no_config = run_pipeline(tmp_path, tmp_path / "c", CONFIG=str(missing))
    assert no_config.returncode == 2
    assert f"CONFIG: no such training config: {missing} (a TOML file, or an example config by name: base, " in no_config.stderr
    assert not (tmp_path / "c").exists()


# ---- examples/python_api.py -----------------------------------------------------------------


def psnr_float64(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.slow
def test_python_api_example(tmp_path):
    from mvt4g.io import read_video

    out = tmp_path / "api"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / "python_api.py"), "--out", str(out), "--scenes", "3", "--steps", "4"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == [
        "synth", "tracks", "tracks", "plucker", "train", "generate", "psnr generated vs target", "psnr reference vs target",
    ]  # fmt: skip
    assert "3 scenes of 2 views x 5 frames at 16x16" in lines[0]
    delta = float(re.search(r"delta_avg ([0-9.]+)", lines[2]).group(1))
    assert 0.0 <= delta <= 1.0
    assert "plucker: 6 maps, e.g. cam02 [2, 6, 16, 16]" in lines[3]
    assert "train: 4 steps" in lines[4]

    generated = read_video(out / "generated.mp4").frames
    assert generated.shape == (5, 16, 16, 3)
    assert (out / "run" / "model" / "model.safetensors").is_file()
    gen_psnr = float(re.search(r"target: (\S+) dB", lines[6]).group(1))
    copy_psnr = float(re.search(r"target: (\S+) dB", lines[7]).group(1))
    assert math.isfinite(gen_psnr) and gen_psnr > 0
    # The copy baseline, recomputed here in float64 from the held-out clip's two videos.
    held_out = out / "synth" / "scene_0002" / "videos"
    expected = psnr_float64(read_video(held_out / "cam01.mp4").frames, read_video(held_out / "cam02.mp4").frames)
    assert copy_psnr == pytest.approx(expected, abs=0.006)


@pytest.mark.slow
def test_small_training_config_trains(cli, tmp_path, monkeypatch):
    """The example config `small` as written (preset, losses, groups, optimiser), on tiny clips for 2 steps,
    found by name from a directory that is not the repository.

    (`tiny` runs in the README test; `wan2.1-1.3b` needs a local Wan directory and GPUs, so
    tests/test_train_config.py only validates it.)
    """
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    synthesize(SynthSettings(views=2, frames=5, height=16, width=16, points=32), tmp_path / "synth", 2)
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--config", "small", "--data", str(tmp_path / "synth"),
                 "--out", str(tmp_path / "run"), "--steps", "2", "--set", "data.frames=5", "--set", "data.height=16",
                 "--set", "data.width=16", "--set", "train.batch_size=1", "--set", "train.threads=1", "--json")  # fmt: skip
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["step"] == 2
    assert summary["final"]["track"] > 0 and summary["final"]["corr"] > 0  # the method's losses are on
    assert (tmp_path / "run" / "model" / "config.json").is_file()


# ---- examples/tiny_wan.py -------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_wan_writes_the_full_scale_inputs_in_their_formats(tmp_path):
    from mvt4g.io.clip import find_clips, read_clip
    from mvt4g.model.convert import read_checkpoint

    out = tmp_path / "rehearsal"
    run_example("tiny_wan.py", str(out))
    base = out / "Wan2.1-T2V-tiny-Diffusers"
    for folder in ("transformer", "vae", "text_encoder", "tokenizer"):
        assert (base / folder).is_dir(), folder
    state = read_checkpoint(out / "recammaster.ckpt")
    assert "blocks.0.cam_encoder.weight" in state and "blocks.0.self_attn.q.weight" in state
    clips = [read_clip(p) for p in find_clips(out / "MultiCamVideo-Dataset" / "train")]
    assert [c.caption for c in clips] == ["a red cube and a blue ball on grass", "a green box moving in snow"]
    assert all(c.caption_source == out / "MultiCamVideo-Dataset" / "metadata.csv" for c in clips)
    assert all((c.root / "cameras" / "camera_extrinsics.json").is_file() and c.tracks_path.is_file() for c in clips)
    assert str((out / "models" / "recammaster").resolve()) in (out / "finetune.toml").read_text()
    again = subprocess.run([sys.executable, str(EXAMPLES / "tiny_wan.py"), str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
