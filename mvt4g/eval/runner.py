"""Score a benchmark: get each item's generated video (from a folder or a model) and compute the metrics.

Two sources, the same scoring code:

* :class:`FolderSource` (``--videos DIR``): videos made by any method, laid out as
  ``DIR/SEQUENCE/TRAJECTORY.mp4``. Items without a video are reported as skipped; ``.mp4``
  files that match no item are reported as extra (``mvt4g generate``'s companion files
  ``*.side-by-side.mp4`` and ``*.tracks.mp4`` are ignored); the rest are scored.
* :class:`ModelSource` (``--model DIR``): generates each item with ``mvt4g.sample``'s
  ``GeneratePipeline`` (the model loaded once), from the item's reference and cameras
  (unknown reference cameras, DAVIS, are taken as static). Metrics are computed on the
  generated frames themselves; with ``--save-videos DIR`` each video is written as
  ``DIR/SEQUENCE/TRAJECTORY.mp4`` (H.264, lossy) and the metrics are computed on that file as
  decoded, so ``--videos DIR`` (at the same ``--size``) scores exactly the same frames. Existing
  files there are refused before any work unless ``--overwrite``. Items of one sequence share
  the reference and the seed, so a model whose output ignores the target camera (an untrained,
  zero-initialised camera path) makes the same video for all of them: such repeats are named in
  :attr:`EvalResult.warnings`.

Frames: a folder video is scored over its own length (or its first ``--frames``); the
reference and ground truth are cut to the same first frames (an item whose reference or
ground truth is shorter is skipped). With a model, every item has ``--frames`` frames (the
model's default when not given); shorter sequences are skipped.

Sizes: everything is scored at one size per item: ``--size`` when given (references, ground
truth, masks and cameras cover-resized and centre-cropped to it, as ``mvt4g generate`` fits a
reference), else with a model the model's size, else the ground truth's own size (the
reference's on DAVIS). A folder video of another size is resized to it (OpenCV area
interpolation when shrinking, bilinear when enlarging; noted in the item) when the aspect
ratios agree within 1 %; otherwise the item is skipped with the reason (pass ``--size`` to score
at the video's size). Nothing is cropped from a generated video.

Metric groups (``--metrics``): ``psnr``, ``ssim``, ``masked_psnr``, ``masked_ssim``,
``region_psnr`` (psnr_moving, psnr_covisible_static, psnr_covisible_moving: PSNR over the
synthetic benchmark's exact regions, ``mvt4g.eval.covisibility``), ``temporal_flickering``, ``camera`` (rot_err, trans_err, cam_mc), ``epipolar``
(epipolar_error), ``tracks`` (track_consistency, track_error) and the learned metrics of
``mvt4g.eval.learned`` (run only with their weights in ``--weights-dir``; LPIPS is the one
implemented). A metric that fails for one video (e.g. its camera poses cannot be estimated) is
left out of that video with the reason; the others are still computed. Cameras: ``camera``
estimates the generated video's poses with the target cameras' intrinsics (the video was asked
to be filmed with them) and compares them with the target trajectory; ``epipolar`` and
``tracks`` relate reference frame t to generated frame t through the reference cameras (static
when unknown) and the target cameras.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mvt4g.errors import InputError, MVT4GError, WorkFailed
from mvt4g.eval import camera_metrics, epipolar, image_metrics, learned, pose_estimation, track_consistency
from mvt4g.eval import pose_estimators
from mvt4g.eval.bench import BenchItem, Benchmark
from mvt4g.io.captions import WAN_NEGATIVE_PROMPT
from mvt4g.eval.inputs import MetricUnavailable
from mvt4g.eval.report import CAMERA_METRICS, SkippedVideo, VideoResult, metric_descriptions

WEIGHT_FREE_GROUPS = ("psnr", "ssim", "masked_psnr", "masked_ssim", "region_psnr", "temporal_flickering", "camera",
                      "epipolar", "tracks")
ALL_GROUPS = WEIGHT_FREE_GROUPS + tuple(learned.REGISTRY)
ALIASES = {"flicker": "temporal_flickering", "track_consistency": "tracks", "epipolar_error": "epipolar",
           **{m: "camera" for m in CAMERA_METRICS}}  # fmt: skip
NEEDS_GROUND_TRUTH = ("psnr", "ssim", "masked_psnr", "masked_ssim", "region_psnr", "lpips")
COMPANION_SUFFIXES = (".side-by-side.mp4", ".tracks.mp4")
#: Largest relative aspect-ratio difference at which a folder video is resized rather than refused.
ASPECT_TOLERANCE = 0.01


def parse_metrics(text: str | None) -> list[str]:
    """``--metrics`` -> metric groups in canonical order (``None`` or ``all``: every group)."""
    if text is None or text.strip() == "all":
        return list(ALL_GROUPS)
    names = [ALIASES.get(p.strip(), p.strip()) for p in text.split(",")]
    if any(not n for n in names):
        raise InputError("--metrics needs names separated by commas, without empty entries")
    unknown = [n for n in names if n not in ALL_GROUPS]
    if unknown:
        raise InputError(f"unknown metric {unknown[0]!r} (choose all or from: {', '.join(ALL_GROUPS)})")
    return [g for g in ALL_GROUPS if g in names]


@dataclass
class EvalSettings:
    """What to compute (``groups``) and how (camera convention, weights, frames, size, pose settings)."""

    groups: list[str] = field(default_factory=lambda: list(ALL_GROUPS))
    camera_metric: str = "camctrl"
    weights_dir: Path | None = None
    frames: int | None = None
    size: tuple[int, int] | None = None
    pose: pose_estimation.PoseSettings = field(default_factory=pose_estimation.PoseSettings)
    #: ``builtin``, ``colmap`` or a plug-in ``MODULE:CALLABLE`` (``mvt4g.eval.pose_estimators``).
    pose_estimator: str = pose_estimators.DEFAULT

    def __post_init__(self) -> None:
        self._estimate = pose_estimators.resolve(self.pose_estimator)  # a bad plug-in is refused before any work
        if self.camera_metric not in camera_metrics.CONVENTIONS:
            raise InputError(f"--camera-metric must be {' or '.join(camera_metrics.CONVENTIONS)}, got {self.camera_metric!r}")
        if self.frames is not None and self.frames < 2:
            raise InputError(f"--frames must be at least 2, got {self.frames}")
        if self.weights_dir is not None and not Path(self.weights_dir).is_dir():
            raise InputError("--weights-dir: no such folder", path=self.weights_dir)


# ----------------------------------------------------------------------------- sources


def _size_mismatch(video: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str]:
    """``video`` resized to ``height x width`` and a note, or InputError when the aspect differs."""
    h, w = video.shape[1:3]
    if abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(f"video is {w}x{h} but this item is scored at {width}x{height} (the ground truth's size, "
                         f"or the reference's, or --size) and the aspect ratios differ; pass --size {h}x{w} to score "
                         "at the video's size")  # fmt: skip
    interp = cv2.INTER_AREA if w > width else cv2.INTER_LINEAR
    out = np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in video])
    return out, f"video resized from {w}x{h} to {width}x{height} ({'area' if w > width else 'bilinear'})"


class FolderSource:
    """Videos already made, ``ROOT/SEQUENCE/TRAJECTORY.mp4`` (see the module docstring)."""

    kind = "videos"

    def __init__(self, root: str | Path, keys: list[tuple[str, str]]):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError("--videos: no such folder", path=self.root)
        self.paths: dict[tuple[str, str], Path] = {}
        self.missing: list[tuple[str, str]] = []
        for key in keys:
            path = self.root / key[0] / f"{key[1]}.mp4"
            if path.is_file():
                self.paths[key] = path
            else:
                self.missing.append(key)
        wanted = {p.resolve() for p in self.paths.values()}
        # Hidden names are skipped: a writer's temporary (.cam02.….tmp.mp4, left by kill -9) is no result.
        files = sorted(p for p in self.root.rglob("*.mp4") if p.is_file() and not p.name.endswith(COMPANION_SUFFIXES)
                       and not any(part.startswith(".") for part in p.relative_to(self.root).parts))  # fmt: skip
        self.extra = [str(p) for p in files if p.resolve() not in wanted]

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.root)}

    def frames_of(self, key: tuple[str, str], requested: int | None) -> int:
        """Frames the item is scored over: ``requested``, or the video's own count."""
        from mvt4g.io.video import probe_video

        count = probe_video(self.paths[key]).frames
        if requested is not None and count < requested:
            raise InputError(f"video has {count} frames, --frames asks for {requested}", path=self.paths[key])
        return requested or count

    def video(self, item: BenchItem) -> tuple[np.ndarray, str, list[str]]:
        """The item's video cut to the item's frames and sized to its target: (frames, path, notes)."""
        from mvt4g.io.video import read_video

        path = self.paths[item.key]
        T = item.reference.shape[0]
        frames = read_video(path, max_frames=T).frames
        if frames.shape[0] < T:
            raise InputError(f"decoded {frames.shape[0]} frames, expected {T}", path=path)
        height, width = item.target_size
        notes = []
        if frames.shape[1:3] != (height, width):
            try:
                frames, note = _size_mismatch(frames, height, width)
            except InputError as exc:
                raise InputError(str(exc), path=path) from None
            notes.append(note)
        return frames, str(path), notes


