"""Atomic output: write to a temporary sibling, then rename, so a failed or interrupted run
leaves no half-written file (docs/ARCHITECTURE.md, "Atomic outputs and temporary names").

Temporary names are hidden and say whose they are: ``.NAME.HOST-PID-RANDOM.tmp.EXT`` for a
file, ``.NAME.HOST-PID-RANDOM.tmp/NAME/`` for a folder (the extra level keeps a half-written
clip folder from looking like a clip to anything that scans a dataset folder). An exception
(SIGINT, SIGTERM: see the CLI) removes them; only kill -9 or a power cut leaves one behind.
Readers skip hidden names, and the next write of the same output removes the leftovers of
dead processes of this host (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mvt4g.errors import InputError, OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_location(path: str | Path) -> Path:
    """Check, before any work, that an output can be written at ``path``.

    Policy (README, "Conventions"): missing parent folders of an output are created when it is
    written, so the nearest folder above ``path`` that exists must be a folder this process can
    write in; a temporary file is created and removed there to find out. Raises
    :class:`InputError` naming the path otherwise. Creates nothing that stays.
    """
    path = Path(path)
    folder = path.parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write here: {str(folder)!r} is not a folder", path=path)
    try:
        fd, probe = tempfile.mkstemp(prefix=".mvt4g-write-test.", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write in {str(folder)!r} ({exc.strerror or exc})", path=path) from None
    os.close(fd)
    os.unlink(probe)
    return path


def make_parents(path: str | Path) -> None:
    """Create the missing parent folders of an output (see :func:`check_output_location`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def check_output_path(path: str | Path, *, overwrite: bool = False, is_dir: bool = False) -> Path:
    """Validate an output path before any work starts.

    Raises :class:`InputError` when it cannot be written (:func:`check_output_location`; missing
    parent folders are fine, writers create them) and :class:`OutputExistsError` when the output
    exists and ``overwrite`` is false.
    """
    path = check_output_location(path)
    if path.exists() and not overwrite:
        raise OutputExistsError("output exists (pass --overwrite to replace it)", path=path)
    if path.exists() and path.is_dir() != is_dir:
        kind = "a directory" if path.is_dir() else "a file"
        raise InputError(f"output is {kind}", path=path)
    return path


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[a-z0-9_]+\.tmp(?P<ext>\.[^.]*)?$")


@functools.cache
def _host() -> str:
    # A hash, not the name: short, and safe in a file name whatever the host is called.
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _temp_prefix(name: str) -> str:
    return f".{name}.{_host()}-{os.getpid()}-"


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file or folder of :func:`atomic_path` / :func:`atomic_dir`."""
    return _TEMP.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporaries of ``path`` that a killed process left; returns them.

    Only those made on this host by a process that no longer runs: a live writer's are its
    own, and a pid from another host (a shared file system) says nothing here.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for leftover in path.parent.glob(f".{glob.escape(path.stem)}*.tmp*"):  # path.stem starts both kinds of name
        name = leftover.name
        m = _TEMP.match(name)
        if not m or m["host"] != _host() or _pid_alive(int(m["pid"])):
            continue
        if (m["name"], m["ext"] or "") not in ((path.stem, path.suffix), (path.name, "")):
            continue  # another output's whose name starts the same way
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name keeps the suffix (writers that pick a format from it still work).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    make_parents(path)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.stem), suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory (``.NAME.….tmp/NAME``, see the module docstring) next to
    ``path``; on success it replaces ``path``."""
    path = Path(path)
    make_parents(path)
    remove_stale_temps(path)
    outer = Path(tempfile.mkdtemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent))
    tmp = outer / path.name
    try:
        tmp.mkdir(mode=0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if path.exists():
            if not overwrite:
                raise OutputExistsError("output exists (pass --overwrite to replace it)", path=path)
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(outer, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, obj: object, *, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")
