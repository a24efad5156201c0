"""Multi-view point tracks: the ``tracks.npz`` format, TAP-Vid metrics, and track generators.

    from mvt4g.tracks import TrackSet, read_tracks, write_tracks
    from mvt4g.tracks import TrackOptions, plan_track_jobs, run_track_job, score_tracks

    jobs = plan_track_jobs(["data/synth/scene_0000"], TrackOptions())   # checks before any work
    rows = [run_track_job(job) for job in jobs]                        # what `mvt4g tracks` prints

    from mvt4g.tracks import plan_dataset, run_track_jobs             # a whole dataset, in workers
    plan = plan_dataset(["MultiCamVideo-Dataset/train"], TrackOptions(method="flow"))
    rows = plan.rows(run_track_jobs(plan.jobs, workers=2))

The format names are imported at once (numpy only); the others on first use (PEP 562).

Layout (imports go down this list only, never up):

- ``format``: the ``tracks.npz`` format (:class:`TrackSet`, reader, writer);
- ``queries``: query grids and random queries;
- ``metrics``: TAP-Vid metrics per pair type;
- ``projection``: camera geometry both methods share (project, backproject, rays, triangulate);
- ``overlay``: tracks drawn over their videos (``mvt4g tracks show``);
- ``planar``: a real image on a plane seen by moving cameras, with exact tracks (a test bed);
- ``plugin``: the plug-in tracker interface (``--tracker module:callable``);
- ``flow/``: the weight-free flow method (optical flow, plane sweep, static and moving points);
- ``exact/``: the exact method from depth and cameras (uses ``flow``'s optical flow for moving objects);
- ``quality``: per-clip quality signals read from the tracks (visible, own-view, cross-view, associated);
- ``compute``: the dispatcher behind ``mvt4g tracks``: choose the method and queries, run, key the result;
- ``dataset``: clips found in dataset folders, bad ones set aside, jobs run in worker processes.
"""

from mvt4g._lazy import lazy_exports
from mvt4g.tracks.format import FORMAT_VERSION, TrackSet, read_tracks, write_tracks

_LAZY = {
    "TrackOptions": "compute", "TrackJob": "compute", "compute_tracks": "compute", "plan_method": "compute",
    "plan_track_jobs": "compute", "run_track_job": "compute",
    "score_tracks": "metrics", "format_table": "metrics",
    "find_clips": "dataset", "plan_dataset": "dataset", "run_track_jobs": "dataset",
    "quality_of": "quality", "summarize": "quality", "format_quality_table": "quality",
}  # fmt: skip

__all__ = [
    "FORMAT_VERSION", "TrackJob", "TrackOptions", "TrackSet", "compute_tracks", "find_clips", "format_quality_table",
    "format_table", "plan_dataset", "plan_method", "plan_track_jobs", "quality_of", "read_tracks", "run_track_job",
    "run_track_jobs", "score_tracks", "summarize", "write_tracks",
]  # fmt: skip

__getattr__ = lazy_exports("mvt4g.tracks", _LAZY, globals())
