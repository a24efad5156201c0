"""Multi-view point tracks: the ``tracks.npz`` format, TAP-Vid metrics, and track generators.

    from mvt4g.tracks import TrackSet, read_tracks, write_tracks
    from mvt4g.tracks import TrackOptions, plan_track_jobs, run_track_job, score_tracks

    jobs = plan_track_jobs(["data/synth/scene_0000"], TrackOptions())   # checks before any work
    rows = [run_track_job(job) for job in jobs]                        # what `mvt4g tracks` prints

The format names are imported at once (numpy only); the others on first use (PEP 562).
"""

from mvt4g._lazy import lazy_exports
from mvt4g.tracks.format import FORMAT_VERSION, TrackSet, read_tracks, write_tracks

_LAZY = {
    "TrackOptions": "compute", "TrackJob": "compute", "compute_tracks": "compute", "plan_method": "compute",
    "plan_track_jobs": "compute", "run_track_job": "compute",
    "score_tracks": "metrics", "format_table": "metrics",
}  # fmt: skip

__all__ = [
    "FORMAT_VERSION", "TrackJob", "TrackOptions", "TrackSet", "compute_tracks", "format_table", "plan_method",
    "plan_track_jobs", "read_tracks", "run_track_job", "score_tracks", "write_tracks",
]  # fmt: skip

__getattr__ = lazy_exports("mvt4g.tracks", _LAZY, globals())
