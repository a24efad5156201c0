"""examples/tracker_plugin.py: a learned tracker (CoTracker3) through `mvt4g tracks --tracker`, run on stand-ins.

No weights here: the stand-ins have CoTracker's signature, ``cotracker(video [1,T,3,H,W] float,
queries [1,M,3] (t, x, y)) -> (tracks [1,T,M,2], visibility [1,T,M])``, and return synth's exact
tracks. The CLI tests put them behind a fake co-tracker checkout (``cotracker/predictor.py`` with
``CoTrackerPredictor(checkpoint=...)``) named by the example's environment variables, so the
example's own loading code runs too; its "checkpoint" is the clip's exact track file.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from mvt4g.tracks.format import TrackSet, read_tracks

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tracker_plugin.py"
TRACKER = "examples/tracker_plugin.py:track"  # as the README writes it (the tests run in REPO)

# The stand-in, CoTracker's signature; written into the fake checkout and exec'd here for direct use.
STANDIN = '''
import numpy as np
import torch


def exact_cotracker(gt_tracks, gt_visible):
    """Finds each query (CoTracker pixels) among the exact tracks at its frame; returns that track."""

    def cotracker(video, queries):
        T = video.shape[1]
        q = queries[0].numpy().astype(np.float64)
        tracks = np.zeros((1, T, len(q), 2), np.float32)
        visible = np.zeros((1, T, len(q)), bool)
        for m, (t, x, y) in enumerate(q):
            d = np.abs(gt_tracks[:, int(t)] - 0.5 - (x, y)).max(-1)  # [V, N]: exact tracks in CoTracker pixels
            d[~gt_visible[:, int(t)]] = np.inf
            w, n = np.unravel_index(np.argmin(d), d.shape)
            assert d[w, n] < 1e-3, "a query that is no exact track's position"
            tracks[0, :, m] = gt_tracks[w, :, n] - 0.5
            visible[0, :, m] = gt_visible[w, :, n]
        return torch.from_numpy(tracks), torch.from_numpy(visible)

    return cotracker
'''

PREDICTOR = '''
import numpy as np
import torch

from cotracker.standin import exact_cotracker

MODE = {mode!r}


class CoTrackerPredictor(torch.nn.Module):
    def __init__(self, checkpoint="./checkpoints/scaled_offline.pth", offline=True, v2=False, window_len=60):
        super().__init__()
        with np.load(checkpoint) as gt:
            self.fn = exact_cotracker(gt["tracks"], gt["visible"])

    def forward(self, video, queries=None, segm_mask=None, grid_size=0, grid_query_frame=0, backward_tracking=False):
        assert backward_tracking and video.dtype == torch.float32 and queries.shape[-1] == 3
        tracks, visible = self.fn(video, queries)
        if MODE == "wrong_shape":
            return tracks[..., 0], visible
        return tracks, visible
'''


def _standins() -> dict:
    namespace: dict = {}
    exec(compile(STANDIN, "standin", "exec"), namespace)  # noqa: S102 (the test's own source)
    return namespace


def _example():
    spec = importlib.util.spec_from_file_location("tracker_plugin_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synth_clip(tmp_path_factory) -> Path:
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    out = tmp_path_factory.mktemp("synth")
    return synthesize(SynthSettings(views=2, frames=5, height=32, width=32, points=24), out, 1)[0]


@pytest.fixture
def clip(synth_clip, tmp_path) -> Path:
    return Path(shutil.copytree(synth_clip, tmp_path / "clip"))


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """The README's command from the checkout; no tracker configured; the fake `cotracker` forgotten after."""
    monkeypatch.chdir(REPO)
    for name in ("MVT4G_COTRACKER_CKPT", "MVT4G_COTRACKER_DIR", "MVT4G_COTRACKER_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MVT4G_COTRACKER_DEVICE", "cpu")
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m == "cotracker" or m.startswith("cotracker.")]:
        del sys.modules[name]


