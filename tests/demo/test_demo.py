"""`mvt4g demo` end to end at a tiny size: every stage, the report, resuming, and bad input.

The report's numbers are checked against independent computations from the files the stages
wrote (float64 PSNR of the copied reference, the flow tracks re-scored, the run's metrics).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error

from mvt4g.demo import stages

TINY = ["--steps", "4", "--size", "16x16", "--frames", "5", "--train-scenes", "4", "--heldout-scenes", "1",
        "--sample-steps", "2", "--threads", "1"]  # fmt: skip
ALL_STAGES = ["data", "tracks", "features", "finetune_method", "finetune_baseline", "generate", "evaluate", "analyze"]


def tiny_base(root: Path) -> Path:
    """A random ``tiny`` model saved like a trained base (the shipped base is 32x32: too slow here)."""
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    save_pretrained(MVT4GModel(preset("tiny")), root / "base")
    return root / "base"


def psnr64(a: np.ndarray, b: np.ndarray) -> float:
    """Video PSNR as the paper's tables report it: the mean over frames of each frame's PSNR."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(255.0**2 / mse)))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny demo (tracks on a small scene), run twice in one folder (the second run must
    reuse every stage) and once in another folder (it must give the same numbers)."""
    import contextlib
    import io

    from mvt4g.cli.main import main

    mp = pytest.MonkeyPatch()
    mp.setattr(stages, "TRACKS_SCENE", {"views": 2, "frames": 5, "height": 48, "width": 64, "points": 64})
    root = tmp_path_factory.mktemp("demo")
    base = tiny_base(root)
    out = root / "demo"
    runs = []
    try:
        for folder in (out, out, root / "again"):
            buf, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                code = main(["demo", "--out", str(folder), "--base", str(base), *TINY, "--json"])
            runs.append((code, buf.getvalue(), err.getvalue()))
    finally:
        mp.undo()
    return out, runs


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_the_report(demo_run):
    out, runs = demo_run
    code, stdout, stderr = runs[0]
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert list(summary["stages"]) == ALL_STAGES
    assert summary["reused"] == []
    report = (out / "report" / "report.md").read_text()
    for section in ("## 1. Data", "## 2. Multi-view point tracks", "## 3. Plücker", "## 4. Fine-tuning",
                    "## 5. Novel views", "## 6. Evaluation", "## 7. Attention"):  # fmt: skip
        assert section in report, section
    from mvt4g.demo.settings import default_real_video

    # novel_0, novel_1: the held-out scene along arc-left and zoom-in; novel_2: the real video.
    real = ["novel_2"] if default_real_video() is not None else []
    for image in ("scenes", "tracks", "training", "trajectories", "novel_0", "novel_1", *real, "samples", "layers",
                  "heatmaps", "head_tracks"):  # fmt: skip
        path = out / "report" / f"{image}.png"
        assert path.stat().st_size > 5_000, image
        assert f"({image}.png)" in report, image
    # The real video (bear) was generated along arc-left when ../shared is present.
    gen = summary["stages"]["generate"]["summary"]["mvtrack4gen"]
    assert gen["failed"] == 0
    sources = {item["source"] for item in gen["items"]}
    assert "scene_0000" in sources


@pytest.mark.slow
def test_demo_numbers_match_independent_computations(demo_run):
    from mvt4g.io.clip import read_clip
    from mvt4g.io.video import read_video
    from mvt4g.tracks.format import read_tracks
    from mvt4g.tracks.metrics import score_tracks

    out, runs = demo_run
    summary = json.loads(runs[0][1])
    stages_ = summary["stages"]
    # Copying the reference: float64 PSNR of cam01 against each other view, from the clip's videos.
    ev = stages_["evaluate"]["summary"]["sources"]
    clip = read_clip(out / "data" / "heldout" / "scene_0000")
    ref = read_video(clip.videos["cam01"]).frames
    copy_items = {i["item"]: i["psnr"] for i in ev["copy the reference"]["items"]}
    for view in clip.views:
        if view == "cam01":
            continue
        target = read_video(clip.videos[view]).frames
        first = 1 if view in stages.TRAJECTORIES else 0  # preset views start at the reference's own frame 0
        expected = psnr64(ref[first:], target[first:])
        assert copy_items[f"scene_0000/{view}"] == pytest.approx(expected, abs=1e-6)
    # Both fine-tunes were scored on every item, and the models' videos were kept.
    for name in ("mvtrack4gen", "baseline"):
        assert ev[name]["scored"] == len(clip.views) - 1
        assert (out / "eval" / name / "scene_0000" / "cam02.mp4").is_file()
    # The flow tracks' scores are those of the written track file against the exact tracks.
    tr = stages_["tracks"]["summary"]
    rescored = score_tracks(read_tracks(out / "tracks" / "flow_tracks.npz"), read_tracks(Path(tr["scene"]) / "tracks.npz"))
    assert tr["scores"]["temporal"]["delta_avg"] == pytest.approx(rescored["temporal"]["delta_avg"])
    # Training: both runs trained the fixed --steps; the fine-tunes start from the base.
    method, baseline = stages_["finetune_method"]["summary"], stages_["finetune_baseline"]["summary"]
    assert baseline["step"] == method["step"] == method["planned_steps"] == 4
    assert json.loads((out / "runs" / "mvtrack4gen" / "config.toml").read_text().split("init = ")[1].split("\n")[0]) \
        == str(out.parent / "base")
    assert method["final"]["track"] > 0 and method["final"]["corr"] > 0
    assert baseline["final"]["track"] == 0 and baseline["final"]["corr"] == 0
    lines = (out / "runs" / "mvtrack4gen" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == method["step"]
    # The report shows the records' numbers.
    report = (out / "report" / "report.md").read_text()
    assert f"{ev['copy the reference']['mean']['psnr']:.3f}" in report


@pytest.mark.slow
def test_second_run_reuses_every_stage(demo_run):
    _, runs = demo_run
    code, stdout, stderr = runs[1]
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["reused"] == ALL_STAGES
    assert summary["seconds"] < 60


@pytest.mark.slow
def test_two_runs_in_two_folders_give_the_same_table(demo_run):
    """Fixed steps: the numbers depend on the settings only (not on timing), so a second demo
    in another folder prints the same results table and the same losses."""
    from mvt4g.demo.report import results_table

    out, runs = demo_run
    first, again = (json.loads(runs[i][1])["stages"] for i in (0, 2))
    table = results_table(first["evaluate"]["summary"])
    assert table and table == results_table(again["evaluate"]["summary"])
    assert first["finetune_method"]["summary"]["final"] == again["finetune_method"]["summary"]["final"]
    report = (out / "report" / "report.md").read_text()
    assert "\n".join(table) in report


def test_changed_settings_rebuild_only_what_depends_on_them():
    """Stage keys: a later stage's key changes with its own settings and with its inputs'."""
    from mvt4g.demo.settings import stage_key

    data = stage_key("data", {"frames": 5}, [])
    assert data == stage_key("data", {"frames": 5}, [])
    assert data != stage_key("data", {"frames": 9}, [])
    tuned = stage_key("finetune_method", {"steps": 60}, [data])
    assert tuned != stage_key("finetune_method", {"steps": 60}, [stage_key("data", {"frames": 9}, [])])
    assert tuned != stage_key("finetune_method", {"steps": 61}, [data])


def test_budget_is_opt_in():
    from mvt4g.demo.settings import (
        METHOD_SHARE,
        POST_TRAINING_RESERVE,
        DemoSettings,
        method_budget_s,
    )

    assert method_budget_s(DemoSettings(out=Path("x"), real_video=None), spent_s=60.0) is None
    s = DemoSettings(out=Path("x"), budget_minutes=10, real_video=None)
    assert method_budget_s(s, spent_s=60.0) == pytest.approx(METHOD_SHARE * (600 * (1 - POST_TRAINING_RESERVE) - 60), abs=0.1)
    assert method_budget_s(s, spent_s=10_000) > 0  # a slow data stage still leaves a few steps


def test_default_size_comes_from_the_base_model():
    from mvt4g.demo.settings import DemoSettings

    s = DemoSettings(out=Path("x"), real_video=None).validate()
    assert (s.frames, s.height, s.width) == (9, 32, 32) and s.base_dir.name == "base"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--size", "abc"], "size"),
        (["--budget-minutes", "0.1"], "--budget-minutes"),
        (["--steps", "0"], "--steps"),
        (["--base", "huge"], "huge"),
        (["--frames", "6"], "4k+1"),
        (["--real-video", "missing.mp4"], "missing.mp4"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, needle):
    out = tmp_path / "demo"
    assert_one_line_error(cli("demo", "--out", str(out), *args), needle)
    assert not out.exists()


def test_corrupt_real_video_fails_before_any_work(cli, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    out = tmp_path / "demo"
    assert_one_line_error(cli("demo", "--out", str(out), "--real-video", str(bad)), "bad.mp4")
    assert not out.exists()


def test_refuses_a_folder_that_is_not_a_demo(cli, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert_one_line_error(cli("demo", "--out", str(out), *TINY, "--overwrite"), "not a demo folder")
    assert (out / "precious.txt").read_text() == "keep me"
    assert_one_line_error(cli("demo", "--out", "/proc/mvt4g-no/such", *TINY), "cannot write in '/proc'")


@pytest.mark.slow
def test_copy_reference_baseline_scores_the_reference(cli, tmp_path):
    """`eval --copy-reference`: PSNR of each reference against each target, as float64 numpy computes it."""
    from mvt4g.io.clip import read_clip
    from mvt4g.io.video import read_video
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    clips = synthesize(SynthSettings(views=3, frames=5, height=16, width=16, points=16), tmp_path / "synth", 2)
    result = cli("eval", "--bench", "synthetic", "--data-root", str(tmp_path / "synth"), "--copy-reference",
                 "--metrics", "psnr", "--json")  # fmt: skip
    assert result.code == 0, result.stderr
    report = result.json()
    scored = {(v["sequence"], v["trajectory"]): v["metrics"]["psnr"] for v in report["videos"]}
    assert len(scored) == 4
    for path in clips:
        clip = read_clip(path)
        ref = read_video(clip.videos["cam01"]).frames
        for view in ("cam02", "cam03"):
            assert scored[(path.name, view)] == pytest.approx(psnr64(ref, read_video(clip.videos[view]).frames), abs=1e-9)
    both = cli("eval", "--bench", "synthetic", "--data-root", str(tmp_path / "synth"), "--copy-reference", "--videos",
               str(tmp_path))  # fmt: skip
    assert_one_line_error(both, "exactly one of")
