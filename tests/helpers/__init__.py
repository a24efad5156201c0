"""Helpers the tests import (fixtures live in conftest.py): the one-line-error check, orbiting cameras
and the sample videos of ../shared/data/real."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


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


SHARED_REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def real_video(name: str) -> Path:
    """A sample video of ``../shared/data/real``; the test is skipped when it is absent."""
    import pytest

    path = SHARED_REAL / name
    if not path.is_file():
        pytest.skip(f"real test video {path} not available")
    return path
