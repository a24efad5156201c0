"""SIGINT / SIGTERM during `mvt4g train` (a real subprocess): checkpoint, clean exit 130 / 143, resumable.

Exit codes: SIGINT -> 130 and SIGTERM -> 143 (128 + signal number, what shells report for
a job stopped by that signal), after the checkpoint of the step in progress is written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.train import CONFIG, synth_clips

from mvt4g.train.logging import read_metrics


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_clips(tmp_path_factory)


@pytest.mark.slow
def test_sigint_saves_and_exits_130(synth, tmp_path, cli):
    sig, code = signal.SIGINT, 130
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MVT4G_DEBUG": "0"}
    cmd = [sys.executable, "-m", "mvt4g", "train", "--config", str(config), "--data", str(synth), "--out", str(out),
           "--steps", "1000", "--set", "train.checkpoint_every=1000", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"stopped by {sig.name}" in stderr
    import json

    summary = json.loads(stdout)
    step = summary["step"]
    assert summary["interrupted"] == sig.name and 2 <= step < 1000
    assert summary["checkpoint"].endswith(f"step_{step:06d}") and (out / "model" / "model.safetensors").is_file()
    assert [r["step"] for r in read_metrics(metrics)][-1] == step
    # The run continues from there.
    again = cli("train", "--resume", "--out", out, "--steps", str(step + 1), "--json")
    assert again.code == 0 and again.json()["start_step"] == step and again.json()["step"] == step + 1


def test_sigterm_saves_and_exits_143(synth, tmp_path, cli, monkeypatch):
    """In-process (no interpreter start-up): the progress callback sends SIGTERM to this
    process at step 2; the handler's flag stops the loop after that step."""
    from mvt4g.cli import train as train_cli

    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    original = train_cli._Progress.__call__

    def call(self, event):
        original(self, event)
        if event.get("event") == "step" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(train_cli._Progress, "__call__", call)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    result = cli("train", "--config", config, "--data", synth, "--out", out, "--steps", "50", "--json")
    assert result.code == 143, result.stderr
    summary = result.json()
    assert summary["interrupted"] == "SIGTERM" and summary["step"] == 2
    assert (out / "checkpoints" / "step_000002" / "trainer_state.json").is_file()
    assert signal.getsignal(signal.SIGTERM) == before  # the trainer put the old handler back
