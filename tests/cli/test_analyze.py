"""`mvt4g analyze` end to end on a tiny random model and a synthetic clip; bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error

from mvt4g.model.flow_matching import inference_sigmas

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: conftest.one_thread


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A run directory holding a random tiny model, and a 2-view synthetic clip (32x32, 17 frames)."""
    from mvt4g.model import MVT4GModel, preset, save_pretrained
    from mvt4g.synth import SynthSettings, synthesize_one

    root = tmp_path_factory.mktemp("analyze")
    torch.manual_seed(0)
    run = root / "run"
    run.mkdir()
    save_pretrained(MVT4GModel(preset("tiny")), run / "model")
    (root / "synth").mkdir()
    clip = synthesize_one(SynthSettings(views=2, frames=17, height=32, width=32, points=300, seed=3), 0, root / "synth")
    return root, run, clip


@pytest.mark.slow
def test_analyze_writes_report_and_pictures(setup, cli, tmp_path):
    _, run, clip = setup
    out = tmp_path / "out"
    result = cli("analyze", "--model", run, clip, "--timesteps", "2", "--queries", "64", "--out", out,
                 "--visualize", "16,16,8", "--json")  # fmt: skip
    assert result.code == 0, result.stderr
    report = result.json()
    assert json.loads((out / "analysis.json").read_text()) == report
    assert report["layers"] == [0, 1, 2]
    np.testing.assert_allclose(report["timesteps"], inference_sigmas(2, 5.0).numpy() * 1000, atol=1e-3)
    assert report["settings"]["delta_px"] == 4.0  # one token of the tiny preset (4 px)
    assert report["pairs"][0]["tracks"] == 64 and report["pairs"][0]["latent_frames"] == 5
    for name in ("ref_temporal", "tgt_temporal", "cross_view"):
        entry = report["metrics"][name]
        assert entry["pairs"] > 50 and entry["queries"] > 20
        for metric in ("pck", "attention", "confidence", "reliable", "harmonic_mean"):
            table = np.array(entry[metric], dtype=float)
            assert table.shape == (3, 2)
            assert np.all((table >= 0) & (table <= 1)), (name, metric)
        # Min-max normalised harmonic mean: its cells reach neither above 1 nor all zero by accident.
        assert np.nanmax(entry["harmonic_mean"]) <= 1.0
    best = report["best_layer"]
    assert best["candidate"] in (0, 1, 2) and best["type"] == "cross_view"
    assert best["layer"] in (None, best["candidate"])
    assert best["verdict"] == ("no layer stands out" if best["layer"] is None else f"layer {best['layer']} stands out")
    assert 0 < best["chance_pck"] < 0.1 and [r["layer"] for r in best["cross_view_pck_by_layer"]] == [0, 1, 2]
    assert best["best_timestep"] in report["timesteps"]
    assert report["visualize"]["layer"] == best["candidate"] and report["visualize"]["latent_frame"] == 2
    for key in ("heatmaps", "scores", "query_attention"):
        path = out / f"{key}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert report["files"][key] == str(path)
    from matplotlib.image import imread

    assert imread(out / "heatmaps.png").shape[1] > 1000  # 3 type columns + the top-layer curves
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "heatmaps.png", "query_attention.png", "scores.png"]

    # The folder exists now: refused without --overwrite, replaced with it (human output this time).
    refused = cli("analyze", "--model", run, clip, "--timesteps", "1", "--layers", "1", "--out", out)
    assert_one_line_error(refused, "exists")
    again = cli("analyze", "--model", run / "model", clip, "--timesteps", "1", "--layers", "1", "--out", out, "--overwrite")
    assert again.code == 0, again.stderr
    assert "stands out (cross-view)" in " ".join(again.stderr.split())
    assert json.loads((out / "analysis.json").read_text())["layers"] == [1]
    assert not (out / "query_attention.png").exists()


def test_same_seed_same_numbers(setup):
    from mvt4g.analysis.report import build_report
    from mvt4g.analysis.runner import AnalysisSettings, plan_analysis, run_analysis

    _, run, clip = setup
    reports = []
    for seed in (0, 0, 1):
        settings = AnalysisSettings(layers="1-2", timesteps=1, queries=32, seed=seed, device="cpu")
        plan = plan_analysis(run, [clip], settings)
        reports.append(build_report(run_analysis(plan, settings), settings)["metrics"])
    assert reports[0] == reports[1]
    assert reports[0] != reports[2]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--model", "{root}/nowhere", "{clip}"], ["nowhere", "no such model or run directory"]),
        (["--model", "{run}", "{bare}"], ["tracks.npz", "no tracks"]),
        (["--model", "{run}", "{clip}", "--layers", "3"], ["layer 3 is out of range", "3 layers"]),
        (["--model", "{run}", "{clip}", "--layers", "1-x"], ["bad layer selection"]),
        (["--model", "{run}", "{clip}", "--visualize", "3,4"], ["--visualize must be x,y,frame"]),
        (["--model", "{run}", "{clip}", "--visualize", "3,4,nine"], ["--visualize must be x,y,frame"]),
        (["--model", "{run}", "{clip}", "--visualize", "40,4,0"], ["outside the 32x32 video"]),
        (["--model", "{run}", "{clip}", "--visualize", "3,4,17"], ["frame 17 is outside the analysed frames"]),
        (["--model", "{run}", "{clip}", "--timesteps", "0"], ["--timesteps must be >= 1"]),
        (["--model", "{run}", "{clip}", "--head", "7"], ["--head 7 is out of range"]),
        (["--model", "{run}", "{one_view}"], ["needs a clip with >= 2 views"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(setup, cli, tmp_path, args, needles):
    root, run, clip = setup
    bare = tmp_path / "bare"
    shutil.copytree(clip, bare)
    (bare / "tracks.npz").unlink()
    one_view = tmp_path / "one_view"
    shutil.copytree(clip, one_view)
    (one_view / "videos" / "cam02.mp4").unlink()
    cams = json.loads((one_view / "cameras" / "cameras.json").read_text())
    _drop_view(cams, "cam02")
    (one_view / "cameras" / "cameras.json").write_text(json.dumps(cams))
    values = {"root": root, "run": run, "clip": clip, "bare": bare, "one_view": one_view}
    out = tmp_path / "out"
    result = cli("analyze", *[a.format(**values) for a in args], "--out", out)
    assert_one_line_error(result, *needles)
    assert not out.exists()


def _drop_view(cams: dict, view: str) -> None:
    """Remove one view from a native cameras.json object (whatever nesting it uses)."""
    for key in ("views", "cameras"):
        if isinstance(cams.get(key), dict) and view in cams[key]:
            del cams[key][view]
            return
    if view in cams:
        del cams[view]
        return
    raise AssertionError(f"no {view} in cameras.json: {list(cams)}")


def test_dtype_choices_are_the_cores():
    from mvt4g.analysis.runner import DTYPE_NAMES, DTYPES
    from mvt4g.cli import analyze as analyze_cli

    assert analyze_cli.DTYPE_NAMES == DTYPE_NAMES == tuple(DTYPES)
