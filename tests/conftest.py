"""Shared test fixtures: the CLI runner, ../shared/data, and small on-disk clips."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not available")
    return path


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


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


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    """Bad input: exit 2 and exactly one line on stderr, naming the problem."""
    assert result.code == 2, (result.code, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def orbit_cameras(frames: int, width: int = 64, height: int = 48, radius: float = 3.0, phase: float = 0.0):
    """``ViewCameras`` circling the origin while looking at it (exact, for geometry tests)."""
    from mvt4g.camera import Intrinsics, ViewCameras, look_at

    angles = phase + np.linspace(0.0, 0.5, frames)
    c2w = np.stack([look_at([radius * np.sin(a), -0.5, -radius * np.cos(a)], [0.0, 0.0, 0.0]) for a in angles])
    return ViewCameras(width, height, Intrinsics.from_fov(60.0, width, height).K, c2w)


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
