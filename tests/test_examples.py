"""Every example runs (with tiny settings) and produces what its docstring promises."""

import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_cameras_and_rays_example(tmp_path):
    result = run_example("cameras_and_rays.py", str(tmp_path))
    assert "arc-left: 81 frames, turned 30.0 deg" in result.stdout
    rays = np.load(tmp_path / "arc_left_rays.npy")
    assert rays.shape == (21, 6, 240, 416)
    assert (tmp_path / "arc_left.png").stat().st_size > 10_000
