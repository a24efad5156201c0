"""The ``mvt4g eval`` report: per video, per sequence and overall; JSON, CSV, markdown and table rows.

JSON shape (:func:`build_report`)::

    {"bench": "davis",
     "settings": {..., "metrics": {NAME: {"source", "settings", "unit", "better"}}},
     "videos": [{"sequence", "trajectory", "video", "frames", "size", "metrics": {NAME: value},
                 "details": {...}, "skipped": {GROUP: reason}, "notes": [...]}],
     "summary": {"overall": {"videos", "metrics", "n"}, "per_sequence": [{"sequence", "videos", "metrics", "n"}]},
     "skipped": {"metrics": {NAME: reason}, "videos": [{"sequence", "trajectory", "reason"}],
                 "extra_videos": [PATH]}}

A metric a video has no value for is absent from its ``metrics`` (the reason is in its
``skipped``), never null. Summary values are means over the videos that have the metric
(``n`` counts them). ``skipped.metrics``: metrics computed for no video at all, with why.

Infinity: the PSNR of a frame identical to its ground truth is infinite, and so is the mean of
any set of values holding one. JSON has no infinity, so :func:`json_ready` writes it as the
string ``"inf"`` (``"-inf"`` likewise); CSV and markdown print ``inf``. No value is capped.
NaN never appears among metrics; elsewhere (details) it becomes ``null``.

Markdown (:func:`markdown_report`): the paper's table columns for the benchmark (Table 1 for
DAVIS, Table 2 for iPhone, the Table 4 set for synthetic clips), with "n/a" and a footnote
where a column was not computed, then the extra weight-free metrics, per-sequence and
per-video tables, every metric's source and settings, and what was skipped.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

#: Display order of every metric name the runner can produce.
METRIC_ORDER = (
    "psnr", "ssim", "lpips", "masked_psnr", "masked_ssim", "psnr_moving", "psnr_covisible_static", "psnr_covisible_moving",
    "subject_consistency", "background_consistency", "aesthetic_quality", "imaging_quality",
    "temporal_flickering", "motion_smoothness", "met3r",
    "rot_err", "trans_err", "cam_mc", "epipolar_error", "track_consistency", "track_error",
)  # fmt: skip

#: The paper's table columns per benchmark: (heading, metric, direction).
PAPER_COLUMNS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "davis": ("Table 1 (DAVIS)", [
        ("Subject Consistency", "subject_consistency", "↑"), ("Background Consistency", "background_consistency", "↑"),
        ("Aesthetic Quality", "aesthetic_quality", "↑"), ("Imaging Quality", "imaging_quality", "↑"),
        ("Temporal Flickering", "temporal_flickering", "↑"), ("Motion Smoothness", "motion_smoothness", "↑"),
        ("MEt3R", "met3r", "↓"), ("MEt3R dynamic", "met3r_dynamic", "↓"),
        ("mRotErr (°)", "rot_err", "↓"), ("mTransErr", "trans_err", "↓"), ("mCamMC", "cam_mc", "↓"),
    ]),
    "iphone": ("Table 2 (iPhone)", [
        ("PSNR", "psnr", "↑"), ("SSIM", "ssim", "↑"), ("LPIPS", "lpips", "↓"), ("MEt3R", "met3r", "↓"),
    ]),
    "synthetic": ("the metrics of Table 4 (MultiCamVideo), on synthetic clips", [
        ("PSNR", "psnr", "↑"), ("SSIM", "ssim", "↑"), ("LPIPS", "lpips", "↓"), ("MEt3R", "met3r", "↓"),
        ("mRotErr (°)", "rot_err", "↓"), ("mTransErr", "trans_err", "↓"), ("mCamMC", "cam_mc", "↓"),
    ]),
}  # fmt: skip
#: Columns of the paper that mvt4g has no metric for at all, and why.
NOT_IMPLEMENTED = {"met3r_dynamic": "MEt3R restricted to dynamic regions: needs MEt3R (learned, not available)"}
CAMERA_METRICS = ("rot_err", "trans_err", "cam_mc")


@dataclass
class VideoResult:
    """Scores of one generated video (``metrics`` holds only the values that were computed)."""

    sequence: str
    trajectory: str
    video: str | None
    frames: int
    size: tuple[int, int]
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"sequence": self.sequence, "trajectory": self.trajectory, "video": self.video, "frames": self.frames,
                "size": list(self.size), "metrics": ordered(self.metrics), "details": self.details,
                "skipped": dict(self.skipped), "notes": list(self.notes)}  # fmt: skip


@dataclass
class SkippedVideo:
    """An item that was not scored at all (missing video, wrong size, unreadable, ...)."""

    sequence: str
    trajectory: str
    reason: str
    #: True when the work failed (e.g. generation produced NaN), False for bad or missing input.
    failed: bool = False

    def to_dict(self) -> dict:
        return {"sequence": self.sequence, "trajectory": self.trajectory, "reason": self.reason}


def ordered(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics in :data:`METRIC_ORDER` (unknown names after, alphabetically)."""
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return {k: metrics[k] for k in sorted(metrics, key=lambda k: (rank.get(k, len(rank)), k))}


