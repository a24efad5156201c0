"""Shared test fixtures: the CLI runner, ../shared/data, and small on-disk clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import CliResult, orbit_cameras

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not available")
    return path




@pytest.fixture
def cli(capsys):
    """Run ``mvt4g ARGS`` in-process; returns exit code, stdout and stderr."""
    from mvt4g.cli import common
    from mvt4g.cli.main import main

    def run(*args: str) -> CliResult:
        common.STATE.debug = False
        common.STATE.quiet = False
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run






@pytest.fixture
def make_clip(tmp_path):
    """Write a small clip directory (2 views of smooth noise videos + cameras.json)."""

    def make(name: str = "clip", views: int = 2, frames: int = 9, width: int = 64, height: int = 48) -> Path:
        from mvt4g.camera import write_cameras_json
        from mvt4g.io.video import write_video

        root = tmp_path / name
        (root / "videos").mkdir(parents=True)
        (root / "cameras").mkdir()
        rng = np.random.default_rng(0)
        cams = {}
        for v in range(views):
            view = f"cam{v + 1:02d}"
            video = (rng.random((frames, height, width, 3)) * 255).astype(np.uint8)
            write_video(root / "videos" / f"{view}.mp4", video, fps=10)
            cams[view] = orbit_cameras(frames, width, height, phase=0.3 * v)
        write_cameras_json(root / "cameras" / "cameras.json", cams)
        (root / "meta.json").write_text(json.dumps({"fps": 10, "frames": frames, "caption": "noise"}))
        return root

    return make


@pytest.fixture
def one_thread():
    """Torch on one thread for the test, restored after: tiny tensors on a shared 2-core machine
    run several times faster without thread hand-offs (use with pytest.mark.usefixtures)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
