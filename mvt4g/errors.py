"""User-facing errors and their exit codes (docs/ARCHITECTURE.md, "Exit codes and error messages").

The core raises these; the CLI turns them into one line on stderr and an exit code.
Exit codes: 0 success, 1 the work failed, 2 bad input or usage.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class MVT4GError(Exception):
    """Base class of every error mvt4g reports to a user.

    ``str(err)`` is the whole message: one line that names the file (when there is one) and
    the problem.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, path: object | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path is not None else message)


class InputError(MVT4GError):
    """Bad input: a missing, corrupt or invalid file, an unknown preset, a bad option value."""

    exit_code = EXIT_BAD_INPUT


class CameraError(InputError):
    """A camera that is not a valid pinhole camera with a proper rigid pose."""


class ConfigError(InputError):
    """An invalid configuration file or override."""


class OutputExistsError(InputError):
    """An output that exists already and would be overwritten without ``--overwrite``."""


class WorkFailed(MVT4GError):
    """The input was fine but the work failed (a NaN loss, out of memory, ...)."""

    exit_code = EXIT_FAILED


class Interrupted(MVT4GError):
    """The work was stopped by a signal after saving what it had (exit 130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, *, signal_name: str = "SIGINT", path: object | None = None):
        super().__init__(message, path=path)
        self.exit_code = 143 if signal_name == "SIGTERM" else 130
