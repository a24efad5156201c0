"""Atomic output: write to a temporary sibling, then rename, so a failed or interrupted run
leaves no half-written file (ARCHITECTURE.md, "Contracts")."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name keeps the suffix (writers that pick a format from it still work).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    make_parents(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
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
    """Yield a temporary directory next to ``path``; on success it replaces ``path``."""
    path = Path(path)
    make_parents(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise OutputExistsError("output exists (pass --overwrite to replace it)", path=path)
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, obj: object, *, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")
