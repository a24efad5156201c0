"""benchmarks/tracks.py's split of synth queries into static and moving (the per-query-type table)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # it imports _common from beside it
    try:
        spec = importlib.util.spec_from_file_location("tracks_benchmark", ROOT / "benchmarks" / "tracks.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_moving_objects_are_those_whose_motion_is_not_still():
    bench = _bench()
    still = {"start": [0, 0, 1], "velocity": [0, 0, 0], "accel": [0, 0, 0], "wobble": [0, 0, 0], "hop": 0.0, "spin": 0.0}
    meta = {"scene": {"objects": [
        {"motion": {**still, "velocity": [0.3, 0.0, 0.0]}},  # id 1: slides
        {"motion": still},  # id 2: stands
        {"motion": {**still, "spin": 1.5}},  # id 3: turns in place
        {"motion": {**still, "hop": 0.4}},  # id 4: hops
    ]}}  # fmt: skip
    assert bench.moving_ids(meta) == {1, 3, 4}
    assert bench.moving_ids({}) == set()


def test_a_query_is_moving_when_its_pixel_shows_a_moving_object():
    bench = _bench()
    rng = np.random.default_rng(3)
    masks = [rng.integers(0, 4, (3, 6, 8)) for _ in range(2)]
    q = np.stack([rng.integers(0, 2, 50), rng.integers(0, 3, 50), rng.uniform(0, 8, 50), rng.uniform(0, 6, 50)], 1)
    got = bench.moving_queries(q, masks, {1, 3})
    # Pixel (col, row) holds the point (x, y) with pixel centres at +0.5: col = floor(x).
    want = [masks[int(v)][int(t), int(y), int(x)] in (1, 3) for v, t, x, y in q]
    np.testing.assert_array_equal(got, want)
