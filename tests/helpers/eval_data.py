"""Tiny DAVIS and DyCheck iPhone folders on disk, in the datasets' own layouts, for the eval tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mvt4g.camera import (
    Intrinsics,
    dycheck_camera_dict,
    look_at,
)
from mvt4g.io.frames import resize_cover
from mvt4g.io.video import read_video


def write_davis(root: Path, sequences: dict[str, np.ndarray], masks: dict[str, np.ndarray] | None = None,
                val: list[str] | None = None) -> Path:  # fmt: skip
    """A DAVIS 2017 layout: JPEGImages/480p/SEQ/00000.jpg..., optional palette annotations, ImageSets val.txt."""
    for seq, frames in sequences.items():
        folder = root / "JPEGImages" / "480p" / seq
        folder.mkdir(parents=True)
        for t, frame in enumerate(frames):
            cv2.imwrite(str(folder / f"{t:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    for seq, ids in (masks or {}).items():
        folder = root / "Annotations" / "480p" / seq
        folder.mkdir(parents=True)
        for t, frame_ids in enumerate(ids):
            img = Image.fromarray(frame_ids.astype(np.uint8), mode="P")
            img.putpalette([0, 0, 0, 128, 0, 0] + [0] * (256 * 3 - 6))
            img.save(folder / f"{t:05d}.png")
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("\n".join(val if val is not None else list(sequences)) + "\n")
    return root


def bear_frames(shared_data: Path, frames: int, height: int, width: int) -> np.ndarray:
    video = read_video(shared_data / "real" / "bear.mp4", max_frames=frames).frames
    return resize_cover(video, height, width)[0]


DY_TIMES = 6


DY_VAL = {1: [0, 1, 2, 3, 5], 2: [1, 2, 3, 4, 5]}  # camera 1's longest consecutive run is 0..3


DY_H, DY_W = 128, 96  # the 2x images (portrait, like teddy)


def dycheck_camera(cam: int, t: int) -> tuple[Intrinsics, np.ndarray]:
    """Cameras for the 1x images (twice the 2x size), looking at a point 3 m ahead."""
    w, h = 2 * DY_W, 2 * DY_H
    intr = Intrinsics(180.0 + 10 * cam, 180.0 + 10 * cam, w / 2 + cam, h / 2 - cam, w, h)
    return intr, look_at([0.3 * cam - 0.02 * t, -0.1 * cam, 0.05 * t], [0.0, 0.0, 3.0])


def write_dycheck(root: Path, shared_data: Path, covisible: bool = True) -> dict[int, np.ndarray]:
    """DyCheck iPhone sequence at 2x: camera 0 from teddy.mp4, cameras 1 and 2 from apple.mp4.

    Returns the 2x frames ``{camera: [DY_TIMES, H, W, 3]}`` as written (PNG, lossless).
    """
    teddy = resize_cover(read_video(shared_data / "real" / "teddy.mp4", max_frames=DY_TIMES).frames, DY_H, DY_W)[0]
    apple = resize_cover(read_video(shared_data / "real" / "apple.mp4", max_frames=DY_TIMES).frames, DY_H, DY_W)[0]
    frames = {0: teddy, 1: apple, 2: np.ascontiguousarray(apple[:, ::-1])}
    for sub in ("rgb/2x", "camera", "splits") + (("covisible/2x/val",) if covisible else ()):
        (root / sub).mkdir(parents=True)
    rows = {"train": [], "val": []}
    for cam in (0, 1, 2):
        for t in range(DY_TIMES):
            if cam and t not in DY_VAL[cam]:
                continue
            name = f"{cam}_{t:05d}"
            cv2.imwrite(str(root / "rgb/2x" / f"{name}.png"), cv2.cvtColor(frames[cam][t], cv2.COLOR_RGB2BGR))
            intr, c2w = dycheck_camera(cam, t)
            (root / "camera" / f"{name}.json").write_text(json.dumps(dycheck_camera_dict(intr, c2w)))
            rows["val" if cam else "train"].append((name, cam, t))
            if cam and covisible:
                cov = np.zeros((DY_H, DY_W), np.uint8)
                cov[: DY_H // 2] = 255
                cv2.imwrite(str(root / "covisible/2x/val" / f"{name}.png"), cov)
    for split, entries in rows.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps({
            "frame_names": [e[0] for e in entries], "camera_ids": [e[1] for e in entries],
            "time_ids": [e[2] for e in entries]}))  # fmt: skip
    return frames
