"""The synthetic benchmark: ``mvt4g synth`` clips (or any clip directory), exact targets.

Data: ``--data-root`` is a clip directory (``videos/``, ``cameras/``; ``mvt4g.io.clip``) or a
folder of them. Each clip is a sequence; its reference is the view ``meta.json`` names as
``reference_view`` (``mvt4g synth`` writes ``cam01``), else the first view; every other view
is a target named after it (``cam02``, ...; views that ``mvt4g synth --preset-views`` added
are named after their preset, ``arc-left``, ...). The target's rendered frames are the ground
truth and its cameras, exact and in the reference's world, the target trajectory. No masks
for masked PSNR: every pixel of a render is valid. Where the clip has exact depth and object
masks (``mvt4g synth`` writes both), each item carries the ``region_psnr`` regions
(``mvt4g.eval.covisibility``): moving objects, and the target pixels covisible with the
reference, split into static and moving. Synchronised views: object motion is the same in both
at every instant, so the epipolar proxy needs no static mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvt4g.errors import InputError
from mvt4g.eval.bench.items import BenchItem, Benchmark, select
from mvt4g.eval.covisibility import covisible_mask, synthetic_regions
from mvt4g.io.clip import Clip, read_clip


def _looks_like_clip(path: Path) -> bool:
    return (path / "videos").is_dir() and (path / "cameras").is_dir()


def reference_view(clip: Clip) -> str:
    """The clip's reference view: ``meta.json``'s ``reference_view``, else the first view."""
    name = clip.meta.get("reference_view")
    if name is None:
        return clip.views[0]
    if name not in clip.views:
        raise InputError(f"meta.json names reference view {name!r}, which has no video (views: {', '.join(clip.views)})",
                         path=clip.root / "meta.json")  # fmt: skip
    return str(name)


class SyntheticBench(Benchmark):
    name = "synthetic"
    has_ground_truth = True
    has_masks = False

    def __init__(self, data_root: str | Path, *, sequences: list[str] | None = None, trajectories: list[str] | None = None):
        self.root = Path(data_root)
        if not self.root.is_dir():
            raise InputError("no such folder", path=self.root)
        if _looks_like_clip(self.root):
            found = {self.root.name: self.root}
        else:
            found = {p.name: p for p in sorted(self.root.iterdir()) if p.is_dir() and _looks_like_clip(p)}
            if not found:
                raise InputError("no clip directory here (a clip has videos/ and cameras/; make some with mvt4g synth)",
                                 path=self.root)  # fmt: skip
        names = select(sorted(found), sequences, "clip", self.root)
        self.clips: dict[str, Clip] = {n: read_clip(found[n]) for n in names}
        self.references = {n: reference_view(c) for n, c in self.clips.items()}
        self.targets = {n: [v for v in c.views if v != self.references[n]] for n, c in self.clips.items()}
        for n, views in self.targets.items():
            if not views:
                raise InputError("clip has a single view: nothing to compare a generated view with", path=self.clips[n].root)
        if trajectories is not None:
            every = sorted({v for views in self.targets.values() for v in views})
            select(every, trajectories, "target view", self.root)
            self.targets = {n: [t for t in trajectories if t in views] for n, views in self.targets.items()}

    def keys(self) -> list[tuple[str, str]]:
        return [(n, v) for n, views in self.targets.items() for v in views]

    def describe(self) -> dict:
        return {
            "data_root": str(self.root),
            "sequences": {n: {"reference": self.references[n], "targets": self.targets[n]} for n in self.clips},
            "reference": "the clip's reference view (meta.json reference_view, else the first) with its exact cameras",
            "targets": "every other view: exact cameras in the same world",
            "ground_truth": "the target view's rendered frames",
        }

    def load(self, sequence: str, max_frames: int | None = None) -> list[BenchItem]:
        clip = self.clips[sequence]
        ref_view = self.references[sequence]
        n = clip.frames if max_frames is None else min(clip.frames, int(max_frames))
        reference = clip.read_video(ref_view)[:n]
        ref_cams = clip.cameras[ref_view].select_frames(range(n))
        exact = clip.has_depth() and all((clip.root / "masks" / f"{v}.npz").is_file() for v in clip.views)
        ref_depth = clip.read_depth(ref_view)[:n] if exact else None
        items = []
        for view in self.targets[sequence]:
            tgt_cams = clip.cameras[view].select_frames(range(n))
            regions = None
            if exact:
                covisible = covisible_mask(clip.read_depth(view)[:n], tgt_cams, ref_depth, ref_cams)
                regions = synthetic_regions(clip.read_masks(view)[:n], covisible)
            # A preset view starts at the reference's first pose: its frame 0 is the reference's frame 0.
            starts_at_reference = bool(np.allclose(tgt_cams.c2w[0], ref_cams.c2w[0], atol=1e-9)
                                       and np.allclose(tgt_cams.K[0], ref_cams.K[0]))  # fmt: skip
            items.append(BenchItem(
                sequence=sequence, trajectory=view, reference=reference, reference_cameras=ref_cams,
                target_cameras=tgt_cams, ground_truth=clip.read_video(view)[:n], regions=regions,
                first_scored_frame=1 if starts_at_reference else 0, fps=clip.fps,
                target_source=f"clip view {view} (exact cameras)", caption=clip.caption,
                notes=["pixel metrics score frames 1.. (frame 0 is the reference's own first pose)"]
                if starts_at_reference else [],
            ))  # fmt: skip
        return items
