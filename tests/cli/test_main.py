import subprocess
import sys

from helpers import assert_one_line_error

from mvt4g import __version__


def test_version_and_help(cli):
    r = cli("--version")
    assert r.code == 0 and r.stdout.strip() == f"mvt4g {__version__}"
    r = cli("--help")
    assert r.code == 0 and "plucker" in r.stdout and "traj" in r.stdout
    r = cli()  # no command: the help, and click's usage exit code
    assert r.code in (0, 2) and "Usage" in r.stdout and "error" not in r.stderr


def test_unknown_command_and_option_are_one_line_usage_errors(cli):
    assert_one_line_error(cli("frobnicate"), "No such command")
    assert_one_line_error(cli("plucker", "--no-such-flag", "x"), "mvt4g plucker", "--no-such-flag")


def test_input_errors_are_one_line_and_debug_shows_traceback(cli, tmp_path):
    r = cli("plucker", str(tmp_path / "missing"))
    assert_one_line_error(r, "missing", "no such")
    r = cli("--debug", "plucker", str(tmp_path / "missing"))
    assert r.code == 2 and "Traceback" in r.stderr


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "mvt4g", "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("mvt4g ")
