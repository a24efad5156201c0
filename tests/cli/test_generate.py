"""`mvt4g generate` end to end: the README's command on a real video, batch names, partial
failure, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import assert_one_line_error

from mvt4g.io.video import probe_video, read_video, write_video

REPO = Path(__file__).resolve().parents[2]
BEAR = REPO.parent / "shared" / "data" / "real" / "bear.mp4"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("cli_model")
    save_pretrained(MVT4GModel(preset("tiny")), root / "tiny")  # 17 frames, 32x32, stride 4
    return root / "tiny"


def _noise_frames(frames: int, height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (frames, height, width, 3), dtype=np.uint8)


@pytest.fixture
def ref_video(tmp_path):
    return write_video(tmp_path / "walk.mp4", _noise_frames(21), fps=10)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.slow
def test_readme_command_on_a_real_video(model_dir, tmp_path):
    """Done-when: the README's command writes a playable mp4 of the model's length and size (the
    tiny preset's 17 frames at 32x32: both default to the model's), with its trajectory and
    metadata, in ./bear/."""
    if not BEAR.is_file():
        pytest.skip("../shared/data/real/bear.mp4 is not available")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mvt4g", "generate", str(BEAR), "--traj", "arc-left", "--model", str(model_dir),
           "--steps", "4", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    video = tmp_path / "bear" / "arc-left.mp4"
    assert report["items"][0]["outputs"]["video"] == "bear/arc-left.mp4" and report["failed"] == 0
    info = probe_video(video)
    assert (info.frames, info.height, info.width, info.fps) == (17, 32, 32, 30.0)
    assert read_video(video).frames.shape == (17, 32, 32, 3)  # decodes fully
    traj = json.loads((tmp_path / "bear" / "arc-left.trajectory.json").read_text())
    assert traj["frames"] == 17 and traj["name"] == "arc-left"
    meta = json.loads((tmp_path / "bear" / "arc-left.meta.json").read_text())
    assert meta["reference"]["frames"]["message"] == "trimmed 82 -> 17 frames (kept the first 17)"
    assert meta["sampling"]["steps"] == 4 and meta["sampling"]["sampler"] == "euler" and meta["sampling"]["seed"] == 0
    assert meta["model"]["name"] == "tiny" and set(meta["versions"]) >= {"mvt4g", "torch", "diffusers"}
    assert meta["guidance"]["applied"] is False
    assert "trimmed 82 -> 17" in proc.stderr


@pytest.mark.slow
def test_requested_size_and_out_names_one_file(cli, model_dir, ref_video, tmp_path):
    out = tmp_path / "one.mp4"
    r = cli("generate", ref_video, "--traj", "zoom-out", "--model", model_dir, "--steps", "2", "--out", out,
            "--side-by-side", "--seed", "9", "--frames", "13", "--size", "24x44")  # fmt: skip
    assert r.code == 0, r.stderr
    info = probe_video(out)
    assert (info.frames, info.height, info.width) == (13, 24, 44)
    assert probe_video(tmp_path / "one.side-by-side.mp4").width == 88
    meta = json.loads((tmp_path / "one.meta.json").read_text())
    assert meta["sampling"]["seed"] == 9 and meta["reference"]["frames"]["action"] == "trimmed"
    assert (tmp_path / "one.trajectory.json").is_file()
    # The same call again is refused (nothing overwritten) unless --overwrite.
    before = out.stat().st_mtime_ns
    r = cli("generate", ref_video, "--traj", "zoom-out", "--model", model_dir, "--steps", "2", "--out", out, "--frames", "13")
    assert_one_line_error(r, "exists")
    assert out.stat().st_mtime_ns == before
    r = cli("generate", ref_video, "--traj", "zoom-out", "--model", model_dir, "--steps", "1", "--out", out, "--overwrite",
            "--frames", "17")  # fmt: skip
    assert r.code == 0, r.stderr


@pytest.mark.slow
def test_batch_names_and_json(cli, model_dir, ref_video, tmp_path):
    folder = tmp_path / "frames_seq"
    folder.mkdir()
    for i, frame in enumerate(_noise_frames(17, seed=1)):
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame)
    out = tmp_path / "gen"
    r = cli("generate", ref_video, folder, "--traj", "arc-left,zoom-in", "--traj", "static", "--model", model_dir,
            "--steps", "1", "--out-dir", out, "--json", "--size", "32x40", "--frames", "17")  # fmt: skip
    assert r.code == 0, r.stderr
    report = r.json()
    expected = [out / ref / f"{t}.mp4" for ref in ("walk", "frames_seq") for t in ("arc-left", "zoom-in", "static")]
    assert [item["outputs"]["video"] for item in report["items"]] == [str(p) for p in expected]
    assert report["ok"] == 6 and report["failed"] == 0 and report["settings"]["size"] == [32, 40]
    for p in expected:
        assert probe_video(p).frames == 17
        assert p.with_suffix(".meta.json").is_file() and p.with_suffix(".trajectory.json").is_file()
    # The static trajectory keeps the camera; the noise that seeds every item is the same.
    static = json.loads((out / "walk" / "static.trajectory.json").read_text())
    assert np.allclose(np.array(static["c2w"]), np.eye(4))


def test_one_failed_item_does_not_stop_the_others(cli, model_dir, ref_video, tmp_path):
    broken = tmp_path / "broken_seq"
    broken.mkdir()
    for i, frame in enumerate(_noise_frames(17, seed=2)):
        cv2.imwrite(str(broken / f"{i:05d}.png"), frame)
    (broken / "00009.png").write_bytes(b"not a png at all")  # found only when the frames are decoded
    out = tmp_path / "gen"
    r = cli("generate", broken, ref_video, "--traj", "pan-left", "--model", model_dir, "--steps", "1",
            "--out-dir", out, "--json", "--frames", "17")  # fmt: skip
    assert r.code != 0
    report = r.json()
    assert [i["status"] for i in report["items"]] == ["failed", "ok"] and report["failed"] == 1
    assert "00009.png" in report["items"][0]["error"]
    assert probe_video(out / "walk" / "pan-left.mp4").frames == 17
    assert not (out / "broken_seq").exists()
    assert "1 of 2 items failed" in r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_tracks_and_overlay(cli, model_dir, ref_video, tmp_path):
    from mvt4g.tracks.format import read_tracks

    out = tmp_path / "t.mp4"
    r = cli("generate", ref_video, "--traj", "arc-right", "--model", model_dir, "--steps", "2", "--out", out,
            "--query-points", "grid:3x4", "--track-timestep", "0", "--frames", "17")  # fmt: skip
    assert r.code == 0, r.stderr
    tracks = read_tracks(tmp_path / "t.tracks.npz")
    assert tracks.tracks.shape == (2, 17, 12, 2) and tracks.views == ["reference", "generated"]
    assert tracks.image_size == (32, 32) and tracks.method == "mvt4g-tracking-head"
    overlay = probe_video(tmp_path / "t.tracks.mp4")
    assert (overlay.frames, overlay.height, overlay.width) == (17, 32, 64)
    meta = json.loads((tmp_path / "t.meta.json").read_text())
    assert meta["tracks"]["step"] == 1 and meta["tracks"]["points"] == 12


def test_resampled_trajectory_file_and_prompt_without_text_encoder(cli, model_dir, ref_video, tmp_path):
    from mvt4g.camera.trajectories import preset_trajectory
    from mvt4g.camera.trajectory_files import trajectory_json

    traj = tmp_path / "sweep.json"
    traj.write_text(json.dumps(trajectory_json("sweep", preset_trajectory("translate-left", 81))))
    r = cli("generate", ref_video, "--traj", traj, "--model", model_dir, "--steps", "1", "--out-dir", tmp_path / "g",
            "--prompt", "a walk in the park", "--frames", "17")  # fmt: skip
    assert r.code == 0, r.stderr
    assert "prompt is ignored" in r.stderr
    meta = json.loads((tmp_path / "g" / "walk" / "sweep.meta.json").read_text())
    assert meta["trajectory"]["note"] == "trajectory file has 81 poses: resampled to 17"
    assert meta["guidance"]["prompt"] == "a walk in the park" and "ignored" in meta["guidance"]["note"]


@pytest.mark.usefixtures("one_thread")
def test_offload_is_recorded_and_gives_the_same_video(cli, model_dir, ref_video, tmp_path):
    """--offload moves weights, not numbers: the same frames, the mode in --json and .meta.json."""
    videos = {}
    for mode in ("none", "sequential"):
        out = tmp_path / f"{mode}.mp4"
        r = cli("generate", ref_video, "--traj", "pan-left", "--model", model_dir, "--steps", "1", "--out", out,
                "--frames", "5", "--device", "cpu", "--offload", mode, "--json")  # fmt: skip
        assert r.code == 0, r.stderr
        assert r.json()["settings"]["offload"] == mode
        assert json.loads(out.with_suffix(".meta.json").read_text())["offload"] == mode
        videos[mode] = read_video(out).frames
    assert np.array_equal(videos["none"], videos["sequential"])


def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, model_dir, ref_video, tmp_path):
    out = tmp_path / "gen"
    base = ["generate", ref_video, "--model", model_dir, "--steps", "1", "--out-dir", out, "--frames", "17"]

    def check(args, *needles):
        assert_one_line_error(cli(*args), *needles)
        assert _listing(out) == [], _listing(out)

    check([*base, "--traj", "arc-lft"], "unknown trajectory preset 'arc-lft'", "arc-left", "zoom-in")
    check([*base, "--traj", "arc-left", "--size", "30x32"], "not divisible by the model's stride 4")
    check([*base, "--traj", "arc-left", "--frames", "16"], "4k+1")
    check([*base, "--traj", "arc-left", "--frames", "25"], "reference too short", "walk.mp4")
    check(["generate", ref_video, "--traj", "arc-left", "--model", model_dir, "--out-dir", out, "--frames", "81"],
          "fewer than the 81 requested")  # fmt: skip
    check([*base, "--traj", "arc-left", "--frames", "0"], "frames")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    check(["generate", ref_video, fake, "--traj", "arc-left", "--model", model_dir, "--out-dir", out, "--frames", "17"],
          "fake.mp4")  # fmt: skip
    empty = tmp_path / "empty_model"
    empty.mkdir()
    check(["generate", ref_video, "--traj", "arc-left", "--model", empty, "--out-dir", out], "not an mvt4g model directory")
    (tmp_path / "wan").mkdir()
    (tmp_path / "wan" / "model_index.json").write_text("{}")
    check(["generate", ref_video, "--traj", "arc-left", "--model", tmp_path / "wan", "--out-dir", out], "diffusers pipeline")
    check(["generate", ref_video, "--traj", "arc-left,zoom-in", "--model", model_dir, "--out", tmp_path / "x.mp4",
           "--frames", "17"], "--out names one video")  # fmt: skip
    check([*base, "--traj", "arc-left", "--out", tmp_path / "x.mp4"], "exactly one of --out")
    check(["generate", ref_video, "--traj", "arc-left", "--model", model_dir, "--out", "/proc/mvt4g-missing/x.mp4",
           "--frames", "17"], "cannot write in")  # fmt: skip
    check([*base, "--traj", "arc-left", "--query-points", "grid", "--track-timestep", "1200"], "track-timestep")
    bad_q = tmp_path / "q.txt"
    bad_q.write_text("0 0 99 1\n")
    check([*base, "--traj", "arc-left", "--query-points", bad_q], "outside the 32x32")
    check([*base, "--traj", "arc-left", "--device", "tpu"], "unknown device")
    check([*base, "--traj", "arc-left", "--offload", "cpu"], "--offload", "'cpu'", "none", "sequential")


@pytest.mark.slow
def test_an_item_that_fails_while_writing_leaves_no_partial_files(cli, model_dir, ref_video, tmp_path, monkeypatch):
    import mvt4g.io.video as video_io
    from mvt4g.errors import WorkFailed

    real_write = video_io.write_video

    def failing_write(path, *args, **kwargs):
        if Path(path).name == "tilt-up.mp4":  # the main video, written last
            raise WorkFailed("disk full (simulated)", path=path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(video_io, "write_video", failing_write)
    out = tmp_path / "gen"
    r = cli("generate", ref_video, "--traj", "tilt-up,tilt-down", "--model", model_dir, "--steps", "1", "--out-dir", out,
            "--frames", "17", "--side-by-side")  # fmt: skip
    assert r.code == 1, r.stderr
    assert "1 of 2 items failed" in r.stderr and "disk full" in r.stderr
    assert sorted(p.name for p in (out / "walk").iterdir()) == [
        ".mvt4g.lock",  # the batch's lock of its output folder (stays; an unlocked one means nothing)
        "tilt-down.meta.json", "tilt-down.mp4", "tilt-down.side-by-side.mp4", "tilt-down.trajectory.json",
    ]  # fmt: skip


@pytest.mark.slow
def test_target_cameras_generate_a_synth_view_that_eval_videos_scores(cli, model_dir, tmp_path):
    """generate cam02 of a synthetic scene from cam01 with cam02's exact cameras, then score it
    with `eval --videos`; the video is the one the Python API makes with the clip's cameras."""
    from mvt4g.camera.pose import relative_to
    from mvt4g.io.clip import read_clip
    from mvt4g.sample import GeneratePipeline, PreparedReference, SamplingSettings
    from mvt4g.synth import SynthSettings, synthesize

    [scene] = synthesize(SynthSettings(views=2, frames=5, height=16, width=16, points=8), tmp_path / "synth", 1)
    cams = scene / "cameras" / "cameras.json"
    gen = tmp_path / "gen"
    (gen / scene.name).mkdir(parents=True)
    video = gen / scene.name / "cam02.mp4"  # eval --videos layout: DIR/SEQUENCE/TRAJECTORY.mp4
    base = ["generate", scene / "videos" / "cam01.mp4", "--model", model_dir, "--steps", "1", "--frames", "5",
            "--size", "16x16", "--out", video]  # fmt: skip
    r = cli(*base, "--ref-cameras", f"{cams}:cam01", "--target-cameras", f"{cams}:cam02", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["items"][0]["trajectory"] == "cam02"
    assert set(r.json()["timings"]) == {"import_s", "load_s", "total_s"}
    clip = read_clip(scene)
    used = np.array(json.loads(video.with_suffix(".trajectory.json").read_text())["c2w"])
    np.testing.assert_allclose(used, relative_to(clip.cameras["cam02"].c2w, clip.cameras["cam01"].c2w[0]), atol=1e-9)
    meta = json.loads(video.with_suffix(".meta.json").read_text())
    assert meta["trajectory"]["source"] == f"{cams}:cam02" and "not re-based" in meta["trajectory"]["absolute"]

    # The Python API with the clip's own (absolute) cameras gives the same video.
    pipe = GeneratePipeline(model_dir, device="cpu")
    api = pipe.generate(PreparedReference.from_clip(clip, "cam01"), clip.cameras["cam02"],
                        settings=SamplingSettings(steps=1), seed=0).frames  # fmt: skip
    write_video(tmp_path / "api.mp4", api, fps=clip.fps)
    diff = np.abs(read_video(video).frames.astype(int) - read_video(tmp_path / "api.mp4").frames.astype(int))
    assert diff.max() <= 1, diff.max()

    s = cli("eval", "--bench", "synthetic", "--data-root", tmp_path / "synth", "--videos", gen, "--metrics", "psnr", "--json")
    assert s.code == 0, s.stderr
    [scored] = s.json()["videos"]
    assert (scored["sequence"], scored["trajectory"], scored["video"]) == (scene.name, "cam02", str(video))
    assert np.isfinite(s.json()["summary"]["overall"]["metrics"]["psnr"])

    # Bad input, one line each: no target, no reference world, an unknown view, --camera without --traj.
    assert_one_line_error(cli(*base), "--traj", "--target-cameras")
    assert_one_line_error(cli(*base, "--target-cameras", f"{cams}:cam02", "--overwrite"), "needs --ref-cameras")
    assert_one_line_error(cli(*base, "--ref-cameras", f"{cams}:cam01", "--target-cameras", f"{cams}:cam07", "--overwrite"),
                          "no view 'cam07'")  # fmt: skip
    assert_one_line_error(cli(*base, "--ref-cameras", f"{cams}:cam01", "--target-cameras", f"{cams}:cam02", "--camera",
                              "cam02", "--overwrite"), "--camera")  # fmt: skip


@pytest.mark.slow
def test_load_seconds_leave_out_the_diffusers_import(model_dir):
    """Importing the model code (diffusers) is timed apart from loading the model."""
    code = (
        "import sys, time\n"
        "from mvt4g.sample.pipeline import GeneratePipeline\n"
        "assert 'diffusers' not in sys.modules\n"
        f"t = time.perf_counter(); a = GeneratePipeline({str(model_dir)!r}, device='cpu'); wall = time.perf_counter() - t\n"
        f"b = GeneratePipeline({str(model_dir)!r}, device='cpu')\n"
        "print(a.import_seconds, a.load_seconds, wall, b.import_seconds)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    first_import, first_load, wall, second_import = map(float, out.stdout.split())
    assert first_import + first_load <= wall
    assert first_import > 10 * second_import and second_import < 0.05  # diffusers is imported once per process
