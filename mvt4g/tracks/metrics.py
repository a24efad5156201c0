"""TAP-Vid metrics for multi-view tracks (docs/FACTS.md section 5), reported per pair type.

For every track n and every scored (view, frame) of it:

- coordinates of both prediction and ground truth are rescaled to a 256 x 256 image;
- ``within_d`` = distance < d (strict) for d in {1, 2, 4, 8, 16} px;
- ``pts_within_d`` = (#GT-visible points within d) / (#GT-visible points); the prediction's
  visibility flag plays no part. ``delta_avg`` = mean over d;
- ``occlusion_accuracy`` = fraction of scored points whose predicted visibility equals the GT's;
- ``jaccard_d`` = TP / (#GT-visible + FP) with TP = GT-visible AND predicted visible AND within d,
  FP = predicted visible AND NOT (GT-visible AND within d); ``average_jaccard`` = mean over d.

Sums run over every scored point of one TrackSet (one clip); to average over clips, average the
per-clip numbers (as TAP-Vid averages over videos).

Which (view, frame) pairs are scored, for a query at (view q, frame s); the query's own
(q, s) is never scored:

- ``temporal``: view q, frames != s (TAP-Vid within one video);
- ``cross_view``: every other view, all frames (same instant s included: that is the
  cross-view association itself);
- ``all``: the union.

Query mode ``first`` keeps only frames after the query frame for ``temporal`` and frames at or
after it for ``cross_view`` (forward tracking, as TAP-Vid's "first" mode); ``strided`` keeps
every frame (TAP-Vid's strided mode scores all frames but the query's).
"""

from __future__ import annotations

import math

import numpy as np

from mvt4g.errors import InputError
from mvt4g.tracks.format import TrackSet

THRESHOLDS = (1, 2, 4, 8, 16)
PAIR_TYPES = ("temporal", "cross_view", "all")
QUERY_MODES = ("first", "strided")
METRIC_SIZE = 256


def evaluation_masks(queries: np.ndarray, num_views: int, num_frames: int, mode: str = "first") -> dict[str, np.ndarray]:
    """Which (view, frame, track) entries each pair type scores: bool ``[V, T, N]`` per pair type."""
    if mode not in QUERY_MODES:
        raise InputError(f"query mode must be one of {', '.join(QUERY_MODES)}, got {mode!r}")
    q = np.asarray(queries)
    qv = q[:, 0].astype(np.int64)[None, None, :]
    qt = q[:, 1].astype(np.int64)[None, None, :]
    views = np.arange(num_views)[:, None, None]
    frames = np.arange(num_frames)[None, :, None]
    same_view = views == qv
    if mode == "first":
        temporal = same_view & (frames > qt)
        cross = ~same_view & (frames >= qt)
    else:
        temporal = same_view & (frames != qt)
        cross = ~same_view & np.ones_like(frames, dtype=bool)
    temporal = np.broadcast_to(temporal, (num_views, num_frames, q.shape[0]))
    cross = np.broadcast_to(cross, (num_views, num_frames, q.shape[0]))
    return {"temporal": temporal, "cross_view": cross, "all": temporal | cross}


