"""Tables, min-max normalisation, harmonic mean, best layer and the heatmap pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mvt4g.analysis.correspondence import CORRESPONDENCE_TYPES, MetricSums, TypeSums
from mvt4g.analysis.summary import (
    add_harmonic_means,
    best_layer,
    chance_pck,
    harmonic_mean,
    json_table,
    layer_verdict,
    metric_tables,
    minmax_normalise,
    pck_leader,
    pooled_layer_pck,
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


@pytest.mark.slow
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


def test_chance_pck_small_delta_is_the_disc_area_squared():
    # delta below half a token: a point is near at most one centre, so the mean share of
    # centres within delta is (discs' area) / (image area) / (tokens) = pi delta^2 / (H W).
    pbar = math.pi * 1.5**2 / (32 * 48)
    assert chance_pck((32, 48), (8, 12), 1.5, samples_per_px=16) == pytest.approx(pbar**2, rel=0.02)


def test_chance_pck_huge_delta_is_one_and_it_grows_with_delta():
    assert chance_pck((16, 16), (4, 4), 100.0) == pytest.approx(1.0)
    values = [chance_pck((16, 16), (4, 4), d) for d in (1.0, 2.0, 4.0, 8.0)]
    assert values == sorted(values) and values[0] < values[-1]


def test_layer_verdict_names_a_layer_only_when_it_stands_out():
    layers = [0, 1, 2]
    chance = 0.0025
    # Chance-level layers (the random or untrained backbone): nothing stands out.
    flat = [(0.002, 0.001), (0.004, 0.0015), (0.003, 0.001)]
    v = layer_verdict(flat, layers, 1, chance)
    assert not v["stands_out"] and "chance" in v["reason"]
    # One layer far above chance but within noise of another: no difference.
    close = [(0.20, 0.02), (0.22, 0.02), (0.01, 0.005)]
    v = layer_verdict(close, layers, 1, chance)
    assert not v["stands_out"] and v["runner_up"] == 0 and "noise" in v["reason"]
    # A clear winner.
    clear = [(0.05, 0.01), (0.40, 0.02), (0.10, 0.01)]
    v = layer_verdict(clear, layers, 1, chance)
    assert v["stands_out"] and v["runner_up"] == 2 and v["margin_over_runner_up_se"] > 2
    # A candidate that is not the PCK leader is not named either.
    assert not layer_verdict(clear, layers, 2, chance)["stands_out"]
    assert pck_leader(clear, layers) == 1 and pck_leader([(math.nan, math.nan)], [0]) is None
    assert pck_leader([(0.3, 0.01), (0.3, 0.01)], [4, 7]) == 4  # ties: the earlier layer
    assert not layer_verdict(clear, layers, None, chance)["stands_out"]


def test_pooled_layer_pck_pools_timesteps():
    a, b = MetricSums(), MetricSums()
    a.types["cross_view"] = TypeSums(pairs=4, correct=2, queries=2, correct_sq=2, pairs_sq=8, correct_pairs=4)
    b.types["cross_view"] = TypeSums(pairs=6, correct=0, queries=2, correct_sq=0, pairs_sq=18, correct_pairs=0)
    (pck, se), = pooled_layer_pck([[a, b]])
    assert pck == pytest.approx(0.2) and se > 0
