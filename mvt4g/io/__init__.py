"""Video, frame and clip-directory input/output, and atomic file writing."""

from mvt4g.io.atomic import atomic_dir, atomic_path, check_output_path, write_json_atomic
from mvt4g.io.clip import Clip, read_clip

__all__ = ["Clip", "atomic_dir", "atomic_path", "check_output_path", "read_clip", "write_json_atomic"]
