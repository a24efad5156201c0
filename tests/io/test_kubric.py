"""Kubric-style multi-view exports -> clips (mvt4g.io.kubric), checked against hand-built cameras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mvt4g.camera import look_at
from mvt4g.camera.pose import c2w_to_opengl
from mvt4g.errors import InputError
from mvt4g.io.kubric import import_kubric, quaternion_to_matrix, read_kubric

H, W, T = 32, 48, 3
FOCAL_MM, SENSOR_MM = 35.0, 32.0


def _quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix, by scipy (an independent reference; scipy writes x, y, z, w)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(R).as_quat()
    return np.array([w, x, y, z])


def _write_view(folder: Path, eyes: list, point: np.ndarray) -> list[np.ndarray]:
    """A view whose frames show a white dot where ``point`` projects; depth = range to a plane at z = 0."""
    folder.mkdir(parents=True)
    poses = [look_at(eye, [0.0, 0.0, 0.0], up=(0, 0, 1)) for eye in eyes]  # OpenCV axes, z-up world
    f_px = FOCAL_MM / SENSOR_MM * max(W, H)
    K = np.array([[f_px, 0, W / 2], [0, f_px, H / 2], [0, 0, 1.0]])
    gl = c2w_to_opengl(np.stack(poses))
    for t, pose in enumerate(poses):
        cam = np.linalg.inv(pose)[:3, :3] @ point + np.linalg.inv(pose)[:3, 3]
        u, v = (K @ cam)[:2] / cam[2]
        img = np.zeros((H, W, 4), np.uint8)
        img[..., 3] = 255
        img[int(v), int(u), :3] = 255
        Image.fromarray(img).save(folder / f"rgba_{t:05d}.png")
        # Range (distance from the camera centre) to the plane z = 0 along every pixel's ray.
        xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(K).T @ pose[:3, :3].T
        lam = -pose[2, 3] / rays[..., 2]
        rng = (lam * np.linalg.norm(rays, axis=-1)).astype(np.float32)
        Image.fromarray(rng, mode="F").save(folder / f"depth_{t:05d}.tiff")
        seg = np.zeros((H, W), np.uint8)
        seg[: H // 2] = 2
        Image.fromarray(seg).save(folder / f"segmentation_{t:05d}.png")
    meta = {"camera": {"focal_length": FOCAL_MM, "sensor_width": SENSOR_MM, "positions": gl[:, :3, 3].tolist(),
                       "quaternions": [_quat_from_matrix(m[:3, :3]).tolist() for m in gl]}}
    (folder / "metadata.json").write_text(json.dumps(meta))
    return poses


@pytest.fixture
def export(tmp_path) -> tuple[Path, np.ndarray]:
    root = tmp_path / "kubric_scene"
    point = np.array([0.3, -0.2, 0.5])
    _write_view(root / "view_00", [[6.0, 0.0, 3.0], [5.9, 0.5, 3.0], [5.8, 1.0, 3.1]], point)
    _write_view(root / "view_01", [[0.0, 6.0, 2.5], [-0.5, 5.9, 2.5], [-1.0, 5.8, 2.4]], point)
    (root / "metadata.json").write_text(json.dumps({"fps": 12}))
    return root, point


def test_quaternions_are_w_first():
    R = quaternion_to_matrix(np.array([[np.cos(0.25), 0.0, 0.0, np.sin(0.25)]]))[0]  # 0.5 rad about z
    np.testing.assert_allclose(R, [[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]], atol=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(5):
        M = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        M *= np.sign(np.linalg.det(M))
        np.testing.assert_allclose(quaternion_to_matrix(_quat_from_matrix(M)[None])[0], M, atol=1e-9)


def test_import_gives_a_clip_whose_cameras_see_the_point_where_the_frames_show_it(export, tmp_path):
    from mvt4g.io.clip import read_clip

    root, point = export
    clip = read_clip(import_kubric(root, tmp_path / "clip"))
    assert clip.views == ["view_00", "view_01"] and clip.frames == T and clip.fps == 12.0
    for view in clip.views:
        frames = clip.read_video(view)
        cam = clip.cameras[view]
        for t in range(T):
            w2c = cam.w2c()[t]
            p = cam.K[t] @ (w2c[:3, :3] @ point + w2c[:3, 3])
            u, v = p[:2] / p[2]
            bright = np.unravel_index(frames[t].sum(-1).argmax(), frames[t].shape[:2])
            assert abs(bright[0] - int(v)) <= 1 and abs(bright[1] - int(u)) <= 1
        # Range became z-depth: back-projecting every pixel lands on the plane z = 0.
        depth = clip.read_depth(view)[1]
        xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(cam.K[1]).T
        world = (rays * depth[..., None]) @ cam.c2w[1, :3, :3].T + cam.c2w[1, :3, 3]
        assert np.abs(world[..., 2]).max() < 1e-3
        assert set(np.unique(clip.read_masks(view))) == {0, 2}


def test_bad_exports_are_one_line_errors(export, tmp_path):
    root, _ = export
    with pytest.raises(InputError, match="no view folders"):
        read_kubric(tmp_path)
    (root / "view_01" / "rgba_00002.png").unlink()
    with pytest.raises(InputError, match="views differ|camera has positions"):
        read_kubric(root)
    meta = json.loads((root / "view_00" / "metadata.json").read_text())
    del meta["camera"]["quaternions"]
    (root / "view_00" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="quaternions"):
        read_kubric(root)
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="exists"):
        import_kubric(root, tmp_path / "out")