class ModelSource:
    """Generates each item with a model (``GeneratePipeline``), optionally saving the videos."""

    kind = "model"

    def __init__(self, model: str | Path, *, frames: int | None, size: tuple[int, int] | None, steps: int = 50,
                 seed: int = 0, device: str = "auto", save_dir: Path | None = None, overwrite: bool = False,
                 offload: str = "none"):  # fmt: skip
        from mvt4g.model.checkpoint import read_config
        from mvt4g.model.lookup import resolve_model
        from mvt4g.model.placement import check_offload
        from mvt4g.sample.pipeline import check_video_shape
        from mvt4g.sample.sampler import SamplingSettings

        self.model_dir = resolve_model(model)
        config = read_config(self.model_dir)
        self.frames = frames or config.video.frames
        self.size = size or (config.video.height, config.video.width)
        check_video_shape(config, self.frames, *self.size)
        if steps < 1:
            raise InputError(f"--steps must be at least 1, got {steps}")
        self.settings = SamplingSettings(steps=steps)
        self.seed = seed
        self.device = device
        self.offload = check_offload(offload)  # where the models wait (mvt4g.sample.offload): the same videos
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.overwrite = overwrite
        self.pipeline = None
        self.missing: list[tuple[str, str]] = []
        self.extra: list[str] = []
        #: Generated videos so far, in order: ("SEQUENCE/TRAJECTORY", digest of the frames).
        self.digests: list[tuple[str, str]] = []

    @property
    def warnings(self) -> list[str]:
        return repeat_warnings(self.digests)

    def check_outputs(self, keys: list[tuple[str, str]]) -> None:
        """Before any work: the save folder's parent exists and no video would be overwritten unasked."""
        if self.save_dir is None:
            return
        from mvt4g.errors import OutputExistsError
        from mvt4g.fs.atomic import check_output_path

        check_output_path(self.save_dir, overwrite=True, is_dir=True)
        for sequence, trajectory in keys:
            path = self.save_dir / sequence / f"{trajectory}.mp4"
            if path.exists() and not self.overwrite:
                raise OutputExistsError("output exists (pass --overwrite to replace it)", path=path)

    def load(self) -> None:
        from mvt4g.sample.pipeline import GeneratePipeline

        if self.pipeline is None:
            self.pipeline = GeneratePipeline(self.model_dir, device=self.device, offload=self.offload)

    def describe(self) -> dict:
        device = str(self.pipeline.device) if self.pipeline is not None else self.device
        out = {"kind": self.kind, "path": str(self.model_dir), "steps": self.settings.steps, "seed": self.seed,
               "sampler": self.settings.sampler, "shift": self.settings.shift, "device": device, "offload": self.offload,
               "note": "metrics are computed on the generated frames before any video encoding"}  # fmt: skip
        if self.save_dir is not None:
            height, width = self.size
            out["note"] = ("metrics are computed on the saved videos as decoded (H.264 is lossy), the frames "
                           "`--videos` scores")  # fmt: skip
            out["saved"] = str(self.save_dir)
            out["rescore"] = f"--videos {self.save_dir} --size {height}x{width} --frames {self.frames}"
        return out

    def frames_of(self, key: tuple[str, str], requested: int | None) -> int:
        return self.frames

    def video(self, item: BenchItem) -> tuple[np.ndarray, str | None, list[str]]:
        from mvt4g.sample.reference import PreparedReference

        self.load()
        cams = item.reference_cameras_or_static()
        ref = PreparedReference(path=Path(item.sequence), frames=np.ascontiguousarray(item.reference), fps=item.fps,
                                cameras=cams, report={})  # fmt: skip
        start = time.perf_counter()
        result = self.pipeline.generate(ref, item.target_cameras, settings=self.settings, seed=self.seed,
                                        prompt=item.caption or None, negative_prompt=WAN_NEGATIVE_PROMPT)  # fmt: skip
        notes = [f"generated in {time.perf_counter() - start:.1f} s ({self.settings.steps} steps, seed {self.seed})"]
        guidance = result.info.get("guidance") or {}
        if guidance.get("applied"):
            notes.append(f"prompted with its caption, guidance {guidance['scale']:g} against Wan's negative prompt")
        self._check_repeat(item, result.frames)
        if self.save_dir is None:
            return result.frames, None, notes
        from mvt4g.io.video import read_video, write_video

        out = self.save_dir / item.sequence / f"{item.trajectory}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_video(out, result.frames, fps=item.fps, overwrite=self.overwrite)
        # Score what was saved: H.264 (yuv420p) is lossy, and on noisy frames (an untrained model)
        # the loss moves PSNR by dB; scoring the decoded file makes `--videos` agree exactly.
        saved = read_video(out).frames
        if saved.shape != result.frames.shape:
            raise WorkFailed(f"the saved video decodes to shape {list(saved.shape)}, not {list(result.frames.shape)}",
                             path=out)  # fmt: skip
        notes.append("scored as saved (H.264, decoded)")
        return saved, str(out), notes

    def _check_repeat(self, item: BenchItem, frames: np.ndarray) -> None:
        """Note when this video equals one generated before (same reference and seed, other target)."""
        import hashlib

        self.digests.append((f"{item.sequence}/{item.trajectory}", hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()))


