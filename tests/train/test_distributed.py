"""Two CPU processes on gloo (torchrun; DDP and FSDP2) against one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.train import CONFIG, synth_clips

from mvt4g.train.logging import read_metrics


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_clips(tmp_path_factory)


@pytest.fixture(scope="module")
def single_run(synth, tmp_path_factory):
    """The one-process reference: 3 steps of global batch 2."""
    from mvt4g.cli.main import main

    root = tmp_path_factory.mktemp("dist")
    config = root / "tiny.toml"
    config.write_text(CONFIG)
    common = ["--config", str(config), "--data", str(synth), "--steps", "3", "--json"]
    assert main(["train", *common, "--out", str(root / "single")]) == 0
    return root, common


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_gloo_processes_match_one(single_run, tmp_path, parallel):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    root, common = single_run
    common = [*common, "--set", f"train.parallel={parallel}"]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "mvt4g", "train", *common, "--out", str(tmp_path / "ddp")]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = __import__("json").loads(proc.stdout.strip().splitlines()[-1])  # rank 0 prints the one summary
    assert summary["world_size"] == 2 and summary["step"] == 3

    one = read_metrics(root / "single" / "metrics.jsonl")
    two = read_metrics(tmp_path / "ddp" / "metrics.jsonl")
    assert [r["step"] for r in two] == [1, 2, 3]
    for key in ("loss", "diff", "track", "corr"):
        np.testing.assert_allclose([r[key] for r in two], [r[key] for r in one], rtol=1e-4, atol=1e-6, err_msg=key)
    # Same trajectory, up to float summation order in the gradient all-reduce.
    from mvt4g.model.checkpoint import from_pretrained

    a = from_pretrained(root / "single" / "model").state_dict()
    b = from_pretrained(tmp_path / "ddp" / "model").state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


def test_train_module_returns_no_views_under_fsdp2(synth, tmp_path):
    """FSDP2 hooks the root module's outputs for backward and warns when they are views (an
    in-place op on one would drop the hook): every loss comes back as a fresh tensor."""
    import warnings

    import torch.distributed as dist

    from mvt4g.train.builders import (
        build_dataset,
        build_model,
        build_train_module,
        resolve_model_config,
    )
    from mvt4g.train.config import TrainConfig, apply_overrides
    from mvt4g.train.data import collate
    from mvt4g.train.distributed import DistContext, wrap

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    cfg = apply_overrides(TrainConfig(), [f"data.paths=['{synth}']", "data.queries=8", "model.head_iterations=1"])
    mc = resolve_model_config(cfg.validate())
    batch = collate([build_dataset(cfg, mc)[i] for i in range(2)])
    module = build_train_module(cfg, build_model(cfg, mc), mc, bf16=False)
    plain = module(batch)
    assert all(value._base is None for value in plain.values())
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        sharded = wrap(module, "fsdp", DistContext(0, 1, 0, torch.device("cpu"), True), bf16=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses = sharded(batch)
            losses["loss"].backward()
        assert not [w for w in caught if "view tensor" in str(w.message)]
        torch.testing.assert_close(losses["loss"], plain["loss"])
    finally:
        dist.destroy_process_group()
