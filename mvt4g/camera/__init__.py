"""Cameras in mvt4g's convention: OpenCV axes (x right, y down, z forward), camera-to-world 4x4
poses in metres, pinhole intrinsics with pixel centres at (u + 0.5, v + 0.5).

    >>> from mvt4g.camera import plucker_rays, Intrinsics
    >>> K = Intrinsics.from_fov(60.0, width=832, height=480)

Names are loaded on first use (PEP 562): importing one light module of this package (say
``mvt4g.camera.trajectories`` for its constants) does not import every other one.
"""

from mvt4g._lazy import lazy_exports

_EXPORTS = {
    "dycheck_camera_dict": "converters",
    "read_dycheck_camera": "converters",
    "read_multicamvideo_extrinsics": "converters",
    "recammaster_extrinsics_dict": "converters",
    "MULTICAMVIDEO_SENSOR_MM": "intrinsics",
    "Intrinsics": "intrinsics",
    "stack_K": "intrinsics",
    "plucker_rays": "plucker",
    "c2w_from_opengl": "pose",
    "c2w_from_w2c": "pose",
    "c2w_to_opengl": "pose",
    "invert_pose": "pose",
    "look_at": "pose",
    "orthonormalize": "pose",
    "relative_to": "pose",
    "validate_c2w": "pose",
    "w2c_from_c2w": "pose",
    "ViewCameras": "rig",
    "read_cameras_json": "rig",
    "write_cameras_json": "rig",
    "PRESET_NAMES": "trajectories",
    "preset_trajectory": "trajectories",
    "sample_random_trajectory": "trajectories",
    "read_trajectory": "trajectory_files",
    "resample_trajectory": "trajectory_files",
    "trajectory_json": "trajectory_files",
    "read_camera_file": "trajectory_files",
    "CameraFile": "trajectory_files",
    "Trajectory": "trajectory_source",
    "resolve_trajectories": "trajectory_source",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("mvt4g.camera", _EXPORTS, globals())
