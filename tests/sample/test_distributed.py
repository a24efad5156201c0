"""`torchrun -m mvt4g generate`: the ranks share the items out; the union of their files is a
one-process run's, and rank 0 reports every item (two gloo processes on the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mvt4g.io.video import write_video
from mvt4g.model.distributed import DistContext, shard
from mvt4g.sample.batch import GenerateJob, ItemRecord, gather_records, shard_jobs


def test_shard_blocks_cover_every_position_once_in_order():
    for count in range(0, 9):
        for world in (1, 2, 3, 4):
            parts = [list(shard(count, r, world)) for r in range(world)]
            assert [i for p in parts for i in p] == list(range(count))  # contiguous, in order, each once
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1 and sizes[0] == max(sizes)  # balanced, rank 0 never shorter


def test_shard_jobs_balances_the_work_and_gives_kept_items_to_rank_0():
    jobs = [GenerateJob(None, None, None, skip=s) for s in (True, False, False, True, False, False, False)]
    parts = [shard_jobs(jobs, r, 2) for r in range(2)]
    assert parts == [[0, 1, 2, 3, 4], [5, 6]]  # 5 to make: 3 + 2; kept 0 and 3 on rank 0
    assert shard_jobs(jobs, 0, 1) == list(range(7))
    one = [ItemRecord(i, f"r/t{i}", True, False, None, 0, {"n": i}) for i in (2, 0)]
    assert gather_records(one, DistContext()) is one  # one process: as given


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (21, 40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    root = tmp_path_factory.mktemp("dist_generate")
    torch.manual_seed(0)
    save_pretrained(MVT4GModel(preset("tiny")), root / "tiny")
    refs = [write_video(root / f"{name}.mp4", _noise(i), fps=10) for i, name in enumerate(("walk", "bear"))]
    return root, refs


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_two_gloo_processes_write_what_one_writes_and_rank_0_reports_all(inputs, tmp_path):
    import torch

    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    root, refs = inputs
    args = ["-m", "mvt4g", "generate", *map(str, refs), "--traj", "arc-left,zoom-in", "--model", str(root / "tiny"),
            "--steps", "2", "--device", "cpu", "--side-by-side", "--json"]  # fmt: skip
    one = subprocess.run([sys.executable, *args, "--out-dir", str(tmp_path / "one")], capture_output=True, text=True,
                         env=_env(), timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args,
                          "--out-dir", str(tmp_path / "two")], capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]

    # One JSON object on stdout (rank 1 prints nothing), listing every item in order.
    lines = [ln for ln in two.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, two.stdout
    report, single = json.loads(lines[0]), json.loads(one.stdout)
    assert report["ok"] == 4 and report["failed"] == 0
    labels = [(Path(i["reference"]).name, i["trajectory"]) for i in report["items"]]
    assert labels == [("walk.mp4", "arc-left"), ("walk.mp4", "zoom-in"), ("bear.mp4", "arc-left"), ("bear.mp4", "zoom-in")]
    assert labels == [(Path(i["reference"]).name, i["trajectory"]) for i in single["items"]]
    for mine, theirs in zip(report["items"], single["items"], strict=True):
        assert {k: Path(v).name if v else v for k, v in mine["outputs"].items()} == \
            {k: Path(v).name if v else v for k, v in theirs["outputs"].items()}  # fmt: skip
    assert "over 2 processes" in two.stderr and "item(s) in" in two.stderr

    # The union of the ranks' files is the one process's: the same names, byte-identical videos
    # and trajectories (the seed is the run's), the same metadata but for timings.
    a, b = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert sorted(a) == sorted(b) and sum(n.endswith(".mp4") for n in a) == 8
    assert not [n for n in b if Path(n).name.startswith(".") and not n.endswith(".mvt4g.lock")]
    for name, path in a.items():
        if name.endswith((".mp4", ".trajectory.json")):
            assert path.read_bytes() == b[name].read_bytes(), name
        elif name.endswith(".meta.json"):
            ma, mb = json.loads(path.read_text()), json.loads(b[name].read_text())
            for meta in (ma, mb):
                meta.pop("timings", None)
            assert ma == mb, name

    # Fewer items than processes: rank 1 has none (loads nothing), the one item is the same video.
    few = ["-m", "mvt4g", "generate", str(refs[1]), "--traj", "zoom-in", "--model", str(root / "tiny"), "--steps", "2",
           "--device", "cpu", "--out", str(tmp_path / "few.mp4"), "--json"]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *few],
                         capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["ok"] == 1
    assert (tmp_path / "few.mp4").read_bytes() == a["bear/zoom-in.mp4"].read_bytes()