def _mean_block(results: list[VideoResult]) -> dict:
    values: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.metrics.items():
            values.setdefault(k, []).append(float(v))
    # A plain mean: one infinite PSNR makes the mean infinite, which is the true value.
    means = {k: math.fsum(v) / len(v) if all(math.isfinite(x) for x in v) else sum(v) / len(v) for k, v in values.items()}
    return {"videos": len(results), "metrics": ordered(means), "n": {k: len(values[k]) for k in ordered(means)}}


def summarize(results: list[VideoResult]) -> dict:
    """``{"overall": block, "per_sequence": [block + "sequence"]}`` with means over videos."""
    per_seq: dict[str, list[VideoResult]] = {}
    for r in results:
        per_seq.setdefault(r.sequence, []).append(r)
    return {
        "overall": _mean_block(results),
        "per_sequence": [{"sequence": s, **_mean_block(rs)} for s, rs in per_seq.items()],
    }


def build_report(
    bench: str,
    settings: dict,
    results: list[VideoResult],
    skipped_videos: list[SkippedVideo],
    extra_videos: list[str],
    skipped_metrics: dict[str, str],
) -> dict:
    """The report dict (floats as floats; pass it through :func:`json_ready` before ``json.dumps``).

    ``skipped_metrics``: metrics not computed for the benchmark as a whole (no ground truth,
    no weights, ...); metrics that every video had to skip are added with the first video's reason.
    """
    computed = {k for r in results for k in r.metrics}
    skipped = dict(skipped_metrics)
    for r in results:
        for group, reason in r.skipped.items():
            names = CAMERA_METRICS if group == "camera" else GROUP_OUTPUTS.get(group, (group,))
            for name in names:
                if name not in computed and name not in skipped:
                    skipped[name] = f"no video could be scored; first reason: {reason}"
    return {
        "bench": bench,
        "settings": settings,
        "videos": [r.to_dict() for r in results],
        "summary": summarize(results),
        "skipped": {"metrics": skipped, "videos": [s.to_dict() for s in skipped_videos], "extra_videos": list(extra_videos)},
    }


#: How every run sizes what it scores (the report's ``settings.size_policy``).
SIZE_POLICY = ("references, ground truth, masks and cameras cover-resized (scale + centre crop) to --size; "
               "a video of another size is resized to the scoring size when the aspect ratios agree within 1 %, "
               "else skipped")  # fmt: skip


def run_report(bench, source, settings, result) -> dict:
    """The report of one ``run_eval``: :func:`build_report` with the run's settings block.

    ``bench`` is the :class:`~mvt4g.eval.bench.Benchmark`, ``source`` the runner's video source,
    ``settings`` its ``EvalSettings`` and ``result`` its ``EvalResult`` (duck-typed: this module
    sits below the runner).
    """
    size = settings.size or getattr(source, "size", None)
    info = {
        "source": source.describe(),
        "benchmark": bench.describe(),
        "metric_groups": list(settings.groups),
        "camera_metric": settings.camera_metric,
        "pose_estimator": settings.pose_estimator,
        "frames": getattr(source, "frames", settings.frames),
        "size": list(size) if size else None,
        "weights_dir": str(settings.weights_dir) if settings.weights_dir is not None else None,
        "size_policy": SIZE_POLICY,
        "metrics": result.metric_info,
    }
    return build_report(bench.name, info, result.results, result.skipped_videos, result.extra_videos,
                        result.skipped_metrics)  # fmt: skip


