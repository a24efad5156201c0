"""Layer x timestep tables, the harmonic mean of the normalised metrics, and the best layer.

For each correspondence type the analysis fills three ``[layers, timesteps]`` tables: PCK,
attention score and confidence score (pooled over clips, pairs, query points and frames,
:mod:`mvt4g.analysis.correspondence`). As in the paper (App. A.2) and the public DiffTrack
code, each table is min-max normalised over all its cells,

    norm(X) = (X - min X) / (max X - min X),

and the harmonic mean of the three normalised tables is taken cell by cell,

    HM = 3 / (1 / norm(PCK) + 1 / norm(attention) + 1 / norm(confidence)),

which is 0 wherever one of them is 0 (its limit). Choices: a table whose cells are all equal
carries no ranking and normalises to 1 everywhere (neutral in the harmonic mean); cells without
any query pair (NaN) are left out of the min and max and stay NaN.

Best layer: the layer whose cross-view harmonic mean, averaged over the analysed timesteps, is
highest (the paper picks its correspondence-specialised layer from the cross-view results);
ties go to the earlier layer. The best layer of each type is reported too.
"""

from __future__ import annotations

import math

import numpy as np

from mvt4g.analysis.correspondence import CORRESPONDENCE_TYPES, MetricSums

METRICS = ("pck", "attention", "confidence", "reliable")
BEST_LAYER_TYPE = "cross_view"


def metric_tables(cells: list[list[MetricSums]]) -> dict[str, dict[str, np.ndarray]]:
    """``cells[layer][timestep]`` pooled sums -> ``{type: {metric: [L, T] float64}}``."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in CORRESPONDENCE_TYPES:
        tables = {m: np.full((len(cells), len(cells[0]) if cells else 0), np.nan) for m in METRICS}
        for li, row in enumerate(cells):
            for ti, sums in enumerate(row):
                means = sums.types[name].means()
                for m in METRICS:
                    tables[m][li, ti] = means[m]
        out[name] = tables
    return out


def minmax_normalise(table: np.ndarray) -> np.ndarray:
    """Min-max over all finite cells; a constant table -> ones; NaN cells stay NaN."""
    table = np.asarray(table, dtype=np.float64)
    finite = np.isfinite(table)
    if not finite.any():
        return table.copy()
    lo, hi = table[finite].min(), table[finite].max()
    if hi - lo <= 0:
        return np.where(finite, 1.0, np.nan)
    return (table - lo) / (hi - lo)


def harmonic_mean(*tables: np.ndarray) -> np.ndarray:
    """Cell-wise harmonic mean of already normalised tables; 0 where any is 0, NaN where any is NaN."""
    stack = np.stack([np.asarray(t, dtype=np.float64) for t in tables])
    nan = np.isnan(stack).any(axis=0)
    zero = (stack <= 0).any(axis=0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hm = len(tables) / np.sum(1.0 / stack, axis=0)
    hm = np.where(zero, 0.0, hm)
    return np.where(nan, np.nan, hm)


def add_harmonic_means(tables: dict[str, dict[str, np.ndarray]]) -> None:
    """Add ``"harmonic_mean"`` to each type's tables (in place)."""
    for per_type in tables.values():
        per_type["harmonic_mean"] = harmonic_mean(
            minmax_normalise(per_type["pck"]),
            minmax_normalise(per_type["attention"]),
            minmax_normalise(per_type["confidence"]),
        )


def best_layer(table: np.ndarray, layers: list[int]) -> tuple[int | None, float, int | None]:
    """(layer, its timestep-averaged score, index of its best timestep); (None, nan, None) if all NaN."""
    table = np.asarray(table, dtype=np.float64)
    if not np.isfinite(table).any():
        return None, math.nan, None
    with np.errstate(invalid="ignore"):
        per_layer = np.array([np.nanmean(r) if np.isfinite(r).any() else -np.inf for r in table])
    li = int(np.argmax(per_layer))
    row = np.where(np.isfinite(table[li]), table[li], -np.inf)
    return layers[li], float(per_layer[li]), int(np.argmax(row))


def json_table(table: np.ndarray, digits: int = 6) -> list[list[float | None]]:
    """``[L, T]`` -> nested lists with NaN as null (JSON has no NaN)."""
    return [[None if not math.isfinite(v) else round(float(v), digits) for v in row] for row in np.asarray(table)]
