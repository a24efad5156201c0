"""tracks.npz: the validating writer and reader (mvt4g.tracks.format)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import InputError
from mvt4g.tracks.format import (
    FORMAT_VERSION,
    TrackSet,
    read_input_key,
    read_tracks,
    write_tracks,
)


def _trackset(V=2, T=3, N=4, seed=0, views=True) -> TrackSet:
    rng = np.random.default_rng(seed)
    q = np.stack([rng.integers(0, V, N), rng.integers(0, T, N), rng.uniform(0, 20, N), rng.uniform(0, 10, N)], 1)
    return TrackSet(
        rng.uniform(0, 20, (V, T, N, 2)), rng.random((V, T, N)) < 0.7, q, (10, 20), "test",
        [f"cam{i:02d}" for i in range(V)] if views else None,
    )


def test_roundtrip_keeps_every_field(tmp_path):
    ts = _trackset()
    path = tmp_path / "t.npz"
    write_tracks(path, ts, input_key="abc")
    back = read_tracks(path)
    np.testing.assert_array_equal(back.tracks, ts.tracks)
    np.testing.assert_array_equal(back.visible, ts.visible)
    np.testing.assert_array_equal(back.queries, ts.queries)
    assert back.image_size == (10, 20) and back.method == "test" and back.views == ts.views
    assert read_input_key(path) == "abc"
    with np.load(path) as data:
        assert str(data["format_version"]) == FORMAT_VERSION
        assert data["tracks"].dtype == np.float32 and data["visible"].dtype == bool
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temporary file left behind


def test_views_are_optional_and_nan_at_hidden_points_is_stored_as_zero(tmp_path):
    ts = _trackset(views=False)
    ts.tracks[~ts.visible] = np.nan
    write_tracks(tmp_path / "t.npz", ts)
    back = read_tracks(tmp_path / "t.npz")
    assert back.views is None and read_input_key(tmp_path / "t.npz") is None
    assert np.isfinite(back.tracks).all() and (back.tracks[~back.visible] == 0).all()


@settings(max_examples=25, deadline=None)
@given(V=st.integers(1, 3), T=st.integers(1, 4), N=st.integers(0, 5), seed=st.integers(0, 99))
def test_roundtrip_property(tmp_path_factory, V, T, N, seed):
    ts = _trackset(V, T, N, seed)
    path = tmp_path_factory.mktemp("rt") / "t.npz"
    write_tracks(path, ts)
    back = read_tracks(path)
    assert back.tracks.shape == (V, T, N, 2)
    np.testing.assert_array_equal(back.visible, ts.visible)


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: d.update(tracks=np.zeros((2, 3, 4))), "tracks must have shape"),
        (lambda d: d.update(visible=np.ones((2, 3, 5), bool)), "visible has shape"),
        (lambda d: d.update(queries=np.zeros((3, 4))), "queries has shape"),
        (lambda d: d["queries"].__setitem__((0, 0), 7), "query view out of range"),
        (lambda d: d["queries"].__setitem__((0, 1), 1.5), "must be integers"),
        (lambda d: d["tracks"].__setitem__((0, 0, 0, 0), np.nan), "NaN or inf at visible"),
        (lambda d: d.update(image_size=(0, 5)), "image_size"),
        (lambda d: d.update(views=["a"]), "view names"),
    ],
)
def test_trackset_validation(change, needle):
    ts = _trackset()
    ts.visible[0, 0, 0] = True
    fields = {"tracks": ts.tracks.copy(), "visible": ts.visible.copy(), "queries": ts.queries.copy(),
              "image_size": ts.image_size, "method": "m", "views": ts.views}
    change(fields)
    with pytest.raises(InputError, match=needle):
        TrackSet(**fields)


def _save(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_reader_refuses_bad_files_with_one_line(tmp_path):
    good = _trackset()
    base = {"tracks": good.tracks, "visible": good.visible, "queries": good.queries,
            "image_size": np.array([10, 20]), "method": np.array("m"), "format_version": np.array("1")}
    cases = {}
    cases["missing.npz"] = None
    (tmp_path / "text.npz").write_text("not a zip")
    cases["text.npz"] = "not a readable .npz"
    no_keys = dict(base)
    del no_keys["visible"], no_keys["queries"]
    _save(tmp_path / "keys.npz", **no_keys)
    cases["keys.npz"] = "missing visible, queries"
    nan = dict(base, tracks=np.where(good.visible[..., None], good.tracks, np.nan))
    _save(tmp_path / "nan.npz", **nan)
    cases["nan.npz"] = "NaN"
    _save(tmp_path / "shape.npz", **dict(base, visible=np.ones((2, 3), bool)))
    cases["shape.npz"] = "visible has shape"
    _save(tmp_path / "version.npz", **dict(base, format_version=np.array("9")))
    cases["version.npz"] = "format_version"
    for name, needle in cases.items():
        with pytest.raises(InputError) as err:
            read_tracks(tmp_path / name)
        message = str(err.value)
        assert "\n" not in message and name in message
        if needle:
            assert needle in message, message
