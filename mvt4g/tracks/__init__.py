"""Multi-view point tracks: the ``tracks.npz`` format, TAP-Vid metrics, and track generators.

    from mvt4g.tracks import TrackSet, read_tracks, write_tracks
    from mvt4g.tracks.metrics import score_tracks
"""

from mvt4g.tracks.format import FORMAT_VERSION, TrackSet, read_tracks, write_tracks

__all__ = ["FORMAT_VERSION", "TrackSet", "read_tracks", "write_tracks"]
