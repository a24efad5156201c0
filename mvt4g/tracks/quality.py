"""Quality signals of a clip's tracks, read from the tracks alone (no ground truth needed).

For V views, T frames and N tracks (track n defined at query view q_n, frame s_n):

- ``visible``: the fraction of all ``[V, T, N]`` entries that are visible;
- ``own_view``: the fraction of (track, frame != s_n) visible in the query's own view q_n. For
  the flow method a point there is visible only while its chain of optical flow passes the
  forward-backward check at every step (:mod:`mvt4g.tracks.flow.chains`), so this is the share
  of chained steps that are forward-backward consistent; for exact and geometry tracks it is
  how much of its own view a point stays in and unoccluded;
- ``cross_view``: the fraction of (track, other view, frame) visible;
- ``associated``: the fraction of (track, other view) pairs in which the track is visible at
  some frame: for the flow method, queries that were associated across views and kept
  (the epipolar drift check and the static-point fit may drop some afterwards).

These come from the track file, so a clip that a rerun skips (its tracks current) reports the
same numbers as the run that wrote them. The flow method's own counts, known only to the run
that computes the tracks (:func:`flow_counts`), add ``association_rate`` (associations accepted
at the key frames / tried), the static share and the re-association and drift counts.

    from mvt4g.tracks.quality import quality_of, summarize, format_quality_table

    row["quality"] = quality_of(trackset.visible, trackset.queries)
    print(format_quality_table(rows))       # a CLI prints it; the core only makes the text
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: The keys of :func:`quality_of`, in table order.
SIGNALS = ("visible", "own_view", "cross_view", "associated")
#: Column titles of :func:`format_quality_table` for :data:`SIGNALS`.
TITLES = {"visible": "visible", "own_view": "own view", "cross_view": "cross view", "associated": "associated"}


def quality_of(visible: np.ndarray, queries: np.ndarray) -> dict[str, float | None]:
    """The signals of the module docstring for ``visible`` bool ``[V, T, N]`` and ``queries`` ``[N, 4]``.

    A signal with nothing to measure (no tracks; one view: no other views; one frame) is ``None``.
    """
    visible = np.asarray(visible, bool)
    V, T, N = visible.shape
    qv = np.asarray(queries)[:, 0].astype(np.int64)
    qt = np.asarray(queries)[:, 1].astype(np.int64)
    n = np.arange(N)
    own = visible[qv, :, n]  # [N, T]
    own_other_frames = own.sum() - own[n, qt].sum()
    other = np.ones((V, N), bool)
    other[qv, n] = False  # [V, N]: views other than each track's own
    seen_in = visible.any(axis=1)  # [V, N]
    pairs = int(other.sum())

    def frac(count: float, total: float) -> float | None:
        return round(float(count) / total, 4) if total else None

    return {
        "visible": frac(visible.sum(), visible.size),
        "own_view": frac(own_other_frames, N * (T - 1)),
        "cross_view": frac((visible & other[:, None, :]).sum(), pairs * T),
        "associated": frac((seen_in & other).sum(), pairs),
    }


def read_quality(path: str | Path) -> tuple[dict[str, float | None], tuple[int, int, int]] | None:
    """:func:`quality_of` a track file's ``visible`` and ``queries`` (the coordinates are not read)
    and its ``(V, T, N)``; ``None`` when the file cannot be read as a track file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            visible, queries = data["visible"], data["queries"]
        if visible.ndim != 3 or queries.shape != (visible.shape[2], 4):
            return None
        return quality_of(visible, queries), visible.shape
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, IndexError):
        return None


def flow_counts(report: object, num_tracks: int) -> dict[str, float | int | None]:
    """The flow method's own counts from its :class:`~mvt4g.tracks.flow.pipeline.FlowReport`:
    ``association_rate`` (accepted / tried at the key frames), ``static`` (share of tracks
    proven static), ``reassociated``, ``drift_dropped`` and ``verified`` (raw counts)."""
    tried = int(getattr(report, "association_tried", 0))
    return {
        "association_rate": round(int(getattr(report, "associated", 0)) / tried, 4) if tried else None,
        "static": round(int(getattr(report, "static", 0)) / num_tracks, 4) if num_tracks else None,
        "reassociated": int(getattr(report, "reassociated", 0)),
        "drift_dropped": int(getattr(report, "drift_dropped", 0)),
        "verified": int(getattr(report, "verified", 0)),
    }


def summarize(rows: Sequence[dict]) -> dict:
    """Counts of rows by ``status`` and the mean of each signal over the rows that have it.

    ``rows`` are :func:`mvt4g.tracks.compute.run_track_job` rows (a ``quality`` dict when the
    clip has tracks) and failed rows (``status`` ``"failed"``).
    """
    out: dict = {"clips": len(rows)}
    for status in ("written", "current", "exact", "failed"):
        out[status] = sum(r.get("status") == status for r in rows)
    means: dict[str, float | None] = {}
    for key in SIGNALS:
        vals = [r["quality"][key] for r in rows if r.get("quality") and r["quality"].get(key) is not None]
        means[key] = round(float(np.mean(vals)), 4) if vals else None
    out["mean"] = means
    rates = [r["flow"]["association_rate"] for r in rows if r.get("flow") and r["flow"].get("association_rate") is not None]
    if rates:
        out["mean"]["association_rate"] = round(float(np.mean(rates)), 4)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_quality_table(rows: Sequence[dict], names: Sequence[str] | None = None) -> str:
    """A plain-text table: one line per clip (``names``: the clip column, default the rows' ``clip``)
    with its method, status, track count and signals; failed clips show their status only;
    a last line holds the means (:func:`summarize`)."""
    names = list(names) if names is not None else [str(r.get("clip", "")) for r in rows]
    head = ["clip", "method", "status", "tracks", *(TITLES[k] for k in SIGNALS)]
    body = []
    for name, r in zip(names, rows, strict=True):
        q = r.get("quality") or {}
        tracks = r.get("tracks")
        body.append([name, str(r.get("method", "-")), str(r.get("status", "-")), "-" if tracks is None else str(tracks),
                     *(_pct(q.get(k)) for k in SIGNALS)])  # fmt: skip
    summary = summarize(rows)
    body.append(["mean", "", f"{len(rows) - summary['failed']} ok", "", *(_pct(summary["mean"][k]) for k in SIGNALS)])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def fmt(line: list[str]) -> str:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1]), line[2].ljust(widths[2])]
        cells += [c.rjust(w) for c, w in zip(line[3:], widths[3:], strict=True)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *map(fmt, body[:-1]), rule, fmt(body[-1])])
