import json
import shutil

import numpy as np
import pytest

from mvt4g.camera.converters import recammaster_extrinsics_dict, unreal_base_pose
from mvt4g.errors import InputError
from mvt4g.io.clip import read_clip


def test_reads_a_valid_clip(make_clip):
    root = make_clip(frames=9)
    clip = read_clip(root)
    assert clip.views == ["cam01", "cam02"]
    assert (clip.frames, clip.height, clip.width, clip.fps) == (9, 48, 64, 10.0)
    assert clip.caption == "noise"
    assert clip.read_video("cam01").shape == (9, 48, 64, 3)


def test_depth_is_validated(make_clip):
    root = make_clip(frames=5)
    (root / "depth").mkdir()
    np.savez(root / "depth" / "cam01.npz", depth=np.ones((5, 48, 64), np.float32))
    np.savez(root / "depth" / "cam02.npz", depth=np.ones((5, 32, 64), np.float32))
    clip = read_clip(root)
    assert clip.has_depth()
    assert clip.read_depth("cam01").shape == (5, 48, 64)
    with pytest.raises(InputError, match=r"depth has shape \[5, 32, 64\], expected \[5, 48, 64\]"):
        clip.read_depth("cam02")


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda r: shutil.rmtree(r / "cameras"), "no cameras"),
        (lambda r: shutil.rmtree(r / "videos"), "no videos/ folder"),
        (lambda r: (r / "videos" / "cam02.mp4").unlink(), "cameras for view(s) without a video: cam02"),
        (lambda r: (r / "meta.json").write_text("{oops"), "not a JSON file"),
    ],
)
def test_broken_clips(make_clip, break_it, message):
    root = make_clip(frames=5)
    break_it(root)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_clip(root)


def test_views_must_agree(make_clip, tmp_path):
    a = make_clip("a", frames=5)
    b = make_clip("b", frames=9)
    shutil.copy(b / "videos" / "cam02.mp4", a / "videos" / "cam02.mp4")
    with pytest.raises(InputError, match="views differ"):
        read_clip(a)


def test_multicamvideo_layout_takes_focal_length_from_folder_name(make_clip, tmp_path):
    src = make_clip(frames=5)
    scene = tmp_path / "f24_aperture5" / "scene1"
    scene.parent.mkdir()
    shutil.copytree(src, scene)
    (scene / "cameras" / "cameras.json").unlink()
    rel = np.repeat(np.eye(4)[None], 5, 0)
    rel[:, 0, 3] = np.linspace(0, 1, 5)
    data = recammaster_extrinsics_dict({name: unreal_base_pose() @ rel for name in ("cam01", "cam02", "cam03")})
    (scene / "cameras" / "camera_extrinsics.json").write_text(json.dumps(data))
    clip = read_clip(scene)
    assert clip.views == ["cam01", "cam02"]  # cameras without a video are ignored for MultiCamVideo
    assert clip.cameras["cam01"].K[0, 0, 0] == pytest.approx(24 / 23.76 * 64)
    shutil.move(str(scene), str(tmp_path / "plain"))
    with pytest.raises(InputError, match="stores no intrinsics"):
        read_clip(tmp_path / "plain")