def fake_checkout(root: Path, clip: Path, monkeypatch, mode: str = "exact") -> None:
    """A co-tracker checkout whose predictor is the stand-in; its checkpoint is the clip's exact tracks."""
    package = root / "co-tracker" / "cotracker"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "standin.py").write_text(STANDIN)
    (package / "predictor.py").write_text(PREDICTOR.format(mode=mode))
    ckpt = root / "scaled_offline.pth"
    shutil.copyfile(clip / "tracks.npz", ckpt)
    monkeypatch.setenv("MVT4G_COTRACKER_DIR", str(package.parent))
    monkeypatch.setenv("MVT4G_COTRACKER_CKPT", str(ckpt))


def assert_failed_in_one_line(result, *needles: str) -> None:
    """An error raised inside the plug-in: exit 1 and one line on stderr naming it."""
    assert result.code == 1, (result.code, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_exact_standin_through_the_cli_scores_one_in_each_query_view(cli, clip, tmp_path, monkeypatch):
    fake_checkout(tmp_path, clip, monkeypatch)
    gt, pred = clip / "tracks.npz", tmp_path / "pred.npz"
    r = cli("tracks", clip, "--tracker", TRACKER, "--queries-from", gt, "--out", pred, "--json")
    assert r.code == 0, r.stderr
    ts, exact = read_tracks(pred), read_tracks(gt)
    assert ts.method == f"plugin:{TRACKER}" and ts.views == exact.views
    # Visible only in the query's own view: nothing associates a point across views.
    own = np.arange(2)[:, None] == ts.query_views[None, :]  # [V, N]
    assert not ts.visible[~own[:, None, :].repeat(5, 1)].any()

    s = cli("tracks", "score", pred, gt, "--mode", "strided", "--json")
    assert s.code == 0, s.stderr
    temporal = s.json()["scores"]["temporal"]
    assert temporal["delta_avg"] == 1.0 and temporal["occlusion_accuracy"] == 1.0
    assert temporal["average_jaccard"] == 1.0


def test_input_and_output_mapping(synth_clip):
    """mvt4g [T,H,W,3] uint8 and (view, frame, x, y) with centres at +0.5 -> CoTracker's [1,T,3,H,W] and (t, x-0.5, y-0.5); back again."""
    import torch

    from mvt4g.io.clip import read_clip

    clip = read_clip(synth_clip)
    videos = {v: clip.read_video(v) for v in clip.views}
    queries = np.array([[0, 2, 10.5, 20.25], [1, 0, 3.0, 4.0], [0, 4, 31.5, 0.5]], np.float32)
    seen = []

    def still(video, q):  # CoTracker's signature: every point stays where it was asked, visible
        seen.append((video, q))
        T, M = video.shape[1], q.shape[1]
        return q[:, None, :, 1:].expand(1, T, M, 2).clone(), torch.ones(1, T, M, dtype=torch.bool)

    tracks, visible = _example().track_views(still, videos, dict(clip.cameras), queries)
    assert [tuple(v.shape) for v, _ in seen] == [(1, 5, 3, 32, 32)] * 2
    for (video, _), name in zip(seen, clip.views, strict=True):
        assert video.dtype == torch.float32
        np.testing.assert_array_equal(video[0].permute(0, 2, 3, 1).numpy(), videos[name].astype(np.float32))
    np.testing.assert_array_equal(seen[0][1][0].numpy(), [[2, 10.0, 19.75], [4, 31.0, 0.0]])
    np.testing.assert_array_equal(seen[1][1][0].numpy(), [[0, 2.5, 3.5]])
    assert tracks.shape == (2, 5, 3, 2) and visible.shape == (2, 5, 3)
    for n, (v, _, x, y) in enumerate(queries):
        np.testing.assert_array_equal(tracks[int(v), :, n], np.tile([x, y], (5, 1)))
        assert visible[int(v), :, n].all()
        assert not visible[1 - int(v), :, n].any() and np.isnan(tracks[1 - int(v), :, n]).all()


def test_association_seeds_the_other_views(synth_clip):
    """With seeds in the other views (here the exact ones: the place of a user's MV-TAP), every view scores 1."""
    from mvt4g.io.clip import read_clip
    from mvt4g.tracks.metrics import score_tracks
    from mvt4g.tracks.plugin import run_tracker

    clip = read_clip(synth_clip)
    gt = read_tracks(synth_clip / "tracks.npz")
    videos = {v: clip.read_video(v) for v in clip.views}
    cotracker = _standins()["exact_cotracker"](gt.tracks, gt.visible)

    def exact_association(videos, cameras, queries):
        frames = np.tile(queries[:, 1].astype(np.int64), (len(videos), 1))  # [V, N]: at the query frame
        n = np.arange(len(queries))
        return frames, gt.tracks[:, frames[0], n], gt.visible[:, frames[0], n]

    example = _example()
    fn = partial(example.track_views, cotracker, associate=exact_association)
    tracks, visible = run_tracker(fn, videos, dict(clip.cameras), gt.queries)
    assert score_tracks(TrackSet(tracks, visible, gt.queries, gt.image_size, "p"), gt)["temporal"]["delta_avg"] == 1.0
    # A point hidden in the other view at its query frame has no seed there: not visible, never guessed.
    seeded = gt.visible[:, gt.query_frames, np.arange(gt.num_tracks)].all(0)
    assert 0 < seeded.sum() < gt.num_tracks
    for n in np.flatnonzero(~seeded):
        hidden = ~gt.visible[:, gt.query_frames[n], n]  # the views without a seed for track n
        assert not visible[hidden, :, n].any() and np.isnan(tracks[hidden, :, n]).all()
    pred_seeded = TrackSet(tracks[:, :, seeded], visible[:, :, seeded], gt.queries[seeded], gt.image_size, "p")
    gt_seeded = TrackSet(gt.tracks[:, :, seeded], gt.visible[:, :, seeded], gt.queries[seeded], gt.image_size, "synth")
    scores = score_tracks(pred_seeded, gt_seeded, mode="strided")
    assert scores["cross_view"]["delta_avg"] == 1.0 and scores["all"]["occlusion_accuracy"] == 1.0


def test_wrong_shape_from_the_tracker_is_one_clear_error(cli, clip, tmp_path, monkeypatch):
    fake_checkout(tmp_path, clip, monkeypatch, mode="wrong_shape")
    out = tmp_path / "pred.npz"
    r = cli("tracks", clip, "--tracker", TRACKER, "--queries-from", clip / "tracks.npz", "--out", out)
    assert_failed_in_one_line(r, TRACKER, "tracks of shape", "expected", "(B, T, N, 2)")
    assert not out.exists()


def test_missing_weights_or_package_name_the_variable(cli, clip, tmp_path, monkeypatch):
    out = tmp_path / "pred.npz"
    args = ("tracks", clip, "--tracker", TRACKER, "--queries-from", clip / "tracks.npz", "--out", out)
    assert_failed_in_one_line(cli(*args), "TrackerUnavailable", "set MVT4G_COTRACKER_CKPT", "never downloaded")
    monkeypatch.setenv("MVT4G_COTRACKER_CKPT", str(tmp_path / "missing.pth"))
    assert_failed_in_one_line(cli(*args), "MVT4G_COTRACKER_CKPT", "missing.pth", "not a file")
    (tmp_path / "weights.pth").write_bytes(b"")
    monkeypatch.setenv("MVT4G_COTRACKER_CKPT", str(tmp_path / "weights.pth"))
    assert_failed_in_one_line(cli(*args), "cannot import cotracker", "MVT4G_COTRACKER_DIR")
    monkeypatch.setenv("MVT4G_COTRACKER_DIR", str(tmp_path))
    assert_failed_in_one_line(cli(*args), "MVT4G_COTRACKER_DIR", "not a co-tracker checkout")
    assert not out.exists()