def repeat_warnings(digests: list[tuple[str, str]]) -> list[str]:
    """A warning for every video equal to an earlier one of ``digests`` ((label, digest) in order)."""
    seen: dict[str, str] = {}
    out = []
    for label, digest in digests:
        first = seen.setdefault(digest, label)
        if first != label:
            out.append(f"{label} is the same video as {first}: the model's output does not depend on the "
                       "target camera (an untrained camera path?), so its scores differ only by ground truth")  # fmt: skip
    return out


class CopySource:
    """The "copy the reference" baseline: every item's video is its own reference, unchanged.

    What a model must beat to show it moved the camera at all (on ``synthetic`` and ``iphone``,
    whose items have ground truth); scored with the same code as any other source.
    """

    kind = "copy"

    def __init__(self, *, frames: int | None = None, size: tuple[int, int] | None = None):
        self.frames = frames  # None: every frame of each item
        self.size = size
        self.missing: list[tuple[str, str]] = []
        self.extra: list[str] = []

    def describe(self) -> dict:
        return {"kind": self.kind, "note": "the reference video scored as if it were the generated one"}

    def frames_of(self, key: tuple[str, str], requested: int | None) -> int | None:
        return requested or self.frames

    def video(self, item: BenchItem) -> tuple[np.ndarray, str | None, list[str]]:
        frames = np.ascontiguousarray(item.reference)
        height, width = item.target_size
        if frames.shape[1:3] != (height, width):
            frames, note = _size_mismatch(frames, height, width)
            return frames, None, [note]
        return frames, None, []


