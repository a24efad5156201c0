"""Rigid camera poses in mvt4g's convention, their validation and conversions.

Convention (docs/ARCHITECTURE.md, "Camera convention"): OpenCV camera axes (x right, y down, z forward); poses are
camera-to-world 4x4 matrices ``c2w`` in metres, stacked as ``[F, 4, 4]`` float64.
A world point ``X_w`` maps to camera coordinates as ``X_c = R^T (X_w - c)`` where
``c2w = [[R, c], [0, 1]]``; the world-to-camera pose is ``w2c = inv(c2w) = [[R^T, -R^T c], [0, 1]]``.
"""

from __future__ import annotations

import numpy as np

from mvt4g.errors import CameraError

#: Largest allowed ``max |R^T R - I|`` for a rotation read from a file. Text formats store
#: six or so significant digits, so 1e-3 accepts them and rejects real shears and scales.
ORTHONORMAL_TOL = 1e-3

# Flips the y and z camera axes: OpenGL/Blender cameras look down -z with y up.
_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def as_pose_stack(poses: object, *, name: str = "pose") -> np.ndarray:
    """Return ``poses`` as float64 ``[F, 4, 4]``; a single ``[4, 4]`` or ``[3, 4]`` becomes F=1."""
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] not in ((4, 4), (3, 4)):
        raise CameraError(f"{name} must have shape [F, 4, 4] or [F, 3, 4], got {list(arr.shape)}")
    if arr.shape[1] == 3:
        bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), (arr.shape[0], 1, 4))
        arr = np.concatenate([arr, bottom], axis=1)
    return arr


def validate_rotations(
    rot: np.ndarray, *, name: str = "rotation", tol: float = ORTHONORMAL_TOL, proper: bool = True
) -> None:
    """Raise :class:`CameraError` unless every ``rot[i]`` ([F, 3, 3]) is finite and orthonormal.

    ``proper=True`` also requires ``det(R) = +1`` (a rotation, not a reflection).
    """
    rot = np.asarray(rot, dtype=np.float64)
    bad = ~np.isfinite(rot).all(axis=(-2, -1))
    if bad.any():
        raise CameraError(f"{name} {int(np.argmax(bad))} contains NaN or inf")
    err = np.abs(np.swapaxes(rot, -1, -2) @ rot - np.eye(3)).max(axis=(-2, -1))
    if (err > tol).any():
        i = int(np.argmax(err))
        raise CameraError(f"{name} {i} is not orthonormal (max |R^T R - I| = {err[i]:.3g} > {tol:g})")
    if proper:
        det = np.linalg.det(rot)
        if (det < 0).any():
            i = int(np.argmax(det < 0))
            raise CameraError(f"{name} {i} has det(R) = {det[i]:.3f}: a reflection, not a proper rotation")


def validate_c2w(c2w: object, *, name: str = "c2w", tol: float = ORTHONORMAL_TOL) -> np.ndarray:
    """Validate camera-to-world poses and return them as float64 ``[F, 4, 4]``.

    Checks: finite values, an orthonormal proper rotation block, bottom row ``[0, 0, 0, 1]``.
    """
    arr = as_pose_stack(c2w, name=name)
    if not np.isfinite(arr).all():
        i = int(np.argmax(~np.isfinite(arr).all(axis=(1, 2))))
        raise CameraError(f"{name} frame {i} contains NaN or inf")
    if np.abs(arr[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max() > 1e-6:
        raise CameraError(f"{name} bottom row must be [0, 0, 0, 1]")
    validate_rotations(arr[:, :3, :3], name=f"{name} frame", tol=tol)
    return arr


def orthonormalize(rot: np.ndarray) -> np.ndarray:
    """Nearest proper rotation(s) to ``rot`` ([..., 3, 3]) in the Frobenius norm (SVD)."""
    u, _, vt = np.linalg.svd(np.asarray(rot, dtype=np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, -1] *= d[..., None]
    return u @ vt


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid poses ``[..., 4, 4]`` (exact, via the transpose of the rotation)."""
    pose = np.asarray(pose, dtype=np.float64)
    rot_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    out = np.zeros_like(pose)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ pose[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def c2w_from_w2c(rot_w2c: object, trans_w2c: object) -> np.ndarray:
    """Camera-to-world ``[F, 4, 4]`` from world-to-camera ``[R|t]`` (``X_c = R X_w + t``).

    ``rot_w2c`` is ``[F, 3, 3]`` (or ``[3, 3]``), ``trans_w2c`` is ``[F, 3]`` (or ``[3]``).
    """
    rot = np.asarray(rot_w2c, dtype=np.float64).reshape(-1, 3, 3)
    t = np.asarray(trans_w2c, dtype=np.float64).reshape(-1, 3)
    validate_rotations(rot, name="world-to-camera rotation")
    w2c = np.zeros((rot.shape[0], 4, 4))
    w2c[:, :3, :3] = rot
    w2c[:, :3, 3] = t
    w2c[:, 3, 3] = 1.0
    return invert_pose(w2c)


def w2c_from_c2w(c2w: object) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(R [F, 3, 3], t [F, 3])`` from camera-to-world poses."""
    w2c = invert_pose(as_pose_stack(c2w))
    return w2c[:, :3, :3], w2c[:, :3, 3]


def c2w_from_opengl(c2w_gl: object) -> np.ndarray:
    """Convert OpenGL/Blender camera-to-world poses (x right, y up, looking down -z) to OpenCV axes.

    The world frame is unchanged; only the camera's own axes are flipped (y and z).
    """
    gl = as_pose_stack(c2w_gl, name="OpenGL c2w")
    return gl @ _GL_TO_CV


def c2w_to_opengl(c2w: object) -> np.ndarray:
    """Inverse of :func:`c2w_from_opengl`."""
    return as_pose_stack(c2w) @ _GL_TO_CV


def relative_to(c2w: object, reference: object) -> np.ndarray:
    """Express poses in the frame of the camera ``reference`` ([4, 4] c2w): ``inv(ref) @ c2w``.

    After this the reference camera sits at the origin looking down +z (what ReCamMaster
    does with the reference camera's frame-0 pose).
    """
    ref = as_pose_stack(reference, name="reference pose")[0]
    return invert_pose(ref) @ as_pose_stack(c2w)


def look_at(eye: object, target: object, up: object = (0.0, -1.0, 0.0)) -> np.ndarray:
    """Camera-to-world pose at ``eye`` looking at ``target`` in OpenCV axes.

    ``up`` is the world direction that should appear up in the image; with the default
    (-y, OpenCV's "up") the camera's y axis points down along +y as far as possible.
    """
    eye = np.asarray(eye, dtype=np.float64)
    fwd = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(fwd)
    if norm < 1e-12:
        raise CameraError("look_at: eye and target coincide")
    z = fwd / norm
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:
        raise CameraError("look_at: viewing direction is parallel to the up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose
