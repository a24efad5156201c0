"""mvt4g: MVTrack4Gen, camera-controlled novel-view video generation from a monocular video.

The core package is importable without the CLI::

    from mvt4g.camera import plucker_rays, preset_trajectory
    from mvt4g.io import read_video, read_clip

Heavy dependencies (torch, diffusers, OpenCV) are imported by the modules that need them,
so ``import mvt4g`` and ``mvt4g --help`` stay fast.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("mvt4g")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
