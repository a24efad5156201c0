import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.plucker import plucker_rays
from mvt4g.errors import CameraError


def naive_plucker(K, c2w, height, width):
    """Float64 reference: one pixel at a time, straight from the definition (App. B.1)."""
    K = np.broadcast_to(K, (len(c2w), 3, 3))
    out = np.zeros((len(c2w), 6, height, width))
    for f in range(len(c2w)):
        r_w2c = c2w[f, :3, :3].T
        t_w2c = -r_w2c @ c2w[f, :3, 3]
        origin = -r_w2c.T @ t_w2c
        for v in range(height):
            for u in range(width):
                d = r_w2c.T @ np.linalg.inv(K[f]) @ np.array([u + 0.5, v + 0.5, 1.0])
                d /= np.linalg.norm(d)
                out[f, :3, v, u] = d
                out[f, 3:, v, u] = np.cross(origin, d)
    return out


def random_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    poses = np.repeat(np.eye(4)[None], n, 0)
    poses[:, :3, :3] = Rotation.random(n, random_state=seed).as_matrix()
    poses[:, :3, 3] = rng.normal(size=(n, 3)) * 3
    return poses


def test_matches_naive_reference_numpy_and_torch():
    K = Intrinsics(30.0, 34.0, 9.5, 6.25, 20, 12).K
    c2w = random_poses(3)
    ref = naive_plucker(K, c2w, 12, 20)
    np.testing.assert_allclose(plucker_rays(K, c2w, 12, 20, dtype=np.float64), ref, atol=1e-12)
    np.testing.assert_allclose(plucker_rays(K, c2w, 12, 20), ref, atol=2e-6)
    t = plucker_rays(torch.tensor(K), torch.tensor(c2w), 12, 20)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (3, 6, 12, 20)
    np.testing.assert_allclose(t.numpy(), ref, atol=2e-6)
    half = plucker_rays(K, c2w, 12, 20, dtype=np.float16)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float64), ref, atol=1e-2 * np.abs(ref).max())


def test_per_frame_intrinsics():
    Ks = np.stack([Intrinsics(20.0 + 5 * i, 22.0, 8.0, 6.0, 16, 12).K for i in range(3)])
    c2w = random_poses(3, seed=1)
    np.testing.assert_allclose(plucker_rays(Ks, c2w, 12, 16, dtype=np.float64), naive_plucker(Ks, c2w, 12, 16), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(-5, 5), st.floats(0.2, 3.0))
def test_plucker_invariants(seed, shift, scale):
    """d is a unit vector, d . m = 0, and moving the camera along a ray keeps that ray's m."""
    K = Intrinsics(scale * 20, scale * 20, 8.0, 5.0, 16, 10).K
    c2w = random_poses(1, seed)
    rays = plucker_rays(K, c2w, 10, 16, dtype=np.float64)[0]
    d, m = rays[:3], rays[3:]
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose((d * m).sum(0), 0.0, atol=1e-9)
    # Slide the camera along the centre pixel's ray: that pixel's Plücker line is unchanged.
    centre = d[:, 5, 8]
    moved = c2w.copy()
    moved[0, :3, 3] += shift * centre
    m2 = plucker_rays(K, moved, 10, 16, dtype=np.float64)[0, 3:, 5, 8]
    np.testing.assert_allclose(m2, m[:, 5, 8], atol=1e-9)


def test_bad_cameras_raise():
    K = np.eye(3)
    with pytest.raises(CameraError, match="NaN"):
        plucker_rays(K, np.full((1, 4, 4), np.nan), 4, 4)
    bad = np.eye(4)[None].copy()
    bad[0, 0, 0] = -1
    with pytest.raises(CameraError, match="det"):
        plucker_rays(K, bad, 4, 4)
    with pytest.raises(CameraError, match="intrinsics"):
        plucker_rays(np.stack([K, K]), np.eye(4)[None].repeat(3, 0), 4, 4)
