"""The DAVIS benchmark (paper Table 1): DAVIS 2017 sequences re-filmed along camera-trajectory presets.

Data: a DAVIS 2017 folder (``mvt4g.io.datasets.DavisDataset``: ``JPEGImages/480p/SEQ/*.jpg``,
optional ``Annotations/480p/SEQ/*.png``, ``ImageSets/2017/val.txt``). Sequences: the ``val``
split, or ``--sequences``. Trajectories: ReCamMaster's 10 presets (cam01 pan-right ... cam10
arc-right, ``RECAMMASTER_CAMERAS``) or ``--traj`` (preset names or trajectory files, as
``mvt4g generate --traj`` takes them). An item's name is ``SEQUENCE/TRAJECTORY`` where
TRAJECTORY is the preset name or the file's stem, the names ``mvt4g generate --out-dir`` uses.

Cameras: DAVIS publishes none. As ReCamMaster (and ``mvt4g generate`` without
``--ref-cameras``) does, the reference camera is ASSUMED static at the identity and the target
trajectory starts there; intrinsics are the default 24 mm lens on a 23.76 mm-wide sensor
(52.7 degrees horizontally), or ``--fov``. DAVIS videos are handheld, so the assumption is
only approximately true: the camera metrics compare the generated video's own estimated
motion with the requested trajectory (unaffected), but the epipolar and track-consistency
proxies relate reference frame t to generated frame t through the assumed cameras, and the
reference's real motion since frame 0 adds to their error (documented in every item's notes).

No ground-truth target views exist, so pixel metrics (PSNR, SSIM, LPIPS) do not apply.
Moving objects: when every frame has an annotation, the epipolar proxy uses only features on
the background (object id 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.camera.trajectories import RECAMMASTER_CAMERAS
from mvt4g.errors import InputError
from mvt4g.eval.bench.items import BenchItem, Benchmark, select
from mvt4g.io.captions import reference_caption
from mvt4g.io.datasets import DavisDataset

DEFAULT_SPLIT = "val"
ASSUMED_STATIC_NOTE = (
    "DAVIS has no cameras: the reference camera is assumed static, so the epipolar and track "
    "proxies also count the real handheld motion of the reference"
)


def default_trajectories() -> list[str]:
    """ReCamMaster's 10 presets in camera order (cam01 ... cam10)."""
    return [RECAMMASTER_CAMERAS[f"cam{i:02d}"] for i in range(1, 11)]


class DavisBench(Benchmark):
    name = "davis"
    has_ground_truth = False
    has_masks = False

    def __init__(
        self,
        data_root: str | Path,
        *,
        sequences: list[str] | None = None,
        trajectories: list[str] | None = None,
        fov_deg: float | None = None,
    ):
        from mvt4g.sample.reference import ReferenceOptions
        from mvt4g.sample.targets import trajectory_targets

        self.root = Path(data_root)
        self.dataset = DavisDataset(self.root)
        listed = self.dataset.sequences("all") if sequences is not None else self.dataset.sequences(DEFAULT_SPLIT)
        self.sequence_names = select(listed, sequences, "DAVIS sequence", self.dataset.frames_root)
        for seq in self.sequence_names:
            self.dataset.sequence(seq)  # names the missing frame folder now, before any work
        self.trajectories = trajectory_targets(trajectories or default_trajectories())
        # Checked here so a bad --fov fails before any work (same rules as generate's).
        self.options = ReferenceOptions(frames=1, height=1, width=1, fov_deg=fov_deg)

    def keys(self) -> list[tuple[str, str]]:
        return [(seq, traj.name) for seq in self.sequence_names for traj in self.trajectories]

    def describe(self) -> dict:
        from mvt4g.sample.reference import source_intrinsics

        _, how = source_intrinsics(854, 480, self.options)
        return {
            "data_root": str(self.root),
            "sequences": list(self.sequence_names),
            "trajectories": {t.name: t.source for t in self.trajectories},
            "reference": "DAVIS frames; camera assumed static (DAVIS has no cameras)",
            "intrinsics": how,
            "targets": "trajectory relative to the reference's first pose",
            "ground_truth": None,
        }

    def load(self, sequence: str, max_frames: int | None = None) -> list[BenchItem]:
        from mvt4g.sample.reference import source_intrinsics
        from mvt4g.sample.targets import target_cameras

        seq = self.dataset.sequence(sequence)
        video = seq.read_frames(max_frames)
        frames = video.frames
        T, H, W = frames.shape[:3]
        notes = [ASSUMED_STATIC_NOTE]
        static = None
        try:
            masks = seq.read_masks(max_frames)
        except InputError as exc:
            masks = None
            notes.append(f"no background mask for the epipolar proxy ({exc}): all pixels used")
        if masks is None and seq.annotations_dir is None:
            notes.append("no background mask for the epipolar proxy (no Annotations folder): all pixels used")
        if masks is not None:
            if masks.shape != (T, H, W):
                notes.append(f"annotations are {masks.shape[2]}x{masks.shape[1]}, frames {W}x{H}: not used")
            else:
                static = masks == 0
        intr, _ = source_intrinsics(W, H, self.options)
        static_cams = ViewCameras(W, H, intr.K, np.tile(np.eye(4), (T, 1, 1)))
        caption = reference_caption(seq.frames_dir).text  # a metadata.csv row naming the frame folder, if any
        items = []
        for traj in self.trajectories:

            def retarget(n: int, traj=traj) -> ViewCameras:
                # The preset's whole move over the n frames actually scored.
                return target_cameras(static_cams.select_frames(np.arange(n)), traj.poses(n)[0])

            item_notes = list(notes)
            if traj.file_poses is not None:
                item_notes.append(f"trajectory file has {len(traj.file_poses)} poses: resampled to the scored "
                                  "frame count when that differs")  # fmt: skip
            items.append(BenchItem(
                sequence=sequence, trajectory=traj.name, reference=frames, reference_cameras=None,
                target_cameras=retarget(T), static_mask=static, fps=video.fps,
                target_source=traj.source, notes=item_notes, retarget=retarget, caption=caption,
            ))  # fmt: skip
        return items