def check_something_scored(result, groups: list[str]) -> None:
    """Raise when the run scored nothing: :class:`InputError` (exit 2) when the inputs are why,
    :class:`WorkFailed` (exit 1) when every item failed while being made (e.g. NaN latents)."""
    from mvt4g.errors import InputError, WorkFailed

    if all(group in result.skipped_metrics for group in groups):
        name, reason = next(iter(result.skipped_metrics.items()))
        raise InputError(f"nothing could be scored: no requested metric applies ({name}: {reason})")
    if not result.results:
        if result.skipped_videos:
            first = result.skipped_videos[0]
            kind = WorkFailed if all(s.failed for s in result.skipped_videos) else InputError
            raise kind(f"nothing could be scored: {len(result.skipped_videos)} item(s) skipped "
                       f"(first: {first.sequence}/{first.trajectory}: {first.reason})")  # fmt: skip
        name, reason = next(iter(result.skipped_metrics.items()), ("", "no metric selected"))
        raise InputError(f"nothing could be scored: no requested metric applies ({name}: {reason})")
    if not any(r.metrics for r in result.results):
        first = next(iter(result.results[0].skipped.items()), ("", "no metric"))
        raise InputError(f"nothing could be scored: every metric failed on every video (first: {first[0]}: {first[1]})")


def problem_lines(result, *, explicit: bool) -> list[tuple[str, str]]:
    """What a run should tell its user besides the table: ``(level, line)`` with level
    ``"warning"`` or ``"info"``, one line per problem.

    Metrics that cannot apply to the benchmark (no ground truth, no weights) are one info line
    unless the user asked for metrics or weights by name (``explicit``); weights that were given
    but rejected, skipped and extra videos, per-video metric failures (one line per metric, with
    how often and the first reason) and the result's own warnings are warnings.
    """
    lines: list[tuple[str, str]] = []
    by_design = {n: r for n, r in result.skipped_metrics.items() if not r.startswith("weights rejected")}
    for name, reason in result.skipped_metrics.items():
        if explicit or name not in by_design:
            lines.append(("warning", f"{name} skipped: {reason}"))
    if by_design and not explicit:
        lines.append(("info", f"not computed here (reasons in --json/--report): {', '.join(by_design)}"))
    lines += [("warning", f"{s.sequence}/{s.trajectory} not scored: {s.reason}") for s in result.skipped_videos]
    lines += [("warning", f"extra video, not part of the benchmark: {path}") for path in result.extra_videos]
    failures: dict[str, list[str]] = {}
    for r in result.results:
        for group, reason in r.skipped.items():
            failures.setdefault(group, []).append(f"{r.sequence}/{r.trajectory}: {reason}")
    for group, reasons in failures.items():
        counted = f"{group} skipped for {len(reasons)} of {len(result.results)} video(s)"
        lines.append(("warning", f"{counted} (first: {reasons[0]})"))
    lines += [("warning", line) for line in getattr(result, "warnings", [])]
    return lines


def source_line(bench, source, count: int) -> str:
    """The run's first line: the benchmark, how many items, where the videos come from."""
    kind = getattr(source, "kind", "")
    if kind == "model":
        what = f"generating with {source.model_dir}"
    elif kind == "copy":
        what = "the references themselves (copy baseline)"
    else:
        what = f"videos from {getattr(source, 'root', '')}"
    return f"{bench.name}: {count} item(s) in {len(bench.sequences())} sequence(s); {what}"


#: Metric names each ``--metrics`` group produces (groups not listed produce their own name).
GROUP_OUTPUTS = {"camera": CAMERA_METRICS, "region_psnr": ("psnr_moving", "psnr_covisible_static", "psnr_covisible_moving"), "epipolar": ("epipolar_error",), "tracks": ("track_consistency", "track_error")}


