"""`torchrun -m mvt4g eval --model`: the ranks score shares of the items; rank 0's report is a
one-process run's (two gloo processes on the CPU), and the merge keeps one process's order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import mvt4g.model.distributed as distributed
from mvt4g.eval.bench import open_bench
from mvt4g.eval.runner import CopySource, EvalSettings, run_eval
from mvt4g.model.distributed import DistContext


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two 3-view synth clips of 9 frames at 32x32: 2 sequences x 2 targets (cam02, cam03)."""
    from mvt4g.synth import SynthSettings, synthesize_one

    root = tmp_path_factory.mktemp("dist_eval") / "clips"
    root.mkdir()
    for index in range(2):
        synthesize_one(SynthSettings(views=3, frames=9, height=32, width=32, points=16, seed=5), index, root)
    return root


def _report(result):
    out = []
    for r in result.results:
        out.append((r.sequence, r.trajectory, r.frames, r.metrics))
    return out, [(s.sequence, s.trajectory, s.reason) for s in result.skipped_videos], result.warnings


def test_merged_shares_equal_one_process(clips, monkeypatch):
    """Each rank's share, merged (the gather simulated), is one process's result in its order."""
    settings = EvalSettings(groups=["psnr", "ssim"])
    bench = open_bench("synthetic", clips, sequences=None, trajectories=None, fov_deg=None)
    single = run_eval(bench, CopySource(frames=9), settings)
    assert len(single.results) == 4

    parts = {}

    def fake_gather(obj, ctx):
        parts[ctx.rank] = obj
        return [parts.get(r, ([], [])) for r in range(ctx.world_size)]

    monkeypatch.setattr(distributed, "gather_objects", fake_gather)
    seen = {}
    for rank in (1, 0):  # rank 1 first, so rank 0's gather has both shares
        labels = []
        merged = run_eval(bench, CopySource(frames=9), settings, ranks=DistContext(rank, 2),
                          on_item=lambda label, _: labels.append(label))  # fmt: skip
        seen[rank] = labels
    assert len(seen[0]) == len(seen[1]) == 2 and not set(seen[0]) & set(seen[1])
    assert _report(merged) == _report(single)


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


@pytest.mark.slow
def test_two_gloo_processes_report_what_one_reports(clips, tmp_path):
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    torch.manual_seed(0)
    save_pretrained(MVT4GModel(preset("tiny")), tmp_path / "run" / "model")
    args = ["-m", "mvt4g", "eval", "--bench", "synthetic", "--data-root", str(clips), "--model", str(tmp_path / "run"),
            "--steps", "2", "--frames", "9", "--device", "cpu", "--metrics", "psnr,ssim,temporal_flickering", "--json"]  # fmt: skip
    one = subprocess.run([sys.executable, *args, "--save-videos", str(tmp_path / "one")], capture_output=True,
                         text=True, env=_env(), timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args,
                          "--save-videos", str(tmp_path / "two")], capture_output=True, text=True, env=_env(),
                         timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    lines = [ln for ln in two.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, two.stdout  # rank 1 prints nothing
    a, b = json.loads(one.stdout), json.loads(lines[0])
    assert len(b["videos"]) == 4
    assert [(v["sequence"], v["trajectory"], v["frames"], v["metrics"]) for v in b["videos"]] == \
        [(v["sequence"], v["trajectory"], v["frames"], v["metrics"]) for v in a["videos"]]  # fmt: skip
    assert b["summary"] == a["summary"] and b["skipped"] == a["skipped"]
    # Warnings that need every item (the same video twice: an untrained camera path) are rank 0's, once.
    repeats = [ln for ln in one.stderr.splitlines() if "is the same video as" in ln]
    assert repeats == [ln for ln in two.stderr.splitlines() if "is the same video as" in ln]
    # Each rank saved its own items; together they are the one process's videos, byte for byte.
    saved = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*.mp4")}
    assert len(saved) == 4
    assert saved == {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*.mp4")}