# ----------------------------------------------------------------------------- scoring


@dataclass
class EvalResult:
    """Everything a report needs."""

    results: list[VideoResult]
    skipped_videos: list[SkippedVideo]
    extra_videos: list[str]
    skipped_metrics: dict[str, str]
    metric_info: dict[str, dict[str, str]]
    #: Lines worth a warning that concern no single metric (e.g. a model that made the same video twice).
    warnings: list[str] = field(default_factory=list)


def bench_exclusions(bench: Benchmark, groups: list[str], weights_dir: Path | None) -> tuple[dict[str, str], object]:
    """Metrics the whole benchmark cannot have (with reasons) and the loaded LPIPS model (or None)."""
    skipped: dict[str, str] = {}
    for group in groups:
        if group in NEEDS_GROUND_TRUTH and not bench.has_ground_truth:
            skipped[group] = f"needs ground-truth target frames; the {bench.name} benchmark has none"
        elif group == "region_psnr" and bench.name != "synthetic":
            skipped[group] = f"needs exact depth and object masks; the {bench.name} benchmark has none"
        elif group in ("masked_psnr", "masked_ssim") and not bench.has_masks:
            skipped[group] = f"needs masks; the {bench.name} benchmark has none (every pixel is scored by {group[7:]})"
    lpips_model = None
    for group in groups:
        if group not in learned.REGISTRY or group in skipped:
            continue
        status = learned.metric_status(group, weights_dir)
        if status != "ready":
            skipped[group] = status.removeprefix("skipped: ")
        elif group == "lpips":
            try:
                lpips_model = learned.load_lpips(weights_dir)
            except InputError as exc:
                skipped[group] = f"weights rejected: {exc}"
    return skipped, lpips_model


