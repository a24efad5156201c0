"""The iPhone benchmark (paper Table 2): DyCheck iPhone sequences, real target views as ground truth.

Data: ``--data-root`` is one DyCheck sequence folder (``rgb/Nx/``, ``camera/``, ``splits/`` or
``dataset.json``, optional ``covisible/Nx/val/``; see ``mvt4g.io.datasets``) or a folder of
them (every subfolder with ``rgb/`` and ``camera/``). Resolution: the ``2x`` images (DyCheck's
evaluation resolution) when the sequence has them, else ``1x``, else the smallest factor present.

Items: the reference is the handheld camera 0; each validation camera (1 and 2) is a target
named ``camN``, at the same time ids: the longest run of consecutive time ids that camera has
in the ``val`` split (a video needs contiguous time). Its real cameras are the target
trajectory, its frames the ground truth, its covisibility masks (True = the pixel was seen by
the training camera) the masks of masked PSNR/SSIM. A sequence without ``covisible/`` is
scored without the masked metrics (noted); one with an incomplete ``covisible/`` is a layout
error that names the missing file.
"""

from __future__ import annotations

from pathlib import Path

from mvt4g.camera.rig import ViewCameras
from mvt4g.errors import InputError
from mvt4g.eval.bench.items import BenchItem, Benchmark, select
from mvt4g.io.datasets import DycheckSequence

#: Downsampling factors tried in this order (DyCheck evaluates at 2x).
FACTOR_PREFERENCE = (2, 1, 4, 8)
REFERENCE_CAMERA = 0


def _looks_like_sequence(path: Path) -> bool:
    return (path / "rgb").is_dir() and (path / "camera").is_dir()


def _factor(root: Path) -> int:
    for factor in FACTOR_PREFERENCE:
        if (root / "rgb" / f"{factor}x").is_dir():
            return factor
    raise InputError("not a DyCheck sequence: no rgb/1x/ or rgb/2x/ folder", path=root)


def target_name(camera_id: int) -> str:
    return f"cam{camera_id}"


class IphoneBench(Benchmark):
    name = "iphone"
    has_ground_truth = True
    has_masks = True

    def __init__(self, data_root: str | Path, *, sequences: list[str] | None = None, trajectories: list[str] | None = None):
        self.root = Path(data_root)
        if not self.root.is_dir():
            raise InputError("no such folder", path=self.root)
        if _looks_like_sequence(self.root):
            found = {self.root.name: self.root}
        else:
            found = {p.name: p for p in sorted(self.root.iterdir()) if p.is_dir() and _looks_like_sequence(p)}
            if not found:
                raise InputError("no DyCheck sequence here (a sequence folder has rgb/2x/ or rgb/1x/ and camera/)",
                                 path=self.root)  # fmt: skip
        names = select(sorted(found), sequences, "DyCheck sequence", self.root)
        self.sequences_: dict[str, DycheckSequence] = {n: DycheckSequence(found[n], _factor(found[n])) for n in names}
        self.targets: dict[str, list[str]] = {}
        for name, seq in self.sequences_.items():
            cams = sorted({cam for _, cam, _ in seq.split("val")})
            if not cams:
                raise InputError("the val split lists no frames", path=seq.root)
            if REFERENCE_CAMERA in cams:
                raise InputError(f"the val split lists the reference camera {REFERENCE_CAMERA}", path=seq.root)
            self.targets[name] = [target_name(c) for c in cams]
        if trajectories is not None:
            every = sorted({t for names_ in self.targets.values() for t in names_})
            select(every, trajectories, "iPhone target camera", self.root)
            self.targets = {s: [t for t in trajectories if t in ts] for s, ts in self.targets.items()}

    def keys(self) -> list[tuple[str, str]]:
        return [(seq, t) for seq, ts in self.targets.items() for t in ts]

    def describe(self) -> dict:
        return {
            "data_root": str(self.root),
            "sequences": {n: {"factor": s.factor, "targets": self.targets[n]} for n, s in self.sequences_.items()},
            "reference": f"DyCheck camera {REFERENCE_CAMERA} (handheld) with its real cameras",
            "targets": "validation cameras at the same time ids (longest consecutive run), real cameras",
            "ground_truth": "validation camera frames; masks: covisible/ (True = seen in training)",
        }

    def load(self, sequence: str, max_frames: int | None = None) -> list[BenchItem]:
        seq = self.sequences_[sequence]
        covisible = (seq.root / "covisible").is_dir()
        wanted = set(self.targets[sequence])
        items = []
        for pair in seq.benchmark_pairs(max_frames, covisible=covisible):
            name = target_name(pair.target.camera_id)
            if name not in wanted:
                continue
            ref, tgt = pair.reference, pair.target
            times = tgt.time_ids
            run = f"time ids {int(times[0])}-{int(times[-1])} at {seq.factor}x"
            notes = [f"{run} (the longest consecutive run of camera {tgt.camera_id}'s validation frames)"]
            if not covisible:
                notes.append("no covisible/ folder: masked metrics not computed")
            ref_cams = ViewCameras(ref.frames.shape[2], ref.frames.shape[1], ref.K, ref.c2w)
            tgt_cams = ViewCameras(tgt.frames.shape[2], tgt.frames.shape[1], tgt.K, tgt.c2w)
            items.append(BenchItem(
                sequence=sequence, trajectory=name, reference=ref.frames, reference_cameras=ref_cams,
                target_cameras=tgt_cams, ground_truth=tgt.frames, masks=tgt.covisible, fps=30.0,
                target_source=f"DyCheck camera {tgt.camera_id}", notes=notes,
            ))  # fmt: skip
        order = {t: i for i, t in enumerate(self.targets[sequence])}
        return sorted(items, key=lambda it: order[it.trajectory])