def json_ready(obj: object) -> object:
    """``obj`` with infinities as ``"inf"``/``"-inf"`` strings and NaN as ``None`` (plain JSON)."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return json_ready(obj.tolist())
    return obj


def fmt(value: float | None, digits: int = 4) -> str:
    """A metric value for tables: ``inf``, or ``digits`` significant digits; ``None`` -> ``""``."""
    if value is None:
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def metric_descriptions(groups: list[str], convention: str, pose_estimator: str = "builtin") -> dict[str, dict[str, str]]:
    """Source, settings, unit and direction of every metric the ``--metrics`` groups produce (``METRIC_INFO``
    of the metric modules, plus units)."""
    from mvt4g.eval import pose_estimators
    from mvt4g.eval import camera_metrics, covisibility, epipolar, image_metrics, learned, track_consistency

    cam = camera_metrics.METRIC_INFO[convention]
    pose = pose_estimators.describe(pose_estimator)
    rot_unit = "rad (sum over frames)" if convention == "camctrl" else "deg (mean over frames)"
    scale = "normalised units, sum over frames" if convention == "camctrl" else "normalised units, mean over frames"
    table = {
        **{k: {**v, "unit": "dB" if "psnr" in k else "", "better": "higher"} for k, v in image_metrics.METRIC_INFO.items()},
        "rot_err": {"source": cam["source"], "settings": f"{cam['settings']}; poses: {pose['source']} ({pose['settings']})",
                    "unit": rot_unit, "better": "lower"},
        "trans_err": {"source": cam["source"], "settings": cam["settings"], "unit": scale, "better": "lower"},
        "cam_mc": {"source": cam["source"], "settings": cam["settings"], "unit": scale, "better": "lower"},
        "epipolar_error": {**epipolar.METRIC_INFO["epipolar_error"], "unit": "px", "better": "lower"},
        **{f"psnr_{region}": {**covisibility.METRIC_INFO[region], "unit": "dB", "better": "higher"}
           for region in covisibility.REGIONS},
        "track_consistency": {**track_consistency.METRIC_INFO["track_consistency"], "unit": "fraction", "better": "higher"},
        "track_error": {**track_consistency.METRIC_INFO["track_error"], "unit": "px", "better": "lower"},
    }  # fmt: skip
    table["temporal_flickering"]["unit"] = "score in [0, 1]"
    table["ssim"]["unit"] = table["masked_ssim"]["unit"] = "score in [-1, 1]"
    for name, metric in learned.REGISTRY.items():
        better = "lower" if name in ("lpips", "met3r") else "higher"
        table[name] = {"source": metric.source, "settings": f"weights: {', '.join(metric.files)} (user-supplied)",
                       "unit": "", "better": better}  # fmt: skip
    out = {}
    for group in groups:
        for name in GROUP_OUTPUTS.get(group, (group,)):
            out[name] = table[name]
    return out


# ----------------------------------------------------------------------------- tables


def metric_columns(report: dict) -> list[str]:
    """Metric names with at least one value, in display order."""
    present = {k for v in report["videos"] for k in v["metrics"]}
    return list(ordered({k: 0.0 for k in present}))


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the per-video table (plus per-sequence means and the overall mean), as strings."""
    cols = metric_columns(report)
    headers = ["sequence", "trajectory", *cols]
    rows = [[v["sequence"], v["trajectory"], *[fmt(v["metrics"].get(c)) for c in cols]] for v in report["videos"]]
    per_seq = report["summary"]["per_sequence"]
    if len(per_seq) > 1:
        rows += [[s["sequence"], f"mean of {s['videos']}", *[fmt(s["metrics"].get(c)) for c in cols]] for s in per_seq]
    overall = report["summary"]["overall"]
    rows.append(["all", f"mean of {overall['videos']}", *[fmt(overall["metrics"].get(c)) for c in cols]])
    return headers, rows


def csv_text(report: dict) -> str:
    """CSV: one row per video, per sequence (mean) and overall (mean); ``level`` says which."""
    cols = metric_columns(report)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["level", "sequence", "trajectory", "videos", *cols])

    def cells(metrics: dict) -> list[str]:
        return [repr_value(metrics.get(c)) for c in cols]

    for v in report["videos"]:
        writer.writerow(["video", v["sequence"], v["trajectory"], 1, *cells(v["metrics"])])
    for s in report["summary"]["per_sequence"]:
        writer.writerow(["sequence", s["sequence"], "", s["videos"], *cells(s["metrics"])])
    overall = report["summary"]["overall"]
    writer.writerow(["overall", "", "", overall["videos"], *cells(overall["metrics"])])
    return buf.getvalue()


def repr_value(value: float | None) -> str:
    """Full-precision text of a value for CSV (``inf`` for infinity, empty when absent)."""
    if value is None:
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def _paper_heading(heading: str, metric: str, convention: str) -> str:
    if convention == "camctrl" and metric in CAMERA_METRICS:
        base = {"rot_err": "RotErr (rad, sum)", "trans_err": "TransErr (sum)", "cam_mc": "CamMC (sum)"}[metric]
        return base
    return heading


