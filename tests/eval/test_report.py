"""The eval report (mvt4g.eval.report): aggregation, JSON without bare infinities, CSV, markdown, table rows."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from mvt4g.eval.report import (
    PAPER_COLUMNS,
    SkippedVideo,
    VideoResult,
    build_report,
    csv_text,
    json_ready,
    markdown_report,
    table_rows,
)

RNG = np.random.default_rng(0)


def _results() -> list[VideoResult]:
    out = []
    for seq in ("bear", "cows"):
        for traj in ("arc-left", "pan-right", "zoom-in"):
            metrics = {"temporal_flickering": float(RNG.uniform(0.8, 1)), "rot_err": float(RNG.uniform(0, 5))}
            skipped = {}
            if (seq, traj) == ("cows", "zoom-in"):
                del metrics["rot_err"]
                skipped["camera"] = "camera poses of 3 of 9 frames could not be estimated"
            out.append(VideoResult(seq, traj, f"v/{seq}/{traj}.mp4", 9, (48, 64), metrics, {"x": float("nan")}, skipped))
    return out


def _report(results=None, bench="davis", **settings) -> dict:
    results = _results() if results is None else results
    info = {"rot_err": {"source": "S", "settings": "T", "unit": "deg", "better": "lower"}}
    return build_report(bench, {"camera_metric": "mean", "metrics": info, **settings}, results,
                        [SkippedVideo("dog", "arc-left", "no video dog/arc-left.mp4")], ["v/extra.mp4"],
                        {"psnr": "needs ground-truth target frames"})  # fmt: skip


def test_summary_means_match_an_independent_float64_mean():
    results = _results()
    report = _report(results)
    assert list(report) == ["bench", "settings", "videos", "summary", "skipped"]
    overall = report["summary"]["overall"]
    for name in ("temporal_flickering", "rot_err"):
        values = np.array([r.metrics[name] for r in results if name in r.metrics], dtype=np.float64)
        assert overall["metrics"][name] == pytest.approx(values.mean(), rel=1e-15)
        assert overall["n"][name] == len(values)
    assert overall["videos"] == 6 and overall["n"]["rot_err"] == 5
    cows = next(s for s in report["summary"]["per_sequence"] if s["sequence"] == "cows")
    assert cows["n"]["rot_err"] == 2
    assert cows["metrics"]["rot_err"] == pytest.approx(np.mean([r.metrics["rot_err"] for r in results[3:5]]))
    # A metric absent from a video is absent, never null.
    video = report["videos"][5]
    assert "rot_err" not in video["metrics"] and video["skipped"]["camera"].startswith("camera poses")


def test_infinite_psnr_is_written_as_the_string_inf():
    results = [VideoResult("s", "a", None, 5, (8, 8), {"psnr": math.inf}), VideoResult("s", "b", None, 5, (8, 8), {"psnr": 20.0})]
    report = _report(results, bench="synthetic")
    assert report["summary"]["overall"]["metrics"]["psnr"] == math.inf  # the true mean
    text = json.dumps(json_ready(report), allow_nan=False)  # raises on any bare Infinity/NaN
    data = json.loads(text)
    assert data["videos"][0]["metrics"]["psnr"] == "inf" and data["videos"][1]["metrics"]["psnr"] == 20.0
    assert data["summary"]["overall"]["metrics"]["psnr"] == "inf"
    assert json_ready({"a": np.float32(2.5), "b": [np.inf, -np.inf, np.nan], "c": np.arange(2)}) == {
        "a": 2.5, "b": ["inf", "-inf", None], "c": [0, 1]}  # fmt: skip
    rows = list(csv.reader(io.StringIO(csv_text(report))))
    assert rows[0][:4] == ["level", "sequence", "trajectory", "videos"] and rows[1][4] == "inf"


def test_metrics_every_video_skipped_are_listed_with_the_first_reason():
    results = [VideoResult("s", "a", None, 5, (8, 8), {"psnr": 1.0}, skipped={"camera": "too few matches", "tracks": "no links"})]
    skipped = _report(results)["skipped"]
    assert skipped["metrics"]["rot_err"] == skipped["metrics"]["cam_mc"] == "no video could be scored; first reason: too few matches"
    assert skipped["metrics"]["track_consistency"].endswith("no links")
    assert skipped["metrics"]["psnr"] == "needs ground-truth target frames"
    assert skipped["videos"] == [{"sequence": "dog", "trajectory": "arc-left", "reason": "no video dog/arc-left.mp4"}]
    assert skipped["extra_videos"] == ["v/extra.mp4"]


def test_csv_rows_per_video_sequence_and_overall_round_trip():
    report = _report()
    rows = list(csv.DictReader(io.StringIO(csv_text(report))))
    assert [r["level"] for r in rows] == ["video"] * 6 + ["sequence"] * 2 + ["overall"]
    assert rows[5]["rot_err"] == ""  # absent, not zero
    for row, video in zip(rows, report["videos"]):
        assert float(row["temporal_flickering"]) == video["metrics"]["temporal_flickering"]  # full precision
    assert float(rows[-1]["rot_err"]) == report["summary"]["overall"]["metrics"]["rot_err"]
    assert rows[-1]["videos"] == "6"


def test_markdown_has_the_paper_columns_and_footnotes():
    text = markdown_report(_report())
    assert text.endswith("\n") and text.startswith("# mvt4g eval: davis")
    for heading, _, _ in PAPER_COLUMNS["davis"][1]:
        assert heading in text
    assert "Table 1 (DAVIS)" in text
    assert "MEt3R dynamic: MEt3R restricted to dynamic regions" in text
    assert "- **rot_err** (deg, lower is better): S. T" in text
    assert "- video dog/arc-left: no video dog/arc-left.mp4" in text
    assert "extra video (no such item, not scored): `v/extra.mp4`" in text
    camctrl = markdown_report(_report(camera_metric="camctrl"))
    assert "RotErr (rad, sum)" in camctrl and "mRotErr" not in camctrl
    iphone = markdown_report(_report(bench="iphone"))
    assert "Table 2 (iPhone)" in iphone and "| PSNR ↑ | SSIM ↑ | LPIPS ↓ | MEt3R ↓ |" in iphone
    assert "PSNR: needs ground-truth target frames" in iphone


def test_table_rows_have_per_sequence_and_overall_means():
    headers, rows = table_rows(_report())
    assert headers == ["sequence", "trajectory", "temporal_flickering", "rot_err"]
    assert len(rows) == 6 + 2 + 1
    assert rows[-1][:2] == ["all", "mean of 6"] and rows[5][3] == ""
    assert all(len(r) == len(headers) for r in rows)
