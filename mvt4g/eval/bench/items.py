"""What every benchmark of ``mvt4g eval`` hands the runner: :class:`BenchItem` (one reference,
its targets and ground truth) and the :class:`Benchmark` interface, with the name filters
the three benchmarks share. The package docstring (:mod:`mvt4g.eval.bench`) says what each
benchmark scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.errors import InputError
from mvt4g.io.frames import resize_cover


@dataclass
class BenchItem:
    """One thing to score: a reference, a target camera path and what the result is compared with.

    Attributes:
        sequence, trajectory: the item's name (the generated video is ``SEQUENCE/TRAJECTORY.mp4``).
        reference: uint8 ``[T, H, W, 3]`` reference frames.
        reference_cameras: ``ViewCameras`` of the reference (T frames, at its size), or ``None``
            when they are unknown (DAVIS); see :meth:`reference_cameras_or_static`.
        target_cameras: ``ViewCameras`` the generated video should have been filmed with, in the
            same world as the reference cameras (T frames, at the ground truth's size, or the
            reference's when there is none).
        ground_truth: uint8 ``[T, H, W, 3]`` real target frames, or ``None``.
        masks: bool ``[T, H, W]`` over the ground truth, True = scored by the masked metrics
            (DyCheck covisibility), or ``None``.
        static_mask: bool ``[T, H, W]`` over the reference, True = static background (DAVIS
            annotations): the epipolar proxy uses only features there. ``None``: all pixels.
        regions: named bool ``[T, H, W]`` masks over the ground truth scored by the
            ``region_psnr`` metrics (``mvt4g.eval.covisibility.REGIONS``: moving objects, and
            the parts covisible with the reference, static and moving), or ``None``.
        first_scored_frame: pixel metrics (PSNR, SSIM, their masked and region variants, LPIPS)
            score frames from this one on: a preset trajectory starts at the reference's own
            first pose, so its frame 0 is the reference's frame 0 and only says the model can
            copy (the copy baseline's PSNR there is infinite).
        fps: frame rate of the reference.
        target_source: where the target cameras come from, in words.
        notes: what the benchmark assumed or dropped for this item.
        caption: the reference's caption (its clip's or a ``metadata.csv``'s): the prompt a model
            with a text encoder is given, as ReCamMaster prompts with its test videos' captions.
        retarget: for trajectories defined by their length (presets), a function giving the
            target cameras for ``n`` frames; :meth:`fit` calls it instead of cutting
            ``target_cameras`` (a preset over 81 frames is not the first 81 poses of a longer one).
    """

    sequence: str
    trajectory: str
    reference: np.ndarray
    reference_cameras: ViewCameras | None
    target_cameras: ViewCameras
    ground_truth: np.ndarray | None = None
    masks: np.ndarray | None = None
    static_mask: np.ndarray | None = None
    regions: dict[str, np.ndarray] | None = None
    first_scored_frame: int = 0
    fps: float = 30.0
    target_source: str = ""
    notes: list[str] = field(default_factory=list)
    caption: str = ""
    retarget: Callable[[int], ViewCameras] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.sequence, self.trajectory

    @property
    def label(self) -> str:
        return f"{self.sequence}/{self.trajectory}"

    @property
    def frames(self) -> int:
        """Frames available (the shorter of reference and ground truth)."""
        n = self.reference.shape[0]
        return n if self.ground_truth is None else min(n, self.ground_truth.shape[0])

    @property
    def target_size(self) -> tuple[int, int]:
        """``(H, W)`` a generated video is compared at by default: the ground truth's, else the reference's."""
        src = self.ground_truth if self.ground_truth is not None else self.reference
        return int(src.shape[1]), int(src.shape[2])

    def reference_cameras_or_static(self) -> ViewCameras:
        """The reference cameras; unknown ones are taken as static (identity pose) with the
        target's first intrinsics (ReCamMaster's convention for monocular videos)."""
        if self.reference_cameras is not None:
            return self.reference_cameras
        T, H, W = self.reference.shape[:3]
        K = self.target_cameras.K[0]
        sx, sy = W / self.target_cameras.width, H / self.target_cameras.height
        K = np.diag([sx, sy, 1.0]) @ K
        return ViewCameras(W, H, np.repeat(K[None], T, 0), np.tile(np.eye(4), (T, 1, 1)))

    def fit(self, frames: int, size: tuple[int, int] | None = None) -> BenchItem:
        """The first ``frames`` frames of everything, cover-resized to ``size`` = ``(H, W)`` when given.

        Raises :class:`InputError` when the item has fewer frames.
        """
        if frames > self.frames:
            what = "reference" if self.reference.shape[0] < frames else "ground truth"
            raise InputError(f"{self.label}: needs {frames} frames but the {what} has {self.frames}")
        if frames < 2:
            raise InputError(f"{self.label}: needs at least 2 frames to score, got {frames}")
        keep = np.arange(frames)
        ref_cams = None if self.reference_cameras is None else self.reference_cameras.select_frames(keep)
        out = replace(
            self,
            reference=self.reference[:frames],
            reference_cameras=ref_cams,
            target_cameras=self.retarget(frames) if self.retarget else self.target_cameras.select_frames(keep),
            ground_truth=None if self.ground_truth is None else self.ground_truth[:frames],
            masks=None if self.masks is None else self.masks[:frames],
            static_mask=None if self.static_mask is None else self.static_mask[:frames],
            regions=None if self.regions is None else {k: m[:frames] for k, m in self.regions.items()},
            notes=list(self.notes),
        )
        if size is None:
            return out
        return out._resized(*size)

    def _resized(self, height: int, width: int) -> BenchItem:
        def frames_to(video: np.ndarray | None) -> np.ndarray | None:
            if video is None or video.shape[1:3] == (height, width):
                return video
            return resize_cover(video, height, width)[0]

        def mask_to(mask: np.ndarray | None) -> np.ndarray | None:
            if mask is None or mask.shape[1:3] == (height, width):
                return mask
            return resize_cover(mask.astype(np.uint8), height, width, interpolation="nearest")[0] > 0

        def cams_to(cams: ViewCameras | None) -> ViewCameras | None:
            if cams is None or (cams.height, cams.width) == (height, width):
                return cams
            return cams.resized_cover(width, height)

        notes = list(self.notes)
        if self.target_size != (height, width) or self.reference.shape[1:3] != (height, width):
            src = self.target_size
            notes.append(f"reference{' and ground truth' if self.ground_truth is not None else ''} cover-resized "
                         f"from {src[1]}x{src[0]} to {width}x{height} (scale, centre crop)")  # fmt: skip
        return replace(
            self,
            reference=frames_to(self.reference),
            reference_cameras=cams_to(self.reference_cameras),
            target_cameras=cams_to(self.target_cameras),
            ground_truth=frames_to(self.ground_truth),
            masks=mask_to(self.masks),
            static_mask=mask_to(self.static_mask),
            regions=None if self.regions is None else {k: mask_to(m) for k, m in self.regions.items()},
            notes=notes,
        )


class Benchmark:
    """Interface of the three benchmarks (see the module docstring)."""

    name: str = ""
    #: Whether items have ground-truth target frames (pixel metrics need them).
    has_ground_truth: bool = False
    #: Whether items have masks for the masked pixel metrics.
    has_masks: bool = False

    def keys(self) -> list[tuple[str, str]]:
        """Every ``(sequence, trajectory)`` item, in order."""
        raise NotImplementedError

    def sequences(self) -> list[str]:
        seen: dict[str, None] = {}
        for seq, _ in self.keys():
            seen.setdefault(seq)
        return list(seen)

    def load(self, sequence: str, max_frames: int | None = None) -> list[BenchItem]:
        """The items of one sequence (frames read now), at most ``max_frames`` frames each."""
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON-ready description (data root, what the references and targets are)."""
        raise NotImplementedError


def parse_names(text: str | None, what: str) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]`` (None stays None); empty entries are refused."""
    if text is None:
        return None
    names = [part.strip() for part in str(text).split(",")]
    if not names or any(not n for n in names):
        raise InputError(f"--{what} needs names separated by commas, without empty entries")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"--{what} lists {', '.join(dupes)} more than once")
    return names


def select(available: list[str], wanted: list[str] | None, what: str, where: object) -> list[str]:
    """``wanted`` in its order (all of ``available`` when None); unknown names are an InputError."""
    if wanted is None:
        return list(available)
    unknown = [w for w in wanted if w not in available]
    if unknown:
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        raise InputError(f"no {what} {unknown[0]!r} (available: {shown or 'none'})", path=where)
    return list(wanted)
