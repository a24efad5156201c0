"""Cross-view association of synchronized views with known cameras: multi-view plane sweep.

For a reference view a at one instant, every pixel gets the plane (and so the 3D point) that
best explains it in all other views together:

- planes of three orientations are swept (after Gallup et al., CVPR 2007): parallel to a's
  image, horizontal, and vertical facing camera a (the last two need the world's down
  direction, estimated from the cameras: :func:`mvt4g.tracks.flow.sweep_geometry.world_down`, and refined
  from the ground the sweep finds: :meth:`Associator.refine_down`, mvt4g.tracks.flow.ground). Wide
  baselines (cameras tens of degrees apart) distort a patch too much for one orientation;
- for each plane, every other view b is warped into a by the plane's homography and compared
  with a over a square window by zero-mean normalised cross-correlation (ZNCC). The plane's
  score is the mean of the best ``top_k`` ZNCCs over the views the window lands in, so a point
  hidden in some views still scores by the views that see it. ``top_k`` = 1 (the default) is
  the better choice for wide baselines at small sizes (measured on synth scenes at 96 x 160,
  cameras 15-100 degrees apart: right match within 2 px for 67 % of static and 47 % of moving
  points, against 63 % and 38 % with 2): a point is often seen well by one other view only;
- per pixel the best plane of all families wins (parabola-refined within its family) and is
  accepted when its score reaches ``min_score``, the window has texture, and the best score is
  clearly better than any rival: ``1 - best < uniqueness * (1 - rival)``, with rivals the planes
  more than two steps away in the winner's family and the other families' winners that land
  more than two pixels away in some view.

Association of a point p of a into view b (:meth:`Associator.associate`): the accepted plane at
p gives the match m in b; it must lie in b's image, its own ZNCC in b must reach
``min_view_zncc`` (b sees it, not an occluder), and b's own sweep at m must map back to within
``lr_px`` of p (left-right check). Anything else: not associated, never guessed.

The defaults accept more: without the uniqueness test (``uniqueness`` 1), with ``min_score`` and
``min_view_zncc`` 0.4 and ``lr_px`` 3, on synth scenes at 96 x 160 (seeds 7 and 99) 59 % of the
static points visible in another view were associated (95 % of them within 2 px) against 50 %
(97 %), and 31 % of the moving ones (85 %) against 25 % (91 %); the flow method's cross-view
delta_avg and Jaccard gained from it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from mvt4g.camera.rig import ViewCameras
from mvt4g.tracks.flow.config import MvsConfig
from mvt4g.tracks.flow.ground import GroundConfig, ground_plane
from mvt4g.tracks.flow.optical_flow import to_gray
from mvt4g.tracks.flow.sweep_geometry import (
    plane_normals,
    plane_points,
    plane_range,
    world_down,
)
from mvt4g.tracks.projection import relative_pose, to_cv

MIN_STD = 2.0  # grey levels: windows flatter than this carry no match
_NEAR = 2  # planes (or pixels) next to the winner that do not count as rivals


@dataclass
class PlaneMap:
    """Per-pixel winning plane of one reference view (working resolution), ``[H, W]`` each.

    ``view_zncc`` ``[B, H, W]``: the winner's ZNCC in each other view (``others`` order; -2 where
    the window leaves that view).
    """

    family: np.ndarray
    sigma: np.ndarray
    score: np.ndarray
    ok: np.ndarray
    view_zncc: np.ndarray
    normals: list[np.ndarray]
    others: list[int]


def sweep_threads() -> int:
    """Worker threads for a plane sweep's families: OpenCV's thread count (``cv2.setNumThreads(1)``: none)."""
    return max(1, cv2.getNumThreads())


def _box(img: np.ndarray, window: int, dst: np.ndarray | None = None) -> np.ndarray:
    return cv2.boxFilter(img, -1, (window, window), dst=dst, normalize=True, borderType=cv2.BORDER_REFLECT)


class _Zncc:
    """ZNCC of the reference image A against warped views, over a square window, with reused buffers.

    The four window means a plane needs per view (valid share, B, B^2, A*B) come from one
    4-channel box filter (the same sums as four single-channel ones, bit for bit, at a third of
    the cost); the element-wise work writes into preallocated arrays.
    """

    def __init__(self, A: np.ndarray, mA: np.ndarray, varA: np.ndarray, window: int):
        h, w = A.shape
        self.A, self.mA, self.varA, self.win = A, mA, varA, window
        self.ones = np.ones((h, w), np.float32)
        self.stack = np.empty((h, w, 4), np.float32)
        self.means = np.empty((h, w, 4), np.float32)
        self.Bw = np.empty((h, w), np.float32)
        self.inside = np.empty((h, w), np.float32)
        self.t1 = np.empty((h, w), np.float32)
        self.t2 = np.empty((h, w), np.float32)
        self.front = np.empty((h, w), bool)

    def score(self, B: np.ndarray, Hcv: np.ndarray, front: np.ndarray, out: np.ndarray) -> None:
        """ZNCC of A with ``B`` warped by ``Hcv`` into ``out`` ``[h, w]``: -2 where the window leaves
        the warped view or the plane is behind a camera (``front`` False), -1 where it is flat."""
        h, w = self.A.shape
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        Bw, inside, S = self.Bw, self.inside, self.stack
        cv2.warpPerspective(B, Hcv, (w, h), dst=Bw, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cv2.warpPerspective(self.ones, Hcv, (w, h), dst=inside, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        np.multiply(inside, front, out=S[..., 0])
        S[..., 1] = Bw
        np.multiply(Bw, Bw, out=S[..., 2])
        np.multiply(self.A, Bw, out=S[..., 3])
        _box(S, self.win, self.means)
        valid, mB, mBB, mAB = cv2.split(self.means)
        t1, t2 = self.t1, self.t2
        # varB = max(<B^2> - <B>^2, 0); zncc = (<AB> - <A><B>) / sqrt(max(varA varB, 1e-6))
        np.multiply(mB, mB, out=t1)
        np.subtract(mBB, t1, out=t1)
        varB = np.maximum(t1, 0.0, out=t1)
        np.multiply(self.varA, varB, out=t2)
        np.maximum(t2, 1e-6, out=t2)
        np.sqrt(t2, out=t2)
        np.multiply(self.mA, mB, out=mB)
        np.subtract(mAB, mB, out=mAB)
        np.divide(mAB, t2, out=mAB)
        out.fill(-2.0)
        np.greater(varB, MIN_STD**2, out=self.front)
        np.copyto(mAB, -1.0, where=~self.front)
        np.greater(valid, 0.999, out=self.front)
        np.copyto(out, mAB, where=self.front)


class _BestPlane:
    """The running winner of one family's planes, fed one plane's aggregated score ``[h, w]`` at a
    time (:meth:`push`): what :meth:`finish` needs of the whole ``[D, h, w]`` score volume (the best
    score and plane, its two neighbours' scores, the best scores more than ``_NEAR`` planes below and
    above it) without holding it."""

    def __init__(self, h: int, w: int):
        self.i = 0
        self.run = np.full((h, w), -np.inf, np.float32)
        self.best = np.zeros((h, w), np.int64)
        self.s_m = np.zeros((h, w), np.float32)  # score of plane best - 1 (best itself at 0)
        self.s_p = np.zeros((h, w), np.float32)  # score of plane best + 1 (set when it comes)
        self.below = np.full((h, w), -2.0, np.float32)  # best score of planes <= best - _NEAR - 1 (-2: none)
        self.above = np.full((h, w), -np.inf, np.float32)  # best score of planes >= best + _NEAR + 1 (-inf: none yet)
        self.prefix = None  # best score of planes 0 .. i - _NEAR - 1
        self.history: list[np.ndarray] = []  # the last _NEAR + 1 planes' scores
        self.better = np.zeros((h, w), bool)
        self.was_better = np.zeros((h, w), bool)
        self.far = np.zeros((h, w), bool)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Take plane i's scores; returns where it is the new winner (first maximum wins ties)."""
        i = self.i
        prev = self.history[-1] if self.history else x
        np.copyto(self.s_p, x, where=self.was_better)  # the winner set one plane ago: this is its next
        if i > _NEAR:
            old = self.history[-(_NEAR + 1)]
            self.prefix = old.copy() if self.prefix is None else np.maximum(self.prefix, old, out=self.prefix)
        np.greater(x, self.run, out=self.better)
        better = self.better
        np.maximum(self.run, x, out=self.run)
        np.copyto(self.best, i, where=better)
        np.copyto(self.s_m, prev, where=better)
        np.copyto(self.below, -2.0 if self.prefix is None else self.prefix, where=better)
        np.copyto(self.above, -np.inf, where=better)
        np.less_equal(self.best, i - _NEAR - 1, out=self.far)
        np.maximum(self.above, x, out=self.above, where=self.far)
        self.history.append(x)
        if len(self.history) > _NEAR + 1:
            self.history.pop(0)
        self.was_better, self.better = better, self.was_better
        self.i += 1
        return better

    def finish(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pixel: best score, parabola-refined sigma, and the best score more than ``_NEAR`` planes away."""
        D = len(planes)
        h, w = self.run.shape
        if D == 0:
            return np.full((h, w), -2.0, np.float32), np.zeros((h, w)), np.full((h, w), -2.0, np.float32)
        best, top = self.best, self.run
        sigma = planes[best].astype(np.float64)
        rival = np.full((h, w), -2.0, np.float32)
        if D > 1:
            s_m = self.s_m
            s_p = np.where(best == D - 1, top, self.s_p)
            lo, hi = np.maximum(best - 1, 0), np.minimum(best + 1, D - 1)
            denom = s_m - 2 * top + s_p
            inner = (best > 0) & (best < D - 1) & (denom < 0) & (s_m > -2) & (s_p > -2)
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.clip(np.where(inner, 0.5 * (s_m - s_p) / denom, 0.0), -0.5, 0.5)
            sigma = sigma + np.where(frac > 0, frac * (planes[hi] - planes[best]), frac * (planes[best] - planes[lo]))
            rival = np.maximum(self.below, np.where(np.isneginf(self.above), -2.0, self.above)).astype(np.float32)
        return top.copy(), sigma, rival


def _aggregate(z: np.ndarray, top_k: int) -> np.ndarray:
    """Mean of the best ``top_k`` valid (> -2) scores over views ``[B, H, W]`` -> ``[H, W]`` (-2 if none valid)."""
    if top_k == 1:
        return z.max(0).astype(np.float32)  # invalid entries are -2, below any ZNCC
    top = [np.full(z.shape[1:], -np.inf, np.float32) for _ in range(top_k)]
    for zj in np.where(z > -2, z, -np.inf):
        # Insert zj into the running best-first list (k is tiny: a few elementwise passes).
        for k in range(top_k):
            hi = np.maximum(top[k], zj)
            zj = np.minimum(top[k], zj)
            top[k] = hi
    total = np.zeros(z.shape[1:], np.float32)
    count = np.zeros(z.shape[1:], np.float32)
    for t in top:
        valid = np.isfinite(t)
        total += np.where(valid, t, 0.0)
        count += valid
    return np.where(count > 0, total / np.maximum(count, 1), -2.0).astype(np.float32)


def sweep_view(
    ref: int,
    grays: list[np.ndarray],
    Ks: list[np.ndarray],
    c2ws: list[np.ndarray],
    down: np.ndarray | None,
    config: MvsConfig,
    families: dict | None = None,
) -> PlaneMap:
    """The :class:`PlaneMap` of view ``ref`` against all other views (grey images and cameras of one instant).

    ``families``: a cache of each plane family's sweep, keyed by its normal's bytes: families found
    there are not swept again, the others are stored (the family parallel to the image does not
    depend on the world's down, so a sweep again after :meth:`Associator.refine_down` reuses it).
    """
    h, w = grays[ref].shape
    win = config.window
    A = grays[ref].astype(np.float32)
    mA = _box(A, win)
    varA = np.maximum(_box(A * A, win) - mA * mA, 0.0)
    others = [b for b in range(len(grays)) if b != ref]
    if not others:  # a single view: nothing to compare with, no plane is accepted anywhere
        return PlaneMap(
            np.zeros((h, w), np.int64), np.zeros((h, w)), np.full((h, w), -2.0, np.float32), np.zeros((h, w), bool),
            np.zeros((0, h, w), np.float32), plane_normals(c2ws[ref], None), [],
        )
    poses = [relative_pose(c2ws[ref], c2ws[b]) for b in others]
    normals = plane_normals(c2ws[ref], down) if config.plane_families else plane_normals(c2ws[ref], None)
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    centres = np.stack([xs, ys], -1)
    ray = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(Ks[ref]).T
    B = [grays[b].astype(np.float32) for b in others]
    rzs = [(ray @ R.T)[..., 2].astype(np.float32) for R, _ in poses]
    K_inv = np.linalg.inv(Ks[ref])

    def sweep_family(normal: np.ndarray, planes: np.ndarray) -> tuple:
        """One family's winners: best score, sigma, rival, per-view ZNCCs at the best plane, matches."""
        D = len(planes)
        zn = _Zncc(A, mA, varA, win)
        ndot = (ray @ normal).astype(np.float32)
        views_at_best = np.full((len(others), h, w), -2.0, np.float32)
        state = _BestPlane(h, w)
        tn = [np.outer(t, normal) for _, t in poses]
        for sig in planes:
            z = np.empty((len(others), h, w), np.float32)
            facing = (sig * ndot > 0) | (sig == 0)
            sn = float(sig) * ndot
            for j, (b, (R, t)) in enumerate(zip(others, poses)):
                front = facing & (rzs[j] + sn * float(t[2]) > 1e-6)
                Hcv = to_cv(Ks[b] @ (R + float(sig) * tn[j]) @ K_inv)  # plane_homography
                zn.score(B[j], Hcv, front, z[j])
            better = state.push(_aggregate(z, config.top_k))
            np.copyto(views_at_best, z, where=better[None])
        best, sigma, rival = state.finish(planes)
        match = np.stack(
            [plane_points(Ks[ref], Ks[b], R, t, centres, sigma, normal)[0] for b, (R, t) in zip(others, poses)]
        ) if D else np.zeros((len(others), h, w, 2))
        return best, sigma, rival, views_at_best, match

    # The families are independent: swept on worker threads (OpenCV and NumPy release the GIL),
    # the one with most planes first.
    results: dict[int, tuple] = {}
    todo = []
    for k, normal in enumerate(normals):
        if families is not None and normal.tobytes() in families:
            results[k] = families[normal.tobytes()]
        else:
            targets = [(Ks[b], R, t) for b, (R, t) in zip(others, poses)]
            todo.append((k, plane_range(Ks[ref], targets, h, w, normal, config.step_px)))
    todo.sort(key=lambda item: -len(item[1]))
    workers = min(len(todo), sweep_threads())
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(lambda item: sweep_family(normals[item[0]], item[1]), todo))
    else:
        done = [sweep_family(normals[k], planes) for k, planes in todo]
    for (k, _), result in zip(todo, done):
        results[k] = result
        if families is not None:
            families[normals[k].tobytes()] = result
    fam_best, fam_sigma, fam_rival, fam_views, fam_match = (list(x) for x in zip(*(results[k] for k in range(len(normals)))))

    scores = np.stack(fam_best)
    family = scores.argmax(0)
    rows, cols = np.indices((h, w))
    score = scores[family, rows, cols]
    rival = np.stack(fam_rival)[family, rows, cols]
    match = np.stack(fam_match)[family, :, rows, cols]  # [H, W, B, 2]
    for f in range(len(normals)):
        far = (np.linalg.norm(np.moveaxis(fam_match[f], 0, 2) - match, axis=-1) > _NEAR).any(-1)
        rival = np.where((family != f) & far, np.maximum(rival, fam_best[f]), rival)
    ok = (score >= config.min_score) & (varA > MIN_STD**2) & ((1.0 - score) < config.uniqueness * (1.0 - rival))
    view_zncc = np.stack(fam_views)[family, :, rows, cols]  # [H, W, B]
    return PlaneMap(
        family, np.stack(fam_sigma)[family, rows, cols], score, ok, np.moveaxis(view_zncc, -1, 0), normals, others
    )


def _refine(agg: np.ndarray, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel of a score volume ``agg`` ``[D, H, W]``: best score, parabola-refined sigma, and the
    best score more than ``_NEAR`` planes away (:class:`_BestPlane`, fed the planes in order)."""
    state = _BestPlane(*agg.shape[1:])
    for i in range(len(planes)):
        state.push(agg[i])
    return state.finish(planes)


class Associator:
    """Plane maps of every view at the frames asked for, cached, at a working resolution of at most ``max_side``."""

    def __init__(self, videos: list[np.ndarray], cameras: list[ViewCameras], config: MvsConfig | None = None, max_side: int = 320):
        self.videos, self.cameras = videos, cameras
        self.config = config or MvsConfig()
        H, W = videos[0].shape[1:3]
        scale = min(1.0, max_side / max(H, W))
        self.size = (max(8, round(W * scale)), max(8, round(H * scale)))  # (W, H) for cv2
        self.scale = np.array([self.size[0] / W, self.size[1] / H])
        self.down = world_down([cam.c2w for cam in cameras])
        self._maps: dict[tuple[int, int], PlaneMap] = {}
        self._grays: dict[int, list[np.ndarray]] = {}
        self._families: dict[tuple[int, int], dict] | None = None  # per-family sweeps, kept by refine_down
        self._reuse: dict[tuple[int, int], dict] = {}  # and handed to the sweeps again after it
        self.ground: tuple[np.ndarray, np.ndarray] | None = None  # (normal, point), from refine_down

    def refine_down(
        self, frame: int = 0, step: int = 2, min_change_deg: float = 0.5, config: GroundConfig | None = None
    ) -> float | None:
        """Refine the world's down direction from the ground the views see at ``frame``
        (mvt4g.tracks.flow.ground): the sweep's accepted points on every ``step``-th working pixel of
        every view are fitted with a near-horizontal plane (kept as ``ground``). Where its normal differs from the
        current down, the cached plane maps are dropped (their horizontal and vertical planes
        were off); a change under ``min_change_deg`` is not worth new sweeps and is not made.
        Returns the change in degrees, or None without a down or a ground."""
        if self.down is None:
            return None
        w, h = self.size
        ys, xs = np.mgrid[0:h:step, 0:w:step]
        xy = (np.stack([xs.ravel(), ys.ravel()], 1) + 0.5) / self.scale
        points = []
        # Keep each family's sweep: the family parallel to the image does not depend on down and
        # is not swept again below.
        kept, self._families = {}, {}
        try:
            for view in range(len(self.cameras)):
                world, ok, _ = self.world_points(view, frame, xy)
                points.append(world[ok])
        finally:
            kept, self._families = self._families, None
        plane = ground_plane(np.concatenate(points), self.down, self.cameras, config)
        if plane is None:
            return None
        self.ground = plane
        down = plane[0]
        change = float(np.degrees(np.arccos(np.clip(down @ self.down, -1.0, 1.0))))
        if change >= min_change_deg:
            self.down = down
            self._maps.clear()
            self._reuse = kept
        return change

    def _K(self, view: int, frame: int) -> np.ndarray:
        # Pixel centres at +0.5 make a resize a pure scaling of the coordinates.
        return np.diag([self.scale[0], self.scale[1], 1.0]) @ self.cameras[view].K[frame]

    def _frame_grays(self, frame: int) -> list[np.ndarray]:
        if frame not in self._grays:
            grays = []
            for video in self.videos:
                g = to_gray(video[frame])
                if (g.shape[1], g.shape[0]) != self.size:
                    g = cv2.resize(g, self.size, interpolation=cv2.INTER_AREA)
                grays.append(g)
            self._grays[frame] = grays
        return self._grays[frame]

    def plane_map(self, view: int, frame: int) -> PlaneMap:
        key = (view, frame)
        if key not in self._maps:
            Ks = [self._K(v, frame) for v in range(len(self.cameras))]
            c2ws = [cam.c2w[frame] for cam in self.cameras]
            if self._families is not None:
                families = self._families.setdefault(key, {})
            else:
                families = self._reuse.pop(key, None)
            self._maps[key] = sweep_view(view, self._frame_grays(frame), Ks, c2ws, self.down, self.config, families)
        return self._maps[key]

    def swept_frames(self, view: int) -> set[int]:
        """The frames whose plane map of ``view`` is computed (cached): associating there costs no sweep."""
        return {f for v, f in self._maps if v == view}

    def _project(self, a: int, b: int, frame: int, xy: np.ndarray, pmap: PlaneMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where a's points (working pixels) land in b by a's plane map; whether accepted; pixel indices used."""
        h, w = pmap.sigma.shape
        col = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, w - 1)
        row = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, h - 1)
        fam, sig = pmap.family[row, col], pmap.sigma[row, col]
        R, t = relative_pose(self.cameras[a].c2w[frame], self.cameras[b].c2w[frame])
        out = np.zeros((len(xy), 2))
        ok = pmap.ok[row, col].copy()
        for f, normal in enumerate(pmap.normals):
            sel = fam == f
            if sel.any():
                out[sel], valid = plane_points(self._K(a, frame), self._K(b, frame), R, t, xy[sel], sig[sel], normal)
                ok[sel] &= valid
        ok &= (out[:, 0] >= 0) & (out[:, 0] < w) & (out[:, 1] >= 0) & (out[:, 1] < h)
        return out, ok, np.stack([row, col], 1)

    def world_points(self, view: int, frame: int, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points ``[n, 3]`` of a view's pixels ``xy`` (full resolution) on their best planes,
        whether those planes passed the sweep's acceptance, and whether a point exists at all
        (not on the plane at infinity, in front of the camera)."""
        p = np.asarray(xy, np.float64) * self.scale
        pmap = self.plane_map(view, frame)
        h, w = pmap.sigma.shape
        col = np.clip(np.floor(p[:, 0]).astype(np.int64), 0, w - 1)
        row = np.clip(np.floor(p[:, 1]).astype(np.int64), 0, h - 1)
        normals = np.stack(pmap.normals)[pmap.family[row, col]]
        sigma = pmap.sigma[row, col]
        ray = np.concatenate([p, np.ones((len(p), 1))], axis=1) @ np.linalg.inv(self._K(view, frame)).T
        ndot = (ray * normals).sum(1)
        exists = sigma * ndot > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            cam = ray / (sigma * ndot)[:, None]
        c2w = self.cameras[view].c2w[frame]
        world = np.where(exists[:, None], cam, 0.0) @ c2w[:3, :3].T + c2w[:3, 3]
        return world, pmap.ok[row, col] & exists, exists

    def associate(self, a: int, b: int, frame: int, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matches in view b (full-resolution pixels) of points ``xy`` ``[n, 2]`` of view a at ``frame``, and which are accepted."""
        p = np.asarray(xy, np.float64) * self.scale
        pmap_a = self.plane_map(a, frame)
        m, ok, rc = self._project(a, b, frame, p, pmap_a)
        ok &= pmap_a.view_zncc[pmap_a.others.index(b), rc[:, 0], rc[:, 1]] >= self.config.min_view_zncc
        back, ok_back, _ = self._project(b, a, frame, m, self.plane_map(b, frame))
        ok &= ok_back & (np.linalg.norm(back - p, axis=1) < self.config.lr_px)
        return m / self.scale, ok
