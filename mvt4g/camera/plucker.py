"""Plücker ray maps (paper App. B.1), the camera conditioning of the model.

For pixel ``(u, v)`` of a camera with intrinsics ``K`` and camera-to-world pose
``[[R_c2w, o], [0, 1]]``::

    d = normalize(R_c2w K^-1 (u + 0.5, v + 0.5, 1)^T)     (R_c2w = R_w2c^T)
    m = o x d

and the map stacks ``(d, m)`` as 6 channels. Both are linear in the camera-frame ray
``K^-1 p = (x_u, y_v, 1)`` (``d = R dhat``, ``m = [o]_x R dhat``; a rotation keeps norms), so
channel c is ``(row_c[u] + col_c[v]) / |(x_u, y_v, 1)|``: one broadcast add and one multiply per
frame, frames split over threads (``benchmarks/plucker.py`` measures it against a plain copy).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mvt4g.camera.intrinsics import stack_K
from mvt4g.camera.pose import validate_c2w
from mvt4g.errors import CameraError


def _skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices ``[F, 3, 3]`` with ``_skew(a) @ b == cross(a, b)``."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)


def _pixel_offsets(K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised image coordinates ``x [W]`` and ``y [H]`` of pixel centres for one ``K`` [3, 3]."""
    x = (np.arange(width, dtype=np.float64) + 0.5 - K[0, 2]) / K[0, 0]
    y = (np.arange(height, dtype=np.float64) + 0.5 - K[1, 2]) / K[1, 1]
    return x, y


def _camera_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit ray directions in camera coordinates, float64 ``[F, 3, H*W]`` for ``K`` ``[F, 3, 3]``."""
    rays = []
    for k in K:
        x, y = _pixel_offsets(k, height, width)
        xs, ys = np.broadcast_to(x[None, :], (height, width)), np.broadcast_to(y[:, None], (height, width))
        r = np.stack([xs, ys, np.ones_like(xs)]).reshape(3, -1)
        rays.append(r / np.linalg.norm(r, axis=0, keepdims=True))
    return np.stack(rays)


def plucker_matrices(c2w: np.ndarray) -> np.ndarray:
    """The per-frame linear maps ``[F, 6, 3]`` from camera-frame unit rays to ``(d, m)``."""
    rot = c2w[:, :3, :3]
    return np.concatenate([rot, _skew(c2w[:, :3, 3]) @ rot], axis=1)


def plucker_rays(intrinsics: Any, c2w: Any, height: int, width: int, *, dtype: Any = None) -> Any:
    """Plücker ray maps ``[F, 6, H, W]`` with channels ``(d_x, d_y, d_z, m_x, m_y, m_z)``.

    Args:
        intrinsics: ``[3, 3]`` (shared by all frames) or ``[F, 3, 3]`` pinhole matrices for an
            image of ``height x width`` pixels (numpy, torch or an ``Intrinsics``).
        c2w: ``[F, 4, 4]`` camera-to-world poses (OpenCV axes), numpy or torch.
        height, width: image size of the map.
        dtype: output dtype; defaults to float32 (numpy in -> numpy out; torch in -> torch
            out, on the input's device).

    The result is computed in float64 for the per-frame matrices and in the output precision
    (float32, or float32 then cast for float16) for the per-pixel product.
    """
    torch_in = type(c2w).__module__.startswith("torch") or type(intrinsics).__module__.startswith("torch")
    if torch_in:
        return _plucker_torch(intrinsics, c2w, height, width, dtype)
    poses = validate_c2w(c2w)
    frames = poses.shape[0]
    K = stack_K(intrinsics)
    if K.shape[0] not in (1, frames):
        raise CameraError(f"{K.shape[0]} intrinsics for {frames} poses")
    if height <= 0 or width <= 0:
        raise CameraError(f"ray map size must be positive, got {height}x{width}")
    out_dtype = np.dtype(dtype or np.float32)
    work = np.float64 if out_dtype == np.float64 else np.float32
    mats = plucker_matrices(poses)
    out = np.empty((frames, 6, height, width), dtype=out_dtype)
    # Separable form: before normalisation the ray is (x_u, y_v, 1), so channel c of M @ ray is
    # row_c[u] + col_c[v]; one multiply by 1 / |ray| (shared by all frames and channels) finishes
    # it: two passes over each frame's output and no [3, H*W] ray array per frame
    # (benchmarks/plucker.py compares this with a plain copy).
    shared_norm = _inverse_norm(*_pixel_offsets(K[0], height, width), work) if K.shape[0] == 1 else None

    def fill_frame(f: int) -> None:
        x, y = _pixel_offsets(K[0 if K.shape[0] == 1 else f], height, width)
        inv_norm = shared_norm if shared_norm is not None else _inverse_norm(x, y, work)
        m = mats[f]
        row = (m[:, 0, None] * x[None, :] + m[:, 2, None]).astype(work)  # [6, W]
        col = (m[:, 1, None] * y[None, :]).astype(work)  # [6, H]
        tmp = out[f] if out_dtype == work else np.empty((6, height, width), dtype=work)
        np.add(col[:, :, None], row[:, None, :], out=tmp)
        np.multiply(tmp, inv_norm, out=out[f], casting="same_kind")

    # numpy releases the GIL inside the ufuncs, so frames split over threads run in parallel;
    # small maps stay on one thread (starting threads would cost more than it saves).
    threads = min(frames, os.cpu_count() or 1, 8) if out.size >= (1 << 22) else 1
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fill_frame, range(frames)))
    else:
        for f in range(frames):
            fill_frame(f)
    return out


def _inverse_norm(x: np.ndarray, y: np.ndarray, dtype: Any) -> np.ndarray:
    """``1 / |(x_u, y_v, 1)|`` as ``[H, W]``."""
    return (1.0 / np.sqrt(x[None, :] ** 2 + y[:, None] ** 2 + 1.0)).astype(dtype)


def _plucker_torch(intrinsics: Any, c2w: Any, height: int, width: int, dtype: Any) -> Any:
    import torch

    device = c2w.device if isinstance(c2w, torch.Tensor) else intrinsics.device
    c2w_np = c2w.detach().cpu().double().numpy() if isinstance(c2w, torch.Tensor) else np.asarray(c2w)
    k_np = intrinsics.detach().cpu().double().numpy() if isinstance(intrinsics, torch.Tensor) else intrinsics
    poses = validate_c2w(c2w_np)
    K = stack_K(k_np)
    if K.shape[0] not in (1, poses.shape[0]):
        raise CameraError(f"{K.shape[0]} intrinsics for {poses.shape[0]} poses")
    out_dtype = dtype or torch.float32
    work = torch.float64 if out_dtype == torch.float64 else torch.float32
    mats = torch.from_numpy(plucker_matrices(poses)).to(device=device, dtype=work)
    rays = torch.from_numpy(_camera_rays(K, height, width)).to(device=device, dtype=work)
    out = torch.matmul(mats, rays)  # [F, 6, 3] @ [1 or F, 3, HW]
    return out.to(out_dtype).reshape(poses.shape[0], 6, height, width)
