"""The README's commands work: every `mvt4g ...` line in its bash blocks and every python block.

Lines run in order, in one scratch directory, so later commands can use what earlier ones wrote
(the synth scenes, say). A line ending in a comment that contains "(needs " is documentation of
a command that needs the user's own data or weights, and "(run by .ci/run)" marks a command
that CI runs itself after the tests (`mvt4g demo`, ten minutes); both are checked for their
--help here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def mvt4g_lines() -> list[str]:
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            if line.startswith("mvt4g "):
                lines.append(line)
    return lines


def shell_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["OMP_NUM_THREADS"] = "1"  # the suite runs two workers on two cores
    return env


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    lines = mvt4g_lines()
    assert len(lines) >= 5
    # Commands are written as run from the repository root, with ../shared beside it.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "examples").symlink_to(README.parent / "examples")
    shared = README.parent.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    for line in lines:
        if "../shared" in line and not shared.is_dir():
            continue
        documented_only = "(needs " in line or "(run by .ci/run)" in line
        command = None if documented_only else line.split("  #")[0].strip()
        if command is None:
            words = line.split()
            sub = [w for w in words[1:3] if not w.startswith("-") and w.isidentifier()]
            command = " ".join(["mvt4g", *sub, "--help"])
        result = subprocess.run(["bash", "-c", command], cwd=repo, env=shell_env(), capture_output=True, text=True)
        assert result.returncode == 0, f"README command failed: {command}\n{result.stderr[-2000:]}"


def test_ci_runs_the_commands_marked_for_it():
    ci = (README.parent / ".ci" / "run").read_text()
    for line in mvt4g_lines():
        if "(run by .ci/run)" in line:
            assert line.split("  #")[0].strip() in ci, line


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for block in blocks("python"):
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})  # noqa: S102 (our own README)


def test_readme_demo_table_is_the_stored_default_run():
    """The README's demo table is generated from a default `mvt4g demo` run's record
    (benchmarks/demo_table.py --write), not typed in: the block must be that record's table."""
    import importlib.util
    import json

    from mvt4g.demo.settings import DEFAULT_STEPS

    spec = importlib.util.spec_from_file_location("demo_table", README.parent / "benchmarks" / "demo_table.py")
    demo_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_table)
    record = json.loads(demo_table.RECORD.read_text())
    text = README.read_text()
    block = text.split(demo_table.START, 1)[1].split(demo_table.END, 1)[0]
    assert block.strip() == demo_table.readme_block(record).strip()
    assert record["compute"]["steps"] == DEFAULT_STEPS and record["compute"]["base"] == "base"
