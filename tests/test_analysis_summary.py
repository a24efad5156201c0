"""Tables, min-max normalisation, harmonic mean, best layer and the heatmap pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mvt4g.analysis.correspondence import CORRESPONDENCE_TYPES, MetricSums
from mvt4g.analysis.summary import (
    add_harmonic_means,
    best_layer,
    harmonic_mean,
    json_table,
    metric_tables,
    minmax_normalise,
)

finite_tables = arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=st.floats(0, 1))


@settings(max_examples=60, deadline=None)
@given(finite_tables)
def test_minmax_normalise_spans_zero_to_one(table):
    norm = minmax_normalise(table)
    if np.ptp(table) > 0:
        assert norm.min() == 0.0 and norm.max() == pytest.approx(1.0)
        # Order is kept.
        assert np.array_equal(np.argsort(norm, axis=None, kind="stable"), np.argsort(table, axis=None, kind="stable"))
    else:
        assert np.all(norm == 1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_harmonic_mean_of_three_values(values):
    hm = float(harmonic_mean(*[np.array([[v]]) for v in values])[0, 0])
    if min(values) == 0:
        assert hm == 0.0
    else:
        assert hm == pytest.approx(3 / sum(1 / v for v in values))
        assert min(values) - 1e-12 <= hm <= max(values) + 1e-12
    assert hm == pytest.approx(float(harmonic_mean(*[np.array([[v]]) for v in values[::-1]])[0, 0]))


def test_nan_cells_stay_out_of_normalisation_and_best_layer():
    table = np.array([[0.2, np.nan], [0.6, 1.0], [np.nan, np.nan]])
    norm = minmax_normalise(table)
    np.testing.assert_allclose(norm[:2], [[0.0, np.nan], [0.5, 1.0]])
    assert np.isnan(norm[2]).all()
    assert np.isnan(harmonic_mean(norm, norm, norm)[0, 1])
    layer, score, ti = best_layer(table, [4, 7, 9])
    assert (layer, ti) == (7, 1) and score == pytest.approx(0.8)
    assert best_layer(np.full((2, 2), np.nan), [0, 1])[0] is None
    assert json_table(table)[0] == [0.2, None]


def _sums(pairs, correct, confidence, queries, attention) -> MetricSums:
    s = MetricSums()
    for name in CORRESPONDENCE_TYPES:
        t = s.types[name]
        t.pairs, t.correct, t.reliable, t.confidence = pairs, correct, correct, confidence
        t.queries, t.attention = queries, attention
    return s


def test_tables_and_harmonic_mean_pick_the_layer_where_all_three_are_high():
    # Layer 1 is best on all three metrics at both timesteps; layer 0 has the best PCK at t0 but
    # near-zero attention.
    cells = [
        [_sums(10, 9, 2.0, 5, 0.1), _sums(10, 2, 2.0, 5, 0.1)],
        [_sums(10, 8, 9.0, 5, 4.0), _sums(10, 7, 8.0, 5, 3.5)],
        [_sums(10, 1, 1.0, 5, 0.5), _sums(10, 1, 1.0, 5, 0.5)],
    ]
    tables = metric_tables(cells)
    np.testing.assert_allclose(tables["cross_view"]["pck"], [[0.9, 0.2], [0.8, 0.7], [0.1, 0.1]])
    np.testing.assert_allclose(tables["cross_view"]["attention"], [[0.02, 0.02], [0.8, 0.7], [0.1, 0.1]])
    add_harmonic_means(tables)
    hm = tables["cross_view"]["harmonic_mean"]
    # Independent computation of the definition.
    def norm(x):
        return (x - x.min()) / (x.max() - x.min())

    p, a, c = (norm(tables["cross_view"][m]) for m in ("pck", "attention", "confidence"))
    with np.errstate(divide="ignore"):
        want = np.where((p == 0) | (a == 0) | (c == 0), 0.0, 3 / (1 / p + 1 / a + 1 / c))
    np.testing.assert_allclose(hm, want)
    assert best_layer(hm, [0, 1, 2])[0] == 1
    assert hm[2].max() == 0.0  # the worst layer has the minimum PCK -> normalised 0


def test_type_without_pairs_gives_nan_tables():
    empty = MetricSums()
    tables = metric_tables([[empty]])
    assert all(math.isnan(tables[n]["pck"][0, 0]) for n in CORRESPONDENCE_TYPES)
    add_harmonic_means(tables)
    assert math.isnan(tables["cross_view"]["harmonic_mean"][0, 0])


def test_heatmap_pictures_are_written_atomically(tmp_path):
    from matplotlib.image import imread

    from mvt4g.analysis.plots import plot_layer_timestep, plot_query_attention

    rng = np.random.default_rng(0)
    tables = {n: {m: rng.random((4, 3)) for m in ("pck", "harmonic_mean")} for n in CORRESPONDENCE_TYPES}
    tables["ref_temporal"]["pck"][1, 2] = np.nan  # grey cell, no crash
    path = plot_layer_timestep(tables, [0, 1, 2, 3], [1000.0, 800.0, 400.0], ("pck", "harmonic_mean"), tmp_path / "h.png")
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png"]  # no temporary left behind
    frames = (rng.random((2, 5, 32, 48, 3)) * 255).astype(np.uint8)
    maps = rng.random((2, 5, 4, 6))
    path = plot_query_attention(frames, maps, 3, (20.0, 10.0), tmp_path / "q.png", max_columns=3)
    assert imread(path).shape[2] in (3, 4)
