"""The names the camera layer accepts, in a module that imports nothing (no numpy), so the
command line can build its choices from them without slowing ``--help`` down.

:mod:`mvt4g.camera.trajectories` and :mod:`mvt4g.camera.trajectory_files` validate against
these same tuples.
"""

from __future__ import annotations

#: Kinds of parametric camera motion (``TrajectorySpec.motion``).
MOTIONS = ("rotate", "translate", "arc", "waypoints", "static")
#: Speed profiles: equal steps, or MultiCamVideo's fast-start, slow-stop ease-out.
SPEEDS = ("constant", "ease")
#: How an arc travels: along the straight chord (ReCamMaster) or the circle.
ARC_PATHS = ("chord", "circle")
#: Trajectory file formats written by ``traj show --out``: mvt4g trajectory JSON, ReCamMaster
#: ``camera_extrinsics.json``.
TRAJECTORY_FORMATS = ("mvt4g", "recammaster")
#: Preset parameters a user may set (each is the option ``--NAME``, ``_`` written ``-``).
PRESET_OPTIONS = ("angle", "distance", "target_depth", "speed", "path")
