"""Which target pixels the reference view also sees, from exact depth and cameras.

The weight-free analogue of MEt3R's covisible region (synthetic data only: it needs exact
z-depth for both views). Target pixel ``(u, v)`` of frame ``t`` is unprojected through its pixel
centre ``(u + 0.5, v + 0.5)`` at its depth, moved into the reference camera of the same frame
``t`` (the views are synchronised, so a moving object is at the same place in both), and
projected. It is covisible when it lands inside the reference image in front of the camera and
the reference's own depth at that pixel agrees within ``rel_tol`` (otherwise something else is
in front of it there: an occlusion).

Shapes: depth ``[T, H, W]`` float (z, metres), cameras :class:`~mvt4g.camera.rig.ViewCameras`
with ``T`` poses; the result is bool ``[T, H, W]`` over the target.
"""

from __future__ import annotations

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.errors import InputError

#: Relative depth agreement for "the reference sees this very point" (1 % of a 32-pixel-wide
#: synthetic frame's depth range would reject slanted ground seen at a grazing angle).
REL_TOL = 0.03

#: Named regions of a synthetic target view, scored by the ``region_psnr`` metrics.
REGIONS = ("moving", "covisible_static", "covisible_moving")

_SETTINGS = (f"PSNR over the region's pixels (masked MSE), mean over frames where it is not empty; covisible: "
             f"exact depth and cameras, pixel centres, same frame, depth agreement within {REL_TOL:.0%}")
METRIC_INFO: dict[str, dict[str, str]] = {
    "moving": {"source": "mvt4g: PSNR on moving objects (exact synth object masks of the target view)",
               "settings": _SETTINGS},
    "covisible_static": {"source": "mvt4g: PSNR on static pixels the reference also sees (weight-free analogue "
                                   "of MEt3R's covisible region)", "settings": _SETTINGS},
    "covisible_moving": {"source": "mvt4g: PSNR on moving-object pixels the reference also sees (weight-free "
                                   "analogue of MEt3R_dynamic)", "settings": _SETTINGS},
}


def covisible_mask(target_depth: np.ndarray, target: ViewCameras, reference_depth: np.ndarray,
                   reference: ViewCameras, rel_tol: float = REL_TOL) -> np.ndarray:  # fmt: skip
    """bool ``[T, H, W]``: target pixels the reference sees at the same frame (module docstring)."""
    td, rd = np.asarray(target_depth, np.float64), np.asarray(reference_depth, np.float64)
    if td.ndim != 3 or rd.ndim != 3 or td.shape[0] != rd.shape[0]:
        raise InputError(f"depth maps must be [T, H, W] with the same T, got {list(td.shape)} and {list(rd.shape)}")
    T, H, W = td.shape
    if len(target.c2w) < T or len(reference.c2w) < T:
        raise InputError(f"{T} depth frames but {len(target.c2w)} / {len(reference.c2w)} camera poses")
    Hr, Wr = rd.shape[1:]
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)  # [H*W, 3]
    out = np.zeros((T, H, W), dtype=bool)
    for t in range(T):
        rays = pix @ np.linalg.inv(target.K[t]).T  # z = 1 camera coordinates
        cam = rays * td[t].reshape(-1, 1)
        world = cam @ target.c2w[t, :3, :3].T + target.c2w[t, :3, 3]
        r_c2w = reference.c2w[t]
        in_ref = (world - r_c2w[:3, 3]) @ r_c2w[:3, :3]  # R^T (X - o), row vectors
        z = in_ref[:, 2]
        front = z > 1e-9
        proj = in_ref @ reference.K[t].T
        with np.errstate(divide="ignore", invalid="ignore"):
            ur, vr = proj[:, 0] / z, proj[:, 1] / z
        inside = front & (ur >= 0) & (ur < Wr) & (vr >= 0) & (vr < Hr)
        ok = np.zeros_like(inside)
        idx = np.flatnonzero(inside)
        cols, rows = np.floor(ur[idx]).astype(int), np.floor(vr[idx]).astype(int)
        seen = rd[t, rows, cols]
        ok[idx] = np.abs(seen - z[idx]) <= rel_tol * z[idx]
        out[t] = ok.reshape(H, W)
    return out


def synthetic_regions(target_masks: np.ndarray, covisible: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`REGIONS` of one target view from its object masks (0 = static) and its
    covisibility with the reference, each bool ``[T, H, W]``."""
    moving = np.asarray(target_masks) > 0
    return {
        "moving": moving,
        "covisible_static": covisible & ~moving,
        "covisible_moving": covisible & moving,
    }
