"""Pictures of camera trajectories: a 3D view and a top-down view with camera frusta.

Poses are mvt4g c2w ``[F, 4, 4]`` (OpenCV axes, y down). The plots show "up" as ``-y`` so the
picture reads like the scene: the 3D view's vertical axis is ``-y``, and the top-down view looks
down on the ground plane (``x`` to the right, ``z`` = forward pointing up the page).
Figures are drawn with matplotlib's Agg canvas (no GUI, no pyplot global state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mvt4g.camera.intrinsics import Intrinsics
from mvt4g.camera.pose import validate_c2w
from mvt4g.errors import InputError
from mvt4g.fs.atomic import atomic_path

#: Frustum shape when no intrinsics are given: ReCamMaster's 832x480 frame with a 60 deg
#: horizontal field of view.
DEFAULT_INTRINSICS = Intrinsics.from_fov(60.0, 832, 480)
_FORMATS = ("png", "pdf", "svg")


def frustum_corners(intrinsics: Intrinsics, size: float) -> np.ndarray:
    """Image corners (top-left, top-right, bottom-right, bottom-left) in camera coordinates at
    depth ``size`` metres, ``[4, 3]``."""
    w, h = intrinsics.width, intrinsics.height
    pix = np.array([[0.0, 0.0, 1.0], [w, 0.0, 1.0], [w, h, 1.0], [0.0, h, 1.0]])
    rays = pix @ np.linalg.inv(intrinsics.K).T
    return rays * size


def _to_display(points: np.ndarray) -> np.ndarray:
    """World (x right, y down, z forward) -> plot axes (x, z, -y): the last axis points up."""
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def _frustum_segments(c2w: np.ndarray, corners_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line segments of one frustum in world coordinates: ``(sides [8, 2, 3], top edge [2, 3])``.

    Sides are the four apex-to-corner rays and the image rectangle; the top image edge is
    returned apart so it can be drawn thicker (it shows which way is up for the camera).
    """
    centre = c2w[:3, 3]
    corners = corners_cam @ c2w[:3, :3].T + centre
    rays = [(centre, c) for c in corners]
    rim = [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    return np.array(rays + rim), corners[:2]


def plot_trajectories(
    trajs: dict[str, object],
    path: str | Path,
    intrinsics: Intrinsics | None = None,
    *,
    every: int | None = None,
    title: str | None = None,
) -> Path:
    """Draw ``{name: c2w [F, 4, 4]}`` to an image file (``.png``, ``.pdf`` or ``.svg``), atomically.

    Left: 3D view; right: top-down view. Each camera's path is a line, with frusta every
    ``every`` frames (default: about 8 per path, always the first and the last), an open circle
    at the start and a filled square at the end. ``intrinsics`` sets the frustum shape.
    Returns ``path``.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise InputError(f"plot format must be one of {', '.join('.' + f for f in _FORMATS)}", path=path)
    if not trajs:
        raise InputError("nothing to plot: no trajectories given")
    poses = {name: validate_c2w(c2w, name=str(name)) for name, c2w in trajs.items()}
    if every is not None and every < 1:
        raise InputError(f"every must be >= 1, got {every}")
    intrinsics = intrinsics or DEFAULT_INTRINSICS

    all_pos = np.concatenate([p[:, :3, 3] for p in poses.values()])
    extent = float(np.ptp(all_pos, axis=0).max())
    size = max(0.12 * extent, 0.25)  # frustum depth in metres: visible, never swamping the path
    corners = frustum_corners(intrinsics, size)

    fig = Figure(figsize=(13, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    # 3D axis labels fall outside their axes box, where constrained layout does not look.
    fig.get_layout_engine().set(wspace=0.12)
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax2 = fig.add_subplot(1, 2, 2)
    palette = colormaps["tab10" if len(poses) <= 10 else "tab20"]
    handles = []
    bounds = [all_pos]
    for index, (name, c2w) in enumerate(poses.items()):
        colour = palette(index % palette.N)
        step = every or max(1, (len(c2w) - 1) // 8)
        shown = sorted(set(range(0, len(c2w), step)) | {len(c2w) - 1})
        pos = _to_display(c2w[:, :3, 3])
        ax3.plot(pos[:, 0], pos[:, 1], pos[:, 2], color=colour, lw=2)
        ax2.plot(pos[:, 0], pos[:, 1], color=colour, lw=2)
        for frame in shown:
            sides, top = _frustum_segments(c2w[frame], corners)
            bounds.append(sides.reshape(-1, 3))
            alpha = 0.9 if frame in (0, len(c2w) - 1) else 0.45
            for a, b in _to_display(sides):
                ax3.plot(*zip(a, b), color=colour, lw=0.8, alpha=alpha)
                ax2.plot([a[0], b[0]], [a[1], b[1]], color=colour, lw=0.8, alpha=alpha)
            t = _to_display(top)
            ax3.plot(t[:, 0], t[:, 1], t[:, 2], color=colour, lw=2.2, alpha=alpha)
        for ax, ends in ((ax3, pos[[0, -1]]), (ax2, pos[[0, -1], :2])):
            ax.scatter(*ends[0], s=70, facecolors="white", edgecolors="black", zorder=5)
            ax.scatter(*ends[1], s=60, marker="s", color=colour, edgecolors="black", zorder=5)
        handles.append(Line2D([], [], color=colour, lw=2, label=str(name)))

    handles += [
        Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="start (frame 0)"),
        Line2D([], [], ls="", marker="s", mfc="grey", mec="black", label="end"),
    ]
    _finish_3d(ax3, _to_display(np.concatenate(bounds)))
    ax2.set_xlabel("x (m, right)")
    ax2.set_ylabel("z (m, forward)")
    ax2.set_aspect("equal", adjustable="datalim")
    ax2.grid(True, alpha=0.3)
    ax2.set_title("top-down (thin lines: frusta; camera looks along +z at frame 0)")
    ax2.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0.0)
    if title:
        fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt)
    return path


def _finish_3d(ax: object, points: np.ndarray) -> None:
    """Same metres per unit on all three axes around ``points`` [N, 3] (display axes), labelled.

    Each axis spans at least half the longest one, so a flat path does not squash the box.
    """
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, 0.1) * 1.05
    half = np.maximum(half, half.max() / 2)
    ax.set_xlim(centre[0] - half[0], centre[0] + half[0])  # type: ignore[attr-defined]
    ax.set_ylim(centre[1] - half[1], centre[1] + half[1])  # type: ignore[attr-defined]
    ax.set_zlim(centre[2] - half[2], centre[2] + half[2])  # type: ignore[attr-defined]
    ax.set_box_aspect(tuple(half))  # type: ignore[attr-defined]
    ax.set_xlabel("x (m, right)")  # type: ignore[attr-defined]
    ax.set_ylabel("z (m, forward)")  # type: ignore[attr-defined]
    ax.set_zlabel("-y (m, up)")  # type: ignore[attr-defined]
    ax.view_init(elev=20, azim=-60)  # type: ignore[attr-defined]
    ax.set_title("3D (thick edge: top of the image)")  # type: ignore[attr-defined]
