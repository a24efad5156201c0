"""`mvt4g train` end to end on tiny synth clips: run layout, determinism, resume, NaN, bad input.

All runs use the tiny preset with a light tracking head (8 queries, 1 iteration), 1 thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import assert_one_line_error
from helpers.train import CONFIG, synth_clips

from mvt4g.train.logging import read_metrics


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_clips(tmp_path_factory)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(CONFIG)
    return path


def train_args(config_file, synth, out, *extra):
    return ["train", "--config", config_file, "--data", synth, "--out", out, "--json", *extra]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, synth, config_file):
    """6 uninterrupted steps (checkpoints at 3 and 6; only the last kept)."""
    from mvt4g.cli import common
    from mvt4g.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "straight"
    common.STATE.quiet = False
    code = main([str(a) for a in train_args(config_file, synth, out, "--steps", "6")])
    assert code == 0
    return out


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl")]


@pytest.mark.slow
def test_run_directory_layout(straight_run):
    from mvt4g.model.checkpoint import from_pretrained
    from mvt4g.train.config import load_config

    run = straight_run
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000006"]  # keep_last = 1
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    cfg = load_config(run / "config.toml")
    assert cfg.train.steps == 6 and cfg.data.queries == 8 and Path(cfg.data.paths[0]).is_absolute()
    model = from_pretrained(run / "model")
    saved = from_pretrained(run / "checkpoints" / "step_000006" / "model")
    for (name, a), (_, b) in zip(model.state_dict().items(), saved.state_dict().items()):
        assert torch.equal(a, b), name
    assert model.config.video.frames == 17 and model.config.use_tracking_head
    state = json.loads((run / "checkpoints" / "step_000006" / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["samples"] == 12


def test_only_the_papers_scope_moves(straight_run, synth):
    """Self-attention, camera modules and the tracking head change; everything else is frozen."""
    from mvt4g.model.checkpoint import from_pretrained
    from mvt4g.model.freeze import parameter_group
    from mvt4g.train.builders import build_model, resolve_model_config
    from mvt4g.train.config import load_config

    cfg = load_config(straight_run / "config.toml")
    initial = build_model(cfg, resolve_model_config(cfg)).state_dict()
    model = from_pretrained(straight_run / "model")
    trained = dict(model.named_parameters())
    moved = {parameter_group(n) for n, p in trained.items() if not torch.equal(p, initial[n])}
    assert moved == {"self_attention", "camera", "tracking_head"}


@pytest.mark.slow
def test_two_runs_and_resume_reproduce_the_straight_run(straight_run, synth, config_file, tmp_path, cli):
    out = tmp_path / "resumed"
    first = cli(*train_args(config_file, synth, out, "--steps", "3"))
    assert first.code == 0, first.stderr
    assert losses(out) == losses(straight_run)[:3]  # two runs, identical losses (CPU, same threads)
    again = cli("train", "--resume", "--out", out, "--steps", "6", "--json")  # config from the run dir
    assert again.code == 0, again.stderr
    summary = again.json()
    assert summary["start_step"] == 3 and summary["step"] == 6 and summary["resumed_from"].endswith("step_000003")
    assert losses(out) == losses(straight_run)  # bit-identical continuation
    assert summary["final"]["loss"] == losses(straight_run)[-1]
    # Resuming a finished run does nothing and says so in its summary.
    done = cli("train", "--resume", "--out", out, "--json")
    assert done.code == 0 and done.json()["step"] == 6 and len(losses(out)) == 6


def test_exploding_weights_exit_1_and_are_never_checkpointed(synth, config_file, tmp_path, cli):
    out = tmp_path / "nan"
    # A learning rate of 1e30 really blows the weights up after the first update: that state
    # (finite, but weights ~1e30) must not become a "last good" checkpoint.
    result = cli(*train_args(config_file, synth, out, "--steps", "5", "--set", "optim.lr=1e30",
                             "--set", "train.checkpoint_every=1", "--set", "train.keep_last=3"))  # fmt: skip
    assert result.code == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("mvt4g: error:")]
    assert len(lines) == 1 and "exploding" in lines[0] and "at step 1" in lines[0], result.stderr
    assert "no checkpoint was written" in lines[0]
    assert not (out / "checkpoints").exists() or list((out / "checkpoints").iterdir()) == []
    assert not (out / "model").exists()
    assert result.stdout == ""


def test_a_loss_spike_stops_the_run_and_names_the_last_good_checkpoint(synth, config_file, tmp_path, cli, monkeypatch):
    import mvt4g.train.trainer as trainer

    # any loss above 1e-9 x the median of 2 earlier steps is a "spike": step 3 stops the run
    monkeypatch.setattr(trainer, "SPIKE_FACTOR", 1e-9)
    monkeypatch.setattr(trainer, "SPIKE_MIN_STEPS", 2)
    out = tmp_path / "spike"
    result = cli(*train_args(config_file, synth, out, "--steps", "5", "--set", "train.checkpoint_every=1",
                             "--set", "train.keep_last=3"))  # fmt: skip
    assert result.code == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("mvt4g: error:")]
    assert len(lines) == 1 and "loss spiked to" in lines[0] and "at step 3" in lines[0], result.stderr
    assert "the last good checkpoint is" in lines[0] and "step_000002" in lines[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000001", "step_000002"]


def test_spike_guard_and_largest_weight():
    from mvt4g.train.trainer import SpikeGuard, largest_weight

    guard = SpikeGuard(factor=100, window=5, min_steps=3)
    assert [guard.check(x) for x in (1.0, 2.0, 1.5)] == [None, None, None]
    assert guard.check(140.0) is None  # 140 < 100 x median 1.5
    assert "spiked to 1000" in guard.check(1000.0)
    assert largest_weight([torch.tensor([1.0, -3.0]), torch.tensor([7], dtype=torch.int64)]) == 3.0
    assert largest_weight([torch.tensor([1.0, float("inf")])]) != largest_weight([torch.tensor([1.0])])


def test_plucker_only_trains_without_tracks(synth, config_file, tmp_path, cli):
    import shutil

    data = tmp_path / "notracks"
    for scene in ("scene_0000", "scene_0001"):
        shutil.copytree(synth / scene, data / scene, ignore=shutil.ignore_patterns("tracks.npz", "cache"))
    out = tmp_path / "plucker_only"
    result = cli(*train_args(config_file, data, out, "--steps", "2", "--no-track-head", "--no-corr-loss"))
    assert result.code == 0, result.stderr
    final = result.json()["final"]
    assert final["track"] == 0 and final["corr"] == 0 and final["loss"] == final["diff"] > 0
    from mvt4g.model.checkpoint import read_config

    assert not read_config(out / "model").use_tracking_head


def test_prepare_fills_the_cache_once(synth, config_file, tmp_path, cli):
    cache = tmp_path / "cache"
    first = cli("train", "prepare", "--config", config_file, "--data", synth, "--set", f"data.cache_dir={cache}", "--json")
    assert first.code == 0, first.stderr
    counts = first.json()
    # 2 clips x (3 views x 2 directions latents + 6 pairs x 2 directions Plücker maps)
    assert counts["items"] == 2 * (3 * 2 + 6 * 2) and counts["computed"] == counts["items"] and counts["bytes"] > 0
    second = cli("train", "prepare", "--config", config_file, "--data", synth, "--set", f"data.cache_dir={cache}", "--json")
    assert second.json()["computed"] == 0 and second.json()["hits"] == counts["items"]
    run = cli(*train_args(config_file, synth, tmp_path / "run", "--steps", "2", "--set", f"data.cache_dir={cache}"))
    assert run.code == 0 and run.json()["cache"]["misses"] == 0


def test_bad_input_is_one_line_exit_2(synth, config_file, tmp_path, cli, straight_run):
    import shutil

    args = lambda out, *extra: train_args(config_file, synth, tmp_path / out, "--steps", "1", *extra)
    assert_one_line_error(cli(*args("a", "--set", "optim.lrr=1")), "optim.lrr", "did you mean 'optim.lr'")
    assert_one_line_error(cli(*args("b", "--set", "train.steps=lots")), "train.steps must be an integer")
    bad_type = tmp_path / "bad.toml"
    bad_type.write_text('[optim]\nlr = "high"\n')
    assert_one_line_error(cli("train", "--config", bad_type, "--data", synth, "--out", tmp_path / "c"), "optim.lr must be a number", str(bad_type))
    assert_one_line_error(cli(*train_args(config_file, tmp_path / "missing", tmp_path / "d")), "data directory does not exist")
    notracks = tmp_path / "nt" / "scene"
    shutil.copytree(synth / "scene_0000", notracks, ignore=shutil.ignore_patterns("tracks.npz", "cache"))
    assert_one_line_error(cli(*train_args(config_file, notracks, tmp_path / "e")), "no tracks.npz")
    # A used run directory needs --resume; --resume with another config is refused.
    assert_one_line_error(cli(*train_args(config_file, synth, straight_run)), "run directory exists")
    assert_one_line_error(cli(*train_args(config_file, synth, straight_run, "--resume", "--set", "optim.lr=5e-4")),
                          "cannot resume", "optim.lr")  # fmt: skip
    assert_one_line_error(cli("train", "--out", tmp_path / "f"), "--config is required: an example config's name or a TOML file")
    assert_one_line_error(cli("train", "--config", config_file, "prepare"), "--config goes after `prepare`")
    assert not (tmp_path / "a").exists() and not (tmp_path / "e").exists()  # nothing written on bad input


def test_accumulation_matches_one_big_micro_batch(straight_run, synth, config_file, tmp_path, cli):
    out = tmp_path / "accumulate"
    result = cli(*train_args(config_file, synth, out, "--steps", "2", "--set", "train.accumulate=2"))
    assert result.code == 0, result.stderr
    # Step 1 sees the same two samples: the same mean loss up to summation order.
    assert losses(out) == pytest.approx(losses(straight_run)[:2], rel=1e-5)


@pytest.mark.slow
def test_latest_valid_skips_broken_checkpoints(straight_run, tmp_path):
    import shutil

    from mvt4g.train.checkpointing import Checkpointer

    run = tmp_path / "copy"
    shutil.copytree(straight_run, run)
    broken = run / "checkpoints" / "step_000009"
    shutil.copytree(run / "checkpoints" / "step_000006", broken)
    (broken / "optimizer.safetensors").unlink()  # e.g. a copy that was cut short
    foreign = run / "checkpoints" / "step_000012"
    shutil.copytree(run / "checkpoints" / "step_000006", foreign)
    (foreign / "trainer_state.json").write_text("{not json")
    (run / "checkpoints" / "notes").mkdir()
    path, state = Checkpointer(run).latest_valid()
    assert path.name == "step_000006" and state["step"] == 6
