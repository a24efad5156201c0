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

Standing out (:func:`layer_verdict`): the layer with the highest cross-view PCK, pooled over
the analysed timesteps, is *named* best only when that PCK is (a) at least twice the chance
level and above it by at least ``Z_CHANCE`` standard errors (over query points), and (b) above
every other layer's by at least ``Z_MARGIN`` standard errors of the difference; otherwise the
report says "no layer stands out" and names none. (The harmonic-mean choice above is reported
beside it, as the paper's criterion; it mixes in attention mass and confidence, which reward
peaked attention whether or not it lands on the right token.) Chance (:func:`chance_pck`) is a matcher that picks forward and backward tokens uniformly
at random: both must land within ``delta_px`` of their points, so chance PCK is
``pbar^2``, with ``pbar`` the share of token centres within ``delta_px`` of a point, averaged
over points spread uniformly over the image.
"""

from __future__ import annotations

import math

import numpy as np

from mvt4g.analysis.correspondence import CORRESPONDENCE_TYPES, MetricSums

METRICS = ("pck", "attention", "confidence", "reliable")
BEST_LAYER_TYPE = "cross_view"
#: Standard errors above chance, and above the runner-up layer, for a layer to stand out.
Z_CHANCE = 3.0
Z_MARGIN = 2.0


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


def chance_pck(image_size: tuple[int, int], grid: tuple[int, int], delta_px: float, samples_per_px: int = 4) -> float:
    """PCK of uniformly random forward and backward matches on an ``grid`` = (h, w) token grid.

    ``pbar``: the share of token centres within ``delta_px`` of a point, averaged over a regular
    grid of ``samples_per_px``^2 points per pixel of the ``image_size`` = (H, W) image; chance
    PCK = ``pbar^2`` (both matches must land near their points, independently).
    """
    height, width = image_size
    h, w = grid
    sy, sx = height / h, width / w
    cy = (np.arange(h) + 0.5) * sy
    cx = (np.arange(w) + 0.5) * sx
    py = (np.arange(height * samples_per_px) + 0.5) / samples_per_px
    px = (np.arange(width * samples_per_px) + 0.5) / samples_per_px
    # Separable count: for each point, how many (cy, cx) pairs satisfy dy^2 + dx^2 <= delta^2.
    dy2 = (py[:, None] - cy[None, :]) ** 2  # [Py, h]
    dx2 = (px[:, None] - cx[None, :]) ** 2  # [Px, w]
    total = 0.0
    for row in dy2:  # one image row of points at a time: [Px, h, w] stays small
        total += float(((row[None, :, None] + dx2[:, None, :]) <= delta_px**2).sum())
    pbar = total / (len(py) * len(px) * h * w)
    return pbar * pbar


def pooled_layer_pck(cells: list[list[MetricSums]], kind: str = BEST_LAYER_TYPE) -> list[tuple[float, float]]:
    """Per layer, (PCK, standard error) of ``kind`` pooled over the timesteps (NaN without pairs)."""
    out = []
    for row in cells:
        pooled = MetricSums()
        for cell in row:
            pooled.add(cell)
        t = pooled.types[kind]
        out.append((t.correct / t.pairs if t.pairs else math.nan, t.pck_se()))
    return out


def pck_leader(layer_pck: list[tuple[float, float]], layers: list[int]) -> int | None:
    """The layer with the highest pooled PCK (ties: the earlier layer); None when none has pairs."""
    finite = [(p, -i) for i, (p, _) in enumerate(layer_pck) if math.isfinite(p)]
    return layers[-max(finite)[1]] if finite else None


def layer_verdict(layer_pck: list[tuple[float, float]], layers: list[int], candidate: int | None, chance: float) -> dict:
    """Whether ``candidate`` (normally :func:`pck_leader`) stands out (module docstring).

    Returns {"stands_out", "reason", "margin_over_chance_se", "margin_over_runner_up_se", "runner_up"}.
    """
    if candidate is None:
        return {"stands_out": False, "reason": "no layer had any cross-view pair"}
    i = layers.index(candidate)
    pck, se = layer_pck[i]
    if not math.isfinite(pck) or not math.isfinite(se):
        return {"stands_out": False, "reason": "too few query points for a standard error"}
    z_chance = (pck - chance) / se if se > 0 else (math.inf if pck > chance else -math.inf)
    others = [(layers[j], p, e) for j, (p, e) in enumerate(layer_pck) if j != i and math.isfinite(p)]
    runner = max(others, key=lambda t: t[1], default=None)
    if runner is None:
        z_margin = math.inf
    else:
        spread = math.sqrt(se**2 + (runner[2] if math.isfinite(runner[2]) else 0.0) ** 2)
        z_margin = (pck - runner[1]) / spread if spread > 0 else (math.inf if pck > runner[1] else -math.inf)
    out = {"margin_over_chance_se": _finite(z_chance), "margin_over_runner_up_se": _finite(z_margin),
           "runner_up": None if runner is None else runner[0]}  # fmt: skip
    if pck < 2 * chance or z_chance < Z_CHANCE:
        out.update(stands_out=False, reason=f"its cross-view PCK {pck:.4f} is not clearly above chance {chance:.4f}")
    elif z_margin < Z_MARGIN:
        out.update(stands_out=False, reason=f"its cross-view PCK {pck:.4f} is within noise of layer {runner[0]}'s {runner[1]:.4f}")
    else:
        out.update(stands_out=True, reason=f"cross-view PCK {pck:.4f} vs chance {chance:.4f} and runner-up {runner[1] if runner else math.nan:.4f}")
    return out


def _finite(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None
