"""The benchmarks of ``mvt4g eval``: what is scored, against what, on which data.

A benchmark lists its items, ``(sequence, trajectory)`` pairs, without reading any frames
(:meth:`Benchmark.keys`), then loads one sequence at a time (:meth:`Benchmark.load`) as
:class:`BenchItem` objects: the reference video, the cameras it was filmed with (or ``None``
when nobody knows them), the target cameras the generated video should follow, and, where the
dataset has them, the ground-truth target frames and masks.

* ``davis`` (:mod:`.davis`): DAVIS 2017 sequences x camera-trajectory presets; no ground truth.
* ``iphone`` (:mod:`.iphone`): DyCheck iPhone; reference = handheld camera 0, targets = the
  validation cameras 1 and 2 at the same time ids, with their frames and covisibility masks.
* ``synthetic`` (:mod:`.synthetic`): ``mvt4g synth`` clips; reference = the clip's reference
  view, targets = every other view, exact frames and cameras.

Sizes and lengths: a benchmark returns its data at the dataset's own resolution and length.
:meth:`BenchItem.fit` cuts every array to the first ``frames`` frames and, when a scoring size
is given, resizes them to cover it and centre-crops (``mvt4g.io.frames.resize_cover``, the
policy ``mvt4g generate`` applies to references; masks with nearest-neighbour sampling,
cameras with ``ViewCameras.resized_cover``), so pixels and cameras stay consistent.
"""

from __future__ import annotations

from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.eval.bench.items import BenchItem, Benchmark, parse_names, select

BENCH_NAMES = ("davis", "iphone", "synthetic")


def open_bench(
    name: str,
    data_root: str | Path,
    *,
    sequences: list[str] | None = None,
    trajectories: list[str] | None = None,
    fov_deg: float | None = None,
) -> Benchmark:
    """Open benchmark ``name`` on ``data_root``; checks the layout and lists the items (no frames read)."""
    if name == "davis":
        from mvt4g.eval.bench.davis import DavisBench

        return DavisBench(data_root, sequences=sequences, trajectories=trajectories, fov_deg=fov_deg)
    if fov_deg is not None:
        raise InputError(f"--fov is for the davis benchmark (the {name} benchmark has its own cameras)")
    if name == "iphone":
        from mvt4g.eval.bench.iphone import IphoneBench

        return IphoneBench(data_root, sequences=sequences, trajectories=trajectories)
    if name == "synthetic":
        from mvt4g.eval.bench.synthetic import SyntheticBench

        return SyntheticBench(data_root, sequences=sequences, trajectories=trajectories)
    raise InputError(f"unknown benchmark {name!r} (choose {', '.join(BENCH_NAMES)})")


__all__ = ["BENCH_NAMES", "BenchItem", "Benchmark", "open_bench", "parse_names", "select"]