def score_video(item: BenchItem, generated: np.ndarray, groups: list[str], settings: EvalSettings,
                lpips_model=None) -> tuple[dict[str, float], dict, dict[str, str]]:  # fmt: skip
    """Metrics, details and per-group skip reasons of one generated video against its item."""
    metrics: dict[str, float] = {}
    details: dict = {"seconds": {}}
    skipped: dict[str, str] = {}
    gt, masks, tgt = item.ground_truth, item.masks, item.target_cameras
    # Pixel metrics skip frames that equal the reference by construction (BenchItem.first_scored_frame).
    first = item.first_scored_frame
    px_gen = generated[first:]
    px_gt = None if gt is None else gt[first:]
    px_masks = None if masks is None else masks[first:]

    def run(group: str, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        try:
            fn()
        except MVT4GError as exc:  # InputError or MetricUnavailable: this metric has no honest value here
            skipped[group] = str(exc)
        details["seconds"][group] = round(time.perf_counter() - start, 4)

    def camera() -> None:
        try:
            if settings.pose_estimator == "builtin":
                est = pose_estimation.estimate_poses(generated, tgt.K[0], settings.pose)
            else:
                est = settings._estimate(generated, tgt.K[0])
        except MetricUnavailable:
            details["pose"] = {"estimator": settings.pose_estimator, "converged": False, "registered": 0,
                               "frames": len(generated)}  # fmt: skip
            raise
        details["pose"] = {"estimator": settings.pose_estimator, "converged": est.complete, **est.summary()}
        errs = camera_metrics.camera_errors(est.require_complete(), tgt.c2w, settings.camera_metric)
        metrics.update(rot_err=errs.rot_err, trans_err=errs.trans_err, cam_mc=errs.cam_mc)
        details["camera"] = {k: v for k, v in errs.to_dict().items() if k not in CAMERA_METRICS}

    def epipolar_proxy() -> None:
        ref = item.reference_cameras_or_static()
        res = epipolar.epipolar_error(item.reference, generated, ref.K, ref.c2w, tgt.K, tgt.c2w, static_mask=item.static_mask)
        metrics["epipolar_error"] = res.value
        details["epipolar"] = {k: v for k, v in res.to_dict().items() if k != "epipolar_error"}

    def region_psnr() -> None:
        if item.regions is None:
            raise InputError("this item has no exact depth and object masks (clips from mvt4g synth have both)")
        for region, mask in item.regions.items():
            if mask[first:].any():  # a region that is empty in every frame (no moving object in view) has no value
                metrics[f"psnr_{region}"] = image_metrics.psnr(px_gen, px_gt, mask=mask[first:])

    def tracks() -> None:
        ref = item.reference_cameras_or_static()
        res = track_consistency.track_consistency(item.reference, generated, ref.K, ref.c2w, tgt.K, tgt.c2w)
        metrics.update(track_consistency=res.consistency, track_error=res.error)
        details["tracks"] = {k: v for k, v in res.to_dict().items() if k not in ("track_consistency", "track_error")}

    computations: dict[str, Callable[[], None]] = {
        "psnr": lambda: metrics.__setitem__("psnr", image_metrics.psnr(px_gen, px_gt)),
        "ssim": lambda: metrics.__setitem__("ssim", image_metrics.ssim(px_gen, px_gt)),
        "masked_psnr": lambda: metrics.__setitem__("masked_psnr", image_metrics.psnr(px_gen, px_gt, mask=px_masks)),
        "masked_ssim": lambda: metrics.__setitem__("masked_ssim", image_metrics.ssim(px_gen, px_gt, mask=px_masks)),
        "region_psnr": region_psnr,
        "temporal_flickering": lambda: metrics.__setitem__("temporal_flickering", image_metrics.temporal_flickering(generated)),
        "camera": camera,
        "epipolar": epipolar_proxy,
        "tracks": tracks,
        "lpips": lambda: metrics.__setitem__("lpips", learned.lpips(lpips_model, px_gen, px_gt)),
    }
    for group in groups:
        if group in ("masked_psnr", "masked_ssim") and masks is None:
            skipped[group] = "this item has no masks"
            continue
        run(group, computations[group])
    return metrics, details, skipped


def run_eval(
    bench: Benchmark,
    source: FolderSource | ModelSource,
    settings: EvalSettings,
    *,
    on_item: Callable[[str, VideoResult | SkippedVideo], None] | None = None,
    ranks=None,
) -> EvalResult:
    """Score every item of ``bench`` that ``source`` can provide (see the module docstring).

    ``ranks`` (a ``mvt4g.model.distributed.DistContext``; None: one process): under torchrun
    each rank scores its share of the items (contiguous blocks in the order one process takes
    them, so a sequence is read by as few ranks as possible) and every rank returns the merged
    result, in one process's order: the report is the one a single process makes.
    """
    from mvt4g.model.distributed import shard

    info = metric_descriptions(settings.groups, settings.camera_metric, settings.pose_estimator)
    skipped_metrics, lpips_model = bench_exclusions(bench, settings.groups, settings.weights_dir)
    active = [g for g in settings.groups if g not in skipped_metrics and g in WEIGHT_FREE_GROUPS + ("lpips",)]
    rank, world = (ranks.rank, ranks.world_size) if ranks is not None else (0, 1)
    # (order, entry), sorted as one process appends them: missing videos, then per sequence the
    # items whose frames could not be counted, then the others in order.
    entries: list[tuple[tuple[int, int, int, int], VideoResult | SkippedVideo]] = []

    def skip(order: tuple[int, int, int, int], key: tuple[str, str], reason: str, failed: bool = False) -> None:
        s = SkippedVideo(key[0], key[1], reason, failed)
        entries.append((order, s))
        if on_item:
            on_item(f"{key[0]}/{key[1]}", s)

    if rank == 0:
        for n, key in enumerate(source.missing):
            skip((0, 0, 0, n), key, f"no video {key[0]}/{key[1]}.mp4 in {getattr(source, 'root', '')}")
    missing = set(source.missing)
    all_keys = bench.keys()
    order = [k for sequence in bench.sequences() for k in all_keys if k[0] == sequence and k not in missing]
    position = {key: i for i, key in enumerate(order)}
    mine = {order[i] for i in shard(len(order), rank, world)}
    for seq, sequence in enumerate(bench.sequences() if active else ()):
        keys = [k for k in all_keys if k[0] == sequence and k not in missing]
        if not any(k in mine for k in keys):
            continue
        # Frames of every item of the sequence, as one process reads it; only this rank's are scored.
        frames: dict[tuple[str, str], int] = {}
        for key in keys:
            try:
                frames[key] = source.frames_of(key, settings.frames)
            except InputError as exc:
                if key in mine:
                    skip((1, seq, 0, position[key]), key, str(exc))
        if not frames:
            continue
        try:
            counts = [c for c in frames.values() if c is not None]  # None: the item's own frame count
            items = {it.key: it for it in bench.load(sequence, max(counts) if len(counts) == len(frames) else None)}
        except InputError as exc:
            for key in frames:
                if key in mine:
                    skip((1, seq, 1, position[key]), key, f"sequence could not be read: {exc}")
            continue
        for key, count in frames.items():
            if key not in mine:
                continue
            try:
                size = settings.size or (source.size if isinstance(source, ModelSource) else None)
                item = items[key].fit(count or items[key].frames, size)
                generated, path, notes = source.video(item)
            except InputError as exc:
                skip((1, seq, 1, position[key]), key, str(exc))
                continue
            except MVT4GError as exc:  # the work failed for this item (e.g. NaN latents): the others still run
                skip((1, seq, 1, position[key]), key, str(exc), failed=True)
                continue
            metrics, details, per_skip = score_video(item, generated, active, settings, lpips_model)
            result = VideoResult(sequence, key[1], path, count, item.target_size, metrics, details, per_skip,
                                 item.notes + notes)  # fmt: skip
            entries.append(((1, seq, 1, position[key]), result))
            if on_item:
                on_item(f"{sequence}/{key[1]}", result)
    digests = list(getattr(source, "digests", []))
    if ranks is not None and ranks.distributed:
        from mvt4g.model.distributed import gather_objects

        parts = gather_objects((entries, digests), ranks)
        entries = [e for part, _ in parts for e in part]
        labels = {f"{k[0]}/{k[1]}": position[k] for k in order}
        digests = sorted((d for _, part in parts for d in part), key=lambda d: labels[d[0]])
    entries.sort(key=lambda e: e[0])
    results = [e for _, e in entries if isinstance(e, VideoResult)]
    skipped_videos = [e for _, e in entries if isinstance(e, SkippedVideo)]
    warnings = repeat_warnings(digests) if hasattr(source, "digests") else list(getattr(source, "warnings", []))
    return EvalResult(results, skipped_videos, list(source.extra), skipped_metrics, info, warnings)
