"""The README's commands work from any directory: every `mvt4g ...` line in its bash blocks and
every python block.

Lines run in order, in one scratch directory outside the checkout, so later commands can use what
earlier ones wrote (the synth scenes, say), with the README's two variables set as it says:
``REPO`` (this checkout) and ``DATA`` (the sample videos beside it). A line ending in a comment
that contains "(needs " is documentation of a command that needs the user's own data or weights,
and "(run by .ci/run)" marks a command that CI runs itself after the tests (`mvt4g demo`, ten
minutes); both are checked for their --help here. Lines that run a script of the checkout
(``python $REPO/benchmarks/...``, ``$REPO/examples/...``) are timed runs or are run by
tests/test_examples.py; here their paths must resolve from the scratch directory, and those
marked "(quick)" run in order with the ``mvt4g`` lines (they write what later lines read).
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
    """The ``mvt4g`` lines, and the ``python $REPO/...`` lines marked "(quick)": scripts that
    write, in seconds, what the next commands read (the tiny stand-ins of the full-scale path)."""
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            if line.startswith("mvt4g ") or (line.startswith("python $REPO/") and "(quick)" in line):
                lines.append(line)
    return lines


REPO = README.parent
DATA = REPO.parent / "shared" / "data"


def script_lines() -> list[str]:
    """Lines of the bash blocks that run a file of the checkout through ``$REPO``."""
    return [line for block in blocks("bash") for line in block.splitlines() if "$REPO/" in line]


def shell_env() -> dict:
    env = dict(os.environ)
    env["REPO"], env["DATA"] = str(REPO), str(DATA)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["OMP_NUM_THREADS"] = "1"  # the suite runs two workers on two cores
    return env


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    lines = mvt4g_lines()
    assert len(lines) >= 5
    scratch = tmp_path / "anywhere"  # not the checkout: no examples/ or ../shared beside it
    scratch.mkdir()
    for line in lines:
        if "$DATA" in line and not DATA.is_dir():
            continue
        documented_only = "(needs " in line or "(run by .ci/run)" in line
        command = None if documented_only else line.split("  #")[0].strip()
        if command is None:
            words = line.split()
            sub = [w for w in words[1:3] if not w.startswith("-") and w.isidentifier()]
            command = " ".join(["mvt4g", *sub, "--help"])
        result = subprocess.run(["bash", "-c", command], cwd=scratch, env=shell_env(), capture_output=True, text=True)
        assert result.returncode == 0, f"README command failed: {command}\n{result.stderr[-2000:]}"


def test_readme_sets_the_variables_its_commands_use():
    text = README.read_text()
    assert "export REPO=$PWD DATA=$PWD/../shared/data" in text
    used = set(re.findall(r"\$([A-Z_]+)", "\n".join(blocks("bash"))))
    assert used <= {"REPO", "DATA", "PWD"}, used


@pytest.mark.slow
def test_readme_scripts_resolve_from_any_directory(tmp_path):
    """Each ``$REPO/...`` file a README line runs exists (and a Python script starts: --help)."""
    lines = script_lines()
    assert any("benchmarks/" in line for line in lines) and any("examples/" in line for line in lines)
    for line in lines:
        for path in re.findall(r"\$REPO/(\S+)", line):
            target = REPO / path
            assert target.is_file(), f"README names {path}, which is not in the checkout"
            if target.suffix == ".py" and "benchmarks/" in path:
                result = subprocess.run([sys.executable, str(target), "--help"], cwd=tmp_path, env=shell_env(),
                                        capture_output=True, text=True, timeout=120)
                assert result.returncode == 0, f"{path} --help failed:\n{result.stderr[-1000:]}"
            elif target.suffix == ".sh":
                assert os.access(target, os.X_OK), f"{path} is not executable"


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