def tapvid_scores(
    pred_tracks: np.ndarray,
    pred_visible: np.ndarray,
    gt_tracks: np.ndarray,
    gt_visible: np.ndarray,
    mask: np.ndarray,
    image_size: tuple[int, int],
) -> dict[str, float | int | None]:
    """TAP-Vid numbers over the entries where ``mask`` is true.

    Args:
        pred_tracks, gt_tracks: float ``[..., 2]`` pixel (x, y) in an image of ``image_size`` (H, W).
        pred_visible, gt_visible, mask: bool ``[...]``.

    Returns a dict: occlusion_accuracy, delta_avg, average_jaccard, pts_within_d and jaccard_d
    per threshold, ``points`` (scored entries) and ``visible`` (GT-visible scored entries).
    Ratios with an empty denominator are None.
    """
    h, w = image_size
    scale = np.array([METRIC_SIZE / w, METRIC_SIZE / h])
    mask = np.asarray(mask, dtype=bool)
    pv = np.asarray(pred_visible, dtype=bool)[mask]
    gv = np.asarray(gt_visible, dtype=bool)[mask]
    diff = (np.asarray(pred_tracks, np.float64)[mask] - np.asarray(gt_tracks, np.float64)[mask]) * scale
    with np.errstate(invalid="ignore"):
        dist = np.sqrt((diff**2).sum(-1))
    dist = np.where(np.isfinite(dist), dist, np.inf)  # a NaN guess for a hidden point is never "within"
    points, visible = int(mask.sum()), int(gv.sum())
    out: dict[str, float | int | None] = {}
    out["occlusion_accuracy"] = _ratio(int((pv == gv).sum()), points)
    within_all, jac_all = [], []
    for d in THRESHOLDS:
        within = dist < d
        correct = within & gv
        tp = int((correct & pv).sum())
        fp = int((pv & ~correct).sum())
        out[f"pts_within_{d}"] = _ratio(int(correct.sum()), visible)
        out[f"jaccard_{d}"] = _ratio(tp, visible + fp)
        within_all.append(out[f"pts_within_{d}"])
        jac_all.append(out[f"jaccard_{d}"])
    out["delta_avg"] = None if visible == 0 else float(np.mean(within_all))
    out["average_jaccard"] = None if visible == 0 else float(np.mean(jac_all))
    out["points"] = points
    out["visible"] = visible
    return out


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def check_comparable(pred: TrackSet, gt: TrackSet, *, atol: float = 1e-3) -> None:
    """Raise :class:`InputError` unless ``pred`` tracks the same queries in the same views and images as ``gt``."""
    if pred.tracks.shape != gt.tracks.shape:
        raise InputError(
            f"prediction has [V, T, N] = {list(pred.tracks.shape[:3])}, ground truth {list(gt.tracks.shape[:3])}: "
            "not the same queries (make the prediction with --queries-from the ground-truth file)"
        )
    if tuple(pred.image_size) != tuple(gt.image_size):
        raise InputError(f"prediction is for {pred.image_size} (H, W) images, ground truth for {gt.image_size}")
    if pred.views is not None and gt.views is not None and list(pred.views) != list(gt.views):
        raise InputError(f"prediction views {pred.views} differ from ground-truth views {gt.views}")
    bad = np.abs(pred.queries.astype(np.float64) - gt.queries.astype(np.float64)).max(axis=1) > atol
    if bad.any():
        first = int(np.argmax(bad))
        raise InputError(
            f"{int(bad.sum())} of {len(bad)} queries differ from the ground truth (first: #{first}, "
            f"{pred.queries[first].tolist()} vs {gt.queries[first].tolist()}): not the same queries "
            "(make the prediction with --queries-from the ground-truth file)"
        )


def score_tracks(pred: TrackSet, gt: TrackSet, mode: str = "first", subset: np.ndarray | None = None) -> dict[str, dict]:
    """TAP-Vid metrics of ``pred`` against ``gt`` for each pair type (``temporal``, ``cross_view``, ``all``).

    Both must hold the same queries (checked). ``subset``: bool ``[N]``, score only these tracks
    (e.g. the queries on moving objects; the sums run over them alone, as if the others were
    not there). Returns ``{pair_type: tapvid_scores(...)}``.
    """
    check_comparable(pred, gt)
    masks = evaluation_masks(gt.queries, gt.num_views, gt.num_frames, mode)
    if subset is not None:
        keep = np.asarray(subset, bool)
        if keep.shape != (gt.queries.shape[0],):
            raise InputError(f"subset has shape {list(keep.shape)}, expected [{gt.queries.shape[0]}] (one per query)")
        masks = {name: mask & keep[None, None, :] for name, mask in masks.items()}
    return {
        name: tapvid_scores(pred.tracks, pred.visible, gt.tracks, gt.visible, mask, gt.image_size)
        for name, mask in masks.items()
    }


def mean_scores(per_clip: list[dict[str, dict]]) -> dict[str, dict]:
    """Average per-clip results of :func:`score_tracks` (None entries are skipped; counts are summed)."""
    out: dict[str, dict] = {}
    for pair in PAIR_TYPES:
        rows = [r[pair] for r in per_clip if pair in r]
        if not rows:
            continue
        merged: dict[str, float | int | None] = {}
        for key in rows[0]:
            vals = [row[key] for row in rows if row[key] is not None]
            if key in ("points", "visible"):
                merged[key] = int(sum(vals))
            else:
                merged[key] = float(np.mean(vals)) if vals else None
        out[pair] = merged
    return out


def format_table(scores: dict[str, dict]) -> str:
    """A small fixed-width table of the headline numbers (for stderr)."""
    lines = [f"{'pairs':<11} {'delta_avg':>9} {'AJ':>7} {'OA':>7} {'points':>9} {'visible':>9}"]
    for pair, row in scores.items():
        lines.append(
            f"{pair:<11} {_fmt(row['delta_avg']):>9} {_fmt(row['average_jaccard']):>7} "
            f"{_fmt(row['occlusion_accuracy']):>7} {row['points']:>9} {row['visible']:>9}"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
