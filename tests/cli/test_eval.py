"""`mvt4g eval` end to end: --videos on tiny DAVIS, DyCheck and synthetic layouts, --model with a tiny model,
the JSON shape, learned metrics with user weights, and bad inputs (one line, exit 2).

Values are checked against independent references: scikit-image PSNR/SSIM, float64 numpy
formulas, the float64 LPIPS of tests/test_eval_learned.py, exact renders (rotation homographies
of a real DAVIS frame, ray-cast scenes along presets) with known cameras.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import assert_one_line_error
from helpers.eval_data import DY_H, DY_W, bear_frames, write_davis, write_dycheck
from helpers.lpips import reference_lpips, save_tiny_weights
from helpers.scene import render_preset, render_video
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mvt4g.camera import preset_trajectory
from mvt4g.io.video import read_video, write_video
from mvt4g.sample.reference import ReferenceOptions, source_intrinsics

REPO = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One 3-view synth clip (5 frames, 48x64) and a videos folder: cam02 = the exact target render,
    cam03 = the reference copied, plus an extra video and a generate companion file."""
    from mvt4g.synth import SynthSettings, synthesize_one

    root = tmp_path_factory.mktemp("eval_synth")
    (root / "clips").mkdir()
    clip = synthesize_one(SynthSettings(views=3, frames=5, height=48, width=64, points=64, seed=3), 0, root / "clips")
    vids = root / "vids" / clip.name
    vids.mkdir(parents=True)
    shutil.copy(clip / "videos" / "cam02.mp4", vids / "cam02.mp4")
    shutil.copy(clip / "videos" / "cam01.mp4", vids / "cam03.mp4")
    shutil.copy(clip / "videos" / "cam01.mp4", vids / "cam02.side-by-side.mp4")  # ignored companion
    shutil.copy(clip / "videos" / "cam01.mp4", vids / "other.mp4")  # extra
    return root, clip


def _psnr_mean(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        return float(np.mean([peak_signal_noise_ratio(y, x, data_range=255) for x, y in zip(a, b)]))


def _ssim_mean(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                data_range=255, channel_axis=-1) for x, y in zip(a, b)]))  # fmt: skip


