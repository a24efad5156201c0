"""Cameras in mvt4g's convention: OpenCV axes (x right, y down, z forward), camera-to-world 4x4
poses in metres, pinhole intrinsics with pixel centres at (u + 0.5, v + 0.5).

    >>> from mvt4g.camera import plucker_rays, Intrinsics
    >>> K = Intrinsics.from_fov(60.0, width=832, height=480)
"""

from mvt4g.camera.converters import (
    dycheck_camera_dict,
    read_dycheck_camera,
    read_multicamvideo_extrinsics,
    recammaster_extrinsics_dict,
)
from mvt4g.camera.intrinsics import MULTICAMVIDEO_SENSOR_MM, Intrinsics, stack_K
from mvt4g.camera.plucker import plucker_rays
from mvt4g.camera.pose import (
    c2w_from_opengl,
    c2w_from_w2c,
    c2w_to_opengl,
    invert_pose,
    look_at,
    orthonormalize,
    relative_to,
    validate_c2w,
    w2c_from_c2w,
)
from mvt4g.camera.rig import ViewCameras, read_cameras_json, write_cameras_json
from mvt4g.camera.trajectories import PRESET_NAMES, preset_trajectory, sample_random_trajectory
from mvt4g.camera.trajectory_files import read_trajectory, resample_trajectory, trajectory_json

__all__ = [
    "MULTICAMVIDEO_SENSOR_MM",
    "PRESET_NAMES",
    "Intrinsics",
    "ViewCameras",
    "c2w_from_opengl",
    "c2w_from_w2c",
    "c2w_to_opengl",
    "dycheck_camera_dict",
    "invert_pose",
    "look_at",
    "orthonormalize",
    "plucker_rays",
    "preset_trajectory",
    "read_cameras_json",
    "read_dycheck_camera",
    "read_multicamvideo_extrinsics",
    "read_trajectory",
    "recammaster_extrinsics_dict",
    "relative_to",
    "resample_trajectory",
    "sample_random_trajectory",
    "stack_K",
    "trajectory_json",
    "validate_c2w",
    "w2c_from_c2w",
    "write_cameras_json",
]
