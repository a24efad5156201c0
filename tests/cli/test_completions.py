"""completions/ must be what the current command tree generates, and must work in bash."""

import shutil
import subprocess
from pathlib import Path

import pytest

from mvt4g.cli.completion_gen import FILENAMES, render

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("shell", sorted(FILENAMES))
def test_completion_scripts_are_current(shell):
    path = COMPLETIONS / FILENAMES[shell]
    assert path.is_file(), f"missing {path}: run python -m mvt4g.cli.completion_gen completions"
    assert path.read_text() == render(shell), (
        f"{path} is stale: run `python -m mvt4g.cli.completion_gen completions` and commit the result"
    )


def bash_complete(words: list[str]) -> list[str]:
    script = COMPLETIONS / FILENAMES["bash"]
    line = " ".join(f"'{w}'" for w in words)
    cmd = f"source '{script}'; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _mvt4g; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True, cwd="/")
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_offers_commands_options_and_choices():
    assert {"plucker", "traj"} <= set(bash_complete(["mvt4g", ""]))
    assert bash_complete(["mvt4g", "pl"]) == ["plucker"]
    assert "--relative-to" in bash_complete(["mvt4g", "plucker", "--re"])
    assert set(bash_complete(["mvt4g", "plucker", "--dtype", ""])) == {"float16", "float32"}


@pytest.mark.parametrize("shell, flag", [("zsh", "-n"), ("fish", "--no-execute")])
def test_other_shells_parse_their_scripts(shell, flag):
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    subprocess.run([exe, flag, str(COMPLETIONS / FILENAMES[shell])], check=True)