def test_synthetic_exact_target_scores_perfectly_and_reference_copy_worse(cli, synth):
    root, clip = synth
    r = cli("eval", "--bench", "synthetic", "--data-root", root / "clips", "--videos", root / "vids",
            "--metrics", "psnr,ssim,flicker,lpips", "--json")  # fmt: skip
    assert r.code == 0, r.stderr
    assert "Infinity" not in r.stdout and "NaN" not in r.stdout
    data = r.json()
    assert list(data) == ["bench", "settings", "videos", "summary", "skipped"] and data["bench"] == "synthetic"
    exact, copy = data["videos"]
    assert (exact["sequence"], exact["trajectory"], copy["trajectory"]) == (clip.name, "cam02", "cam03")
    assert exact["metrics"]["psnr"] == "inf" and exact["metrics"]["ssim"] == 1.0
    gt = read_video(clip / "videos" / "cam03.mp4").frames
    ref = read_video(clip / "videos" / "cam01.mp4").frames
    assert copy["metrics"]["psnr"] == pytest.approx(_psnr_mean(ref, gt), rel=1e-9) and copy["metrics"]["psnr"] < 30
    assert copy["metrics"]["ssim"] == pytest.approx(_ssim_mean(ref, gt), abs=1e-9) and copy["metrics"]["ssim"] < 0.9
    diffs = np.abs(np.diff(ref.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    assert copy["metrics"]["temporal_flickering"] == pytest.approx((255 - diffs.mean()) / 255, rel=1e-12)
    for video in data["videos"]:
        assert set(video["metrics"]) == {"psnr", "ssim", "temporal_flickering"}  # absent, never null
        assert video["frames"] == 5 and video["size"] == [48, 64]
    assert data["summary"]["overall"]["metrics"]["psnr"] == "inf" and data["summary"]["overall"]["videos"] == 2
    assert data["skipped"]["metrics"] == {"lpips": "needs alexnet-owt-7be5be79.pth (no --weights-dir given)"}
    assert data["skipped"]["extra_videos"] == [str(root / "vids" / clip.name / "other.mp4")]
    info = data["settings"]["metrics"]
    assert set(info) == {"psnr", "ssim", "temporal_flickering", "lpips"}
    assert all(entry["source"] and entry["settings"] for entry in info.values())
    assert "11x11 sigma 1.5" in info["ssim"]["settings"] and "VBench" in info["temporal_flickering"]["source"]
    assert "extra video, not part of the benchmark" in r.stderr


def test_learned_lpips_with_user_weights_and_rejected_weights(cli, synth, tmp_path):
    root, clip = synth
    good = tmp_path / "good"
    good.mkdir()
    alex, lins = save_tiny_weights(good)
    args = ["eval", "--bench", "synthetic", "--data-root", root / "clips", "--videos", root / "vids", "--json"]
    r = cli(*args, "--metrics", "psnr,lpips,met3r", "--weights-dir", good)
    assert r.code == 0, r.stderr
    exact, copy = r.json()["videos"]
    assert exact["metrics"]["lpips"] == 0.0
    ref = read_video(clip / "videos" / "cam01.mp4").frames
    gt = read_video(clip / "videos" / "cam03.mp4").frames
    want = np.mean([reference_lpips(alex, lins, a, b) for a, b in zip(ref, gt)])
    assert copy["metrics"]["lpips"] == pytest.approx(want, rel=1e-4) and want > 0
    assert r.json()["skipped"]["metrics"]["met3r"].startswith(f"needs MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric.pth in {good}")

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "alexnet-owt-7be5be79.pth").write_text("not a checkpoint")
    shutil.copy(good / "lpips_alex_v0.1.pth", bad)
    r = cli(*args, "--metrics", "psnr,lpips", "--weights-dir", bad)
    assert r.code == 0
    assert "lpips" not in r.json()["videos"][0]["metrics"]
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: lpips skipped")]
    assert len(warnings) == 1 and "weights rejected" in warnings[0] and "alexnet-owt-7be5be79.pth" in warnings[0]
    only = cli("-q", *args[:-1], "--metrics", "lpips", "--weights-dir", bad)
    assert_one_line_error(only, "nothing could be scored: no requested metric applies (lpips: weights rejected")


# ----------------------------------------------------------------------------- DAVIS


@pytest.fixture(scope="module")
def rendered_davis(tmp_path_factory):
    """A DAVIS-layout sequence filmed by a static camera (a ray-cast scene with a rising box) and
    'generated' videos: the same scene rendered along arc-left, stored as arc-left and as arc-right."""
    root = tmp_path_factory.mktemp("eval_render")
    T, H, W = 13, 192, 320
    still, _ = render_video(np.tile(np.eye(4), (T, 1, 1)), H, W, moving=True)
    arc, _, _ = render_preset("arc-left", T, height=H, width=W, moving=True)
    write_davis(root / "DAVIS", {"scene": still})
    vids = root / "vids" / "scene"
    vids.mkdir(parents=True)
    write_video(vids / "arc-left.mp4", arc, fps=30)
    write_video(vids / "arc-right.mp4", arc, fps=30)
    return root


@pytest.mark.slow
def test_davis_video_along_arc_left_scores_well_against_arc_left_only(cli, rendered_davis):
    root = rendered_davis
    report, table = root / "davis.md", root / "davis.csv"
    r = cli("eval", "--bench", "davis", "--data-root", root / "DAVIS", "--videos", root / "vids", "--fov", "60",
            "--traj", "arc-left,arc-right,pan-right", "--camera-metric", "mean", "--csv", table, "--report", report,
            "--overwrite")  # fmt: skip
    assert r.code == 0, r.stderr
    assert "scene/pan-right not scored: no video scene/pan-right.mp4" in r.stderr
    assert "mvt4g eval davis" in r.stderr and "mean of 2" in r.stderr, r.stderr  # the rich table
    rows = {row["trajectory"]: row for row in csv.DictReader(table.open()) if row["level"] == "video"}
    good, wrong = rows["arc-left"], rows["arc-right"]
    assert float(good["rot_err"]) < 1.0 and float(wrong["rot_err"]) > 15.0
    assert float(good["trans_err"]) < 0.05 and float(wrong["trans_err"]) > 0.3
    assert float(good["epipolar_error"]) < 1.0 and float(wrong["epipolar_error"]) > 2.0
    assert float(good["track_consistency"]) > 0.9 and float(wrong["track_consistency"]) < 0.8
    assert "psnr" not in rows["arc-left"]  # no ground truth on DAVIS
    text = report.read_text()
    assert "Table 1 (DAVIS)" in text and "| this run |" in text
    assert "Subject Consistency: needs dino_vitbase16_pretrain.pth (no --weights-dir given)" in text
    assert "- video scene/pan-right: no video scene/pan-right.mp4" in text
    assert "camera metrics: `mean` convention (mvt4g's own" in text and "poses by `builtin`" in text
    assert "| scene | arc-left | converged, 13/13 frames |" in text

    # camctrl, the default, sums radians over frames: the same per-frame angles as the mean in degrees.
    r2 = cli("eval", "--bench", "davis", "--data-root", root / "DAVIS", "--videos", root / "vids", "--fov", "60",
             "--traj", "arc-right", "--metrics", "camera", "--json")  # fmt: skip
    camctrl = r2.json()["videos"][0]
    assert camctrl["details"]["camera"]["convention"] == "camctrl" and camctrl["details"]["camera"]["rot_unit"] == "rad"
    assert camctrl["metrics"]["rot_err"] == pytest.approx(np.radians(float(wrong["rot_err"])) * 12, rel=1e-6)


def _rotation_render(frame: np.ndarray, name: str, frames: int) -> np.ndarray:
    """What a camera turning in place along preset ``name`` sees of a distant ``frame`` (exact homographies)."""
    H, W = frame.shape[:2]
    K = source_intrinsics(W, H, ReferenceOptions(frames=1, height=1, width=1))[0].K  # the benchmark's default lens
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])  # mvt4g pixel centres vs OpenCV's
    out = []
    for pose in preset_trajectory(name, frames):
        Hm = shift @ K @ pose[:3, :3].T @ np.linalg.inv(K) @ np.linalg.inv(shift)
        out.append(cv2.warpPerspective(frame, Hm, (W, H), flags=cv2.INTER_LINEAR))
    return np.stack(out)


