"""Camera conditioning of one (reference, target) pair, shared by training and generation.

Both views' cameras are expressed relative to the reference camera's first pose (ReCamMaster's
convention: the reference video starts at the origin looking down +z), resized to the model's
pixel size the same way the frames are (``resize_cover``), and turned into Plücker ray maps at
the latent frames (pixel frames 0, 4, 8, ...).
"""

from __future__ import annotations

import numpy as np

from mvt4g.camera.plucker import plucker_rays
from mvt4g.camera.pose import relative_to
from mvt4g.camera.rig import ViewCameras
from mvt4g.model.camera_encoder import recammaster_pose_embedding


def pair_cameras(reference: ViewCameras, target: ViewCameras, size: tuple[int, int]) -> tuple[ViewCameras, ViewCameras]:
    """Both views at ``size = (H, W)`` pixels, poses relative to ``reference.c2w[0]``."""
    height, width = size
    origin = reference.c2w[0]
    out = []
    for cams in (reference, target):
        resized = cams.resized_cover(width, height) if (cams.height, cams.width) != (height, width) else cams
        out.append(ViewCameras(width, height, resized.K, relative_to(resized.c2w, origin)))
    return out[0], out[1]


def pair_plucker(
    reference: ViewCameras,
    target: ViewCameras,
    frame_indices: np.ndarray,
    size: tuple[int, int],
    dtype: object = np.float32,
) -> np.ndarray:
    """Plücker maps ``[2, F, 6, H, W]`` (view 0 reference, view 1 target) at ``frame_indices``."""
    ref, tgt = pair_cameras(reference, target, size)
    idx = np.asarray(frame_indices)
    maps = [plucker_rays(c.K[idx], c.c2w[idx], c.height, c.width, dtype=dtype) for c in (ref, tgt)]
    return np.stack(maps)


def pair_camera_pose(reference: ViewCameras, target: ViewCameras, frame_indices: np.ndarray) -> np.ndarray:
    """ReCamMaster's 12-value pose input ``[F, 12]`` for the target at ``frame_indices``."""
    idx = np.asarray(frame_indices)
    return recammaster_pose_embedding(reference.c2w[0], target.c2w[idx])