CONVENTION_WORDS = {
    "camctrl": "CameraCtrl / CamI2V: RotErr in radians and TransErr, CamMC summed over frames, each trajectory "
    "scaled by its own largest translation",
    "mean": "mvt4g's own: RotErr in degrees, means over frames, least-squares scale; matches no published table",
}


def _pose_cell(video: dict) -> str:
    """Whether the pose estimate of a video converged, and how many frames it registered."""
    pose = video.get("details", {}).get("pose")
    if pose is None:
        return ""
    state = "converged" if pose.get("converged") else "not converged"
    return f"{state}, {pose.get('registered', 0)}/{pose.get('frames', '?')} frames"


def markdown_report(report: dict) -> str:
    """The markdown report (see the module docstring)."""
    bench = report["bench"]
    settings = report["settings"]
    overall = report["summary"]["overall"]
    skipped = report["skipped"]["metrics"]
    info = settings.get("metrics", {})
    convention = settings.get("camera_metric", "mean")
    poses = settings.get("pose_estimator", "builtin")
    out = [f"# mvt4g eval: {bench}", ""]
    source = settings.get("source", {})
    out.append(f"Source: {source.get('kind', '?')} `{source.get('path', '')}`; {overall['videos']} video(s) scored; "
               f"frames {settings.get('frames') or 'per video'}; size {settings.get('size') or 'native'}; "
               f"camera metrics: `{convention}` convention ({CONVENTION_WORDS[convention]}), poses by `{poses}`.")  # fmt: skip
    out.append("")

    title, columns = PAPER_COLUMNS[bench]
    out += [f"## Paper columns: {title}", ""]
    notes: list[str] = []
    row = []
    for heading, metric, arrow in columns:
        value = overall["metrics"].get(metric)
        if value is None:
            reason = skipped.get(metric) or NOT_IMPLEMENTED.get(metric) or "not requested (--metrics)"
            notes.append(f"{_paper_heading(heading, metric, convention)}: {reason}")
            row.append(f"n/a[^{len(notes)}]")
        else:
            row.append(fmt(value))
    headers = [f"{_paper_heading(h, m, convention)} {a}" for h, m, a in columns]
    out += _md_table(["", *headers], [["this run", *row]])
    out.append("")
    out += [f"[^{i}]: {n}" for i, n in enumerate(notes, 1)]
    if notes:
        out.append("")

    paper = {m for _, m, _ in columns}
    extra = [m for m in metric_columns(report) if m not in paper]
    if extra:
        out += ["## Further metrics (weight-free)", ""]
        rows = [[m, fmt(overall["metrics"][m]), str(overall["n"][m]), info.get(m, {}).get("unit", ""),
                 info.get(m, {}).get("better", "")] for m in extra]  # fmt: skip
        out += _md_table(["metric", "mean", "videos", "unit", "better"], rows)
        out.append("")

    cols = metric_columns(report)
    if cols:
        out += ["## Per sequence", ""]
        rows = [[s["sequence"], str(s["videos"]), *[fmt(s["metrics"].get(c)) for c in cols]]
                for s in report["summary"]["per_sequence"]]  # fmt: skip
        out += _md_table(["sequence", "videos", *cols], rows)
        out += ["", "## Per video", ""]
        with_poses = any("pose" in v.get("details", {}) for v in report["videos"])
        rows = [[v["sequence"], v["trajectory"], *([_pose_cell(v)] if with_poses else []),
                 *[fmt(v["metrics"].get(c)) for c in cols]] for v in report["videos"]]  # fmt: skip
        out += _md_table(["sequence", "trajectory", *(["camera poses"] if with_poses else []), *cols], rows)
        out.append("")

    out += ["## Metrics: sources and settings", ""]
    for name, entry in info.items():
        out.append(f"- **{name}** ({entry.get('unit', '')}, {entry.get('better', '')} is better): "
                   f"{entry.get('source', '')}. {entry.get('settings', '')}")  # fmt: skip
    out.append("")
    skipped_videos = report["skipped"]["videos"]
    extra_videos = report["skipped"]["extra_videos"]
    if skipped or skipped_videos or extra_videos:
        out += ["## Skipped", ""]
        out += [f"- metric {name}: {reason}" for name, reason in skipped.items()]
        out += [f"- video {s['sequence']}/{s['trajectory']}: {s['reason']}" for s in skipped_videos]
        out += [f"- extra video (no such item, not scored): `{p}`" for p in extra_videos]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
