"""Video, frame and clip-directory input/output (atomic writing lives in :mod:`mvt4g.fs`).

Names are loaded on first use (PEP 562) so that importing one piece does not pull in OpenCV
or ffmpeg for the others.
"""

from mvt4g._lazy import lazy_exports

_EXPORTS = {
    "Clip": "clip", "read_clip": "clip",
    "Video": "video", "VideoInfo": "video", "probe_video": "video", "read_video": "video",
    "write_video": "video", "write_frames": "video", "FOLDER_FPS": "video",
    "CropInfo": "frames", "FramePolicyReport": "frames", "cover_geometry": "frames", "resize_cover": "frames",
    "fit_frame_count": "frames", "latent_frame_indices": "frames", "is_valid_frame_count": "frames",
    "largest_valid_count": "frames", "DEFAULT_FRAMES": "frames", "TEMPORAL_STRIDE": "frames",
    "read_plucker": "plucker_cache",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("mvt4g.io", _EXPORTS, globals())