@pytest.mark.slow
def test_davis_real_frames_pan_renders_and_size_policy(cli, tmp_path, shared_data):
    T, H, W = 9, 144, 256
    frame = bear_frames(shared_data, 1, H, W)[0]
    write_davis(tmp_path / "DAVIS", {"bear": np.repeat(frame[None], T, axis=0)})
    vids = tmp_path / "vids" / "bear"
    vids.mkdir(parents=True)
    pan = _rotation_render(frame, "pan-right", T)
    big = np.stack([cv2.resize(f, (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR) for f in pan])
    write_video(vids / "pan-right.mp4", big, fps=30)  # twice the size, same aspect: resized
    write_video(vids / "pan-left.mp4", pan, fps=30)  # the wrong direction
    write_video(vids / "tilt-up.mp4", _rotation_render(frame, "tilt-up", T)[:, :, :H], fps=30)  # square: refused
    r = cli("eval", "--bench", "davis", "--data-root", tmp_path / "DAVIS", "--videos", tmp_path / "vids",
            "--traj", "pan-right,pan-left,tilt-up", "--metrics", "camera,epipolar", "--camera-metric", "mean",
            "--json")  # fmt: skip
    assert r.code == 0, r.stderr
    data = r.json()
    right, left = data["videos"]
    assert right["notes"][-1] == f"video resized from {2 * W}x{2 * H} to {W}x{H} (area)"
    assert right["metrics"]["rot_err"] < 0.5 and left["metrics"]["rot_err"] > 10
    assert right["metrics"]["epipolar_error"] < 1.0 and left["metrics"]["epipolar_error"] > 20
    assert right["details"]["epipolar"]["models"] == ["homography"] and right["details"]["pose"]["mode"] == "rotation-only"
    [refused] = data["skipped"]["videos"]
    assert refused["trajectory"] == "tilt-up" and "aspect ratios differ; pass --size 144x144" in refused["reason"]
    assert "bear/tilt-up not scored" in r.stderr


# ----------------------------------------------------------------------------- iPhone


def test_iphone_pixel_metrics_masks_and_missing_items(cli, tmp_path, shared_data):
    frames = write_dycheck(tmp_path / "iphone" / "teddy", shared_data)
    vids = tmp_path / "vids" / "teddy"
    vids.mkdir(parents=True)
    rng = np.random.default_rng(0)
    noisy = np.clip(frames[1][:4].astype(int) + rng.integers(-20, 21, frames[1][:4].shape), 0, 255).astype(np.uint8)
    write_video(vids / "cam1.mp4", noisy, fps=30)  # camera 1's run is times 0..3
    r = cli("eval", "--bench", "iphone", "--data-root", tmp_path / "iphone", "--videos", tmp_path / "vids",
            "--metrics", "psnr,ssim,masked_psnr,masked_ssim", "--json", "--report", tmp_path / "r.md")  # fmt: skip
    assert r.code == 0, r.stderr
    data = r.json()
    [video] = data["videos"]
    gen = read_video(vids / "cam1.mp4").frames
    gt = frames[1][:4]
    assert video["metrics"]["psnr"] == pytest.approx(_psnr_mean(gen, gt), rel=1e-9)
    assert video["metrics"]["ssim"] == pytest.approx(_ssim_mean(gen, gt), abs=1e-9)
    top = np.s_[:, : DY_H // 2]  # the covisible half
    mse = ((gen[top].astype(np.float64) - gt[top]) ** 2).reshape(4, -1).mean(axis=1)
    assert video["metrics"]["masked_psnr"] == pytest.approx(np.mean(10 * np.log10(255**2 / mse)), rel=1e-9)
    assert "masked_ssim" in video["metrics"]
    assert data["skipped"]["videos"] == [{"sequence": "teddy", "trajectory": "cam2",
                                          "reason": f"no video teddy/cam2.mp4 in {tmp_path / 'vids'}"}]  # fmt: skip
    assert "Table 2 (iPhone)" in (tmp_path / "r.md").read_text()

    # Scored at half size: ground truth and masks are resized, and so is the video (same aspect).
    r = cli("eval", "--bench", "iphone", "--data-root", tmp_path / "iphone", "--videos", tmp_path / "vids",
            "--metrics", "psnr", "--size", f"{DY_H // 2}x{DY_W // 2}", "--json")  # fmt: skip
    [half] = r.json()["videos"]
    assert half["size"] == [DY_H // 2, DY_W // 2]
    assert any("cover-resized" in n for n in half["notes"]) and "video resized" in half["notes"][-1]


# ----------------------------------------------------------------------------- --model


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    run = tmp_path_factory.mktemp("eval_model") / "run"
    run.mkdir()
    torch.manual_seed(0)
    save_pretrained(MVT4GModel(preset("tiny")), run / "model")  # random weights: the run-dir layout of mvt4g train
    return run


@pytest.fixture
def one_torch_thread():
    """The tiny model runs fastest on one thread (and the CPUs are shared); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_model_mode_generates_scores_and_saves(cli, tmp_path, tiny_run, one_torch_thread):
    from mvt4g.synth import SynthSettings, synthesize_one

    (tmp_path / "clips").mkdir()
    clip = synthesize_one(SynthSettings(views=2, frames=9, height=32, width=32, points=16, seed=1), 0, tmp_path / "clips")
    args = ["eval", "--bench", "synthetic", "--data-root", tmp_path / "clips", "--model", tiny_run, "--steps", "2",
            "--device", "cpu", "--metrics", "psnr,ssim,temporal_flickering"]  # fmt: skip
    r = cli(*args, "--frames", "9", "--save-videos", tmp_path / "gen", "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    source = data["settings"]["source"]
    assert source["kind"] == "model" and source["steps"] == 2 and source["device"] == "cpu"
    assert data["settings"]["frames"] == 9 and data["settings"]["size"] == [32, 32]
    [video] = data["videos"]
    saved = tmp_path / "gen" / clip.name / "cam02.mp4"
    assert video["video"] == str(saved) and read_video(saved).frames.shape == (9, 32, 32, 3)
    assert 0 < video["metrics"]["psnr"] < 60 and -1 <= video["metrics"]["ssim"] <= 1
    assert any("generated in" in n for n in video["notes"])
    # The metrics are those of the saved file: --videos on it scores the very same frames.
    assert source["rescore"] == f"--videos {tmp_path / 'gen'} --size 32x32 --frames 9"
    rescored = cli("eval", "--bench", "synthetic", "--data-root", tmp_path / "clips", "--videos", tmp_path / "gen",
                   "--metrics", "psnr,ssim,temporal_flickering", "--json")  # fmt: skip
    assert rescored.code == 0, rescored.stderr
    [again_video] = rescored.json()["videos"]
    for name, value in video["metrics"].items():
        assert again_video["metrics"][name] == pytest.approx(value, abs=1e-9), name
    # Saved videos are not overwritten unasked; checked before any work.
    again = cli(*args, "--frames", "9", "--save-videos", tmp_path / "gen")
    assert_one_line_error(again, "cam02.mp4: output exists (pass --overwrite to replace it)")
    # The model's default length (17 frames) is longer than the clip: nothing to score, exit 2.
    short = cli(*args)
    assert short.code == 2 and "needs 17 frames but the reference has 9" in short.stderr.splitlines()[-1]


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_one_line_exit_2(cli, synth, tmp_path):
    root, clip = synth
    base = ["eval", "--bench", "synthetic", "--data-root", root / "clips"]
    assert_one_line_error(cli(*base), "give exactly one of --model")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--model", root), "give exactly one of --model")
    assert_one_line_error(cli(*base, "--videos", tmp_path / "nope"), "--videos: no such folder")
    assert_one_line_error(cli("eval", "--bench", "davis", "--data-root", root / "clips", "--videos", root / "vids"),
                          "JPEGImages/480p is missing")  # fmt: skip
    assert_one_line_error(cli("eval", "--bench", "iphone", "--data-root", root / "clips", "--videos", root / "vids"),
                          "no DyCheck sequence here")  # fmt: skip
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--metrics", "psnr,fid"), "unknown metric 'fid'")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--sequences", "x"), "no clip 'x'")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--weights-dir", tmp_path / "w"), "--weights-dir: no such folder")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--csv", "/proc/mvt4g-no/a.csv"), "cannot write in")
    (tmp_path / "r.md").write_text("old")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--report", tmp_path / "r.md"), "r.md")
    assert (tmp_path / "r.md").read_text() == "old"
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--save-videos", tmp_path), "--save-videos needs --model")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--offload", "model"), "--offload", "needs --model")
    assert_one_line_error(cli(*base, "--videos", root / "vids", "--offload", "disk"), "--offload", "'disk'")
    (tmp_path / "empty").mkdir()
    r = cli("-q", *base, "--videos", tmp_path / "empty")
    assert_one_line_error(r, "nothing could be scored: 2 item(s) skipped", f"{clip.name}/cam02: no video")


def test_unreadable_and_short_videos_are_skipped_and_the_rest_scored(cli, synth, tmp_path):
    root, clip = synth
    vids = tmp_path / "vids" / clip.name
    vids.mkdir(parents=True)
    (vids / "cam02.mp4").write_bytes(b"not a video")
    shutil.copy(clip / "videos" / "cam03.mp4", vids / "cam03.mp4")
    r = cli("eval", "--bench", "synthetic", "--data-root", root / "clips", "--videos", tmp_path / "vids",
            "--metrics", "psnr", "--json")  # fmt: skip
    assert r.code == 0, r.stderr
    data = r.json()
    assert [v["trajectory"] for v in data["videos"]] == ["cam03"] and data["videos"][0]["metrics"]["psnr"] == "inf"
    [bad] = data["skipped"]["videos"]
    assert bad["trajectory"] == "cam02" and "cam02.mp4" in bad["reason"]
    assert len([ln for ln in r.stderr.splitlines() if "cam02 not scored" in ln]) == 1
    r = cli("eval", "--bench", "synthetic", "--data-root", root / "clips", "--videos", tmp_path / "vids",
            "--metrics", "psnr", "--frames", "6", "--json")  # fmt: skip
    assert r.code == 2 and "nothing could be scored: 2 item(s) skipped (first: " in r.stderr.splitlines()[-1]
    r = cli("eval", "--bench", "synthetic", "--data-root", root / "clips", "--videos", tmp_path / "vids",
            "--traj", "cam03", "--metrics", "psnr", "--frames", "6")  # fmt: skip
    assert r.code == 2 and "video has 5 frames, --frames asks for 6" in r.stderr.splitlines()[-1]


def test_davis_without_ground_truth_cannot_score_pixel_metrics(cli, tmp_path):
    frames = (np.random.default_rng(0).random((3, 32, 48, 3)) * 255).astype(np.uint8)
    write_davis(tmp_path / "DAVIS", {"a": frames})
    (tmp_path / "vids").mkdir()
    r = cli("-q", "eval", "--bench", "davis", "--data-root", tmp_path / "DAVIS", "--videos", tmp_path / "vids",
            "--metrics", "psnr")  # fmt: skip
    assert_one_line_error(r, "nothing could be scored: no requested metric applies (psnr: needs ground-truth target frames")


@pytest.mark.slow
def test_subprocess_json_has_no_bare_infinity(synth):
    root, _ = synth
    cmd = [sys.executable, "-m", "mvt4g", "eval", "--bench", "synthetic", "--data-root", str(root / "clips"),
           "--videos", str(root / "vids"), "--metrics", "psnr", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["videos"][0]["metrics"] == {"psnr": "inf"}


def test_model_mode_scores_the_saved_file_and_names_repeated_videos(tmp_path, tiny_run):
    """Noise frames (what an untrained model makes) lose dB in H.264: --model --save-videos must score the
    decoded file, so --videos on the same folder agrees; one video for every target is named in a warning."""
    from types import SimpleNamespace

    from mvt4g.eval.bench import open_bench
    from mvt4g.eval.runner import EvalSettings, FolderSource, ModelSource, run_eval
    from mvt4g.synth import SynthSettings, synthesize_one

    (tmp_path / "clips").mkdir()
    synthesize_one(SynthSettings(views=3, frames=9, height=32, width=32, points=16, seed=1), 0, tmp_path / "clips")
    noise = np.random.default_rng(0).integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)

    class SameVideo:  # the pipeline of a model whose camera path is still zero: one video whatever the target
        device = "cpu"

        def generate(self, ref, cams, settings, seed, prompt=None, negative_prompt=""):
            return SimpleNamespace(frames=noise.copy(), info={})

    settings = EvalSettings(groups=["psnr", "ssim", "temporal_flickering"])
    bench = open_bench("synthetic", tmp_path / "clips")
    source = ModelSource(tiny_run, frames=9, size=None, steps=1, save_dir=tmp_path / "gen")
    source.pipeline = SameVideo()
    made = run_eval(bench, source, settings)
    again = run_eval(bench, FolderSource(tmp_path / "gen", bench.keys()), settings)
    assert len(made.results) == len(again.results) == 2
    for a, b in zip(made.results, again.results):
        assert a.video == b.video and a.metrics == pytest.approx(b.metrics, abs=1e-9)
        assert "scored as saved (H.264, decoded)" in a.notes
    # Scoring the frames before encoding would disagree by far more than 0.05 dB here.
    raw = _psnr_mean(noise[1:], bench.load(bench.sequences()[0], 9)[0].ground_truth[1:])
    assert abs(raw - made.results[0].metrics["psnr"]) > 0.05
    [warning] = made.warnings
    assert "cam03 is the same video as" in warning and "cam02" in warning and "does not depend on the target camera" in warning


def test_cli_choices_are_the_cores_constants():
    from mvt4g.cli import eval as eval_cli
    from mvt4g.eval.bench import BENCH_NAMES
    from mvt4g.eval.camera_metrics import CONVENTIONS

    assert eval_cli.BENCH_NAMES == BENCH_NAMES and eval_cli.CAMERA_CONVENTIONS == CONVENTIONS
