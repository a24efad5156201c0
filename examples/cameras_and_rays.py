"""Python API example: a preset trajectory, its plot, and Plücker ray maps for its latent frames.

    python examples/cameras_and_rays.py [OUT_DIR]

Writes OUT_DIR/arc_left.png (camera path with frusta) and OUT_DIR/arc_left_rays.npy
([21, 6, 240, 416] float16) and prints a short summary.
"""

import sys
from pathlib import Path

import numpy as np

from mvt4g.camera import Intrinsics, plucker_rays, preset_trajectory
from mvt4g.camera.plot import plot_trajectories
from mvt4g.camera.trajectory_files import trajectory_summary


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    c2w = preset_trajectory("arc-left", frames=81)  # [81, 4, 4], relative to frame 0
    camera = Intrinsics.from_fov(60.0, width=416, height=240)
    latent = c2w[::4]  # one pose per latent frame: 0, 4, ..., 80
    rays = plucker_rays(camera.K, latent, camera.height, camera.width, dtype=np.float16)
    np.save(out_dir / "arc_left_rays.npy", rays)
    plot_trajectories({"arc-left": c2w}, out_dir / "arc_left.png", intrinsics=camera)
    summary = trajectory_summary(c2w)
    print(f"arc-left: {summary['frames']} frames, turned {summary['rotation_deg']:.1f} deg")
    print(f"ray maps: {list(rays.shape)} {rays.dtype}, unit directions: {np.allclose(np.linalg.norm(rays[:, :3].astype(np.float32), axis=1), 1, atol=1e-2)}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/example_cameras"))
