"""Advisory directory locks: a run directory (or any folder a long command writes into) is
owned by one process at a time.

The lock is ``fcntl.flock`` on ``FOLDER/.mvt4g.lock``, held for the whole run and released by
the kernel on any exit (kill -9 included); the file holds the owner's pid, which a second
process names in its one-line refusal: ``run directory is in use by pid N``. The file itself
stays; an unlocked one means nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from mvt4g.errors import InputError

LOCK_NAME = ".mvt4g.lock"


class DirectoryLock:
    """``acquire()`` creates the folder (with its parents) when missing and takes the lock,
    or raises :class:`InputError`; ``release()`` drops it and, when this lock created the
    folder and nothing else was written there, removes the folder again."""

    def __init__(self, folder: str | Path, what: str = "run directory"):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> DirectoryLock:
        import fcntl

        missing = []
        p = self.folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = missing  # deepest first
        fd, writable = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(f"{self.what} is in use by pid {owner}", path=self.folder) from None
        if writable:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.fsync(fd)
        self._fd = fd
        return self

    def _open(self) -> tuple[int, bool]:
        """The lock file's descriptor, and whether this process can record its pid in it.

        A folder shared by several users holds the lock file of whoever came first; it is
        made group-writable where the umask allows (0o666 & ~umask, like every output), and a
        read-only descriptor still takes the flock when it is not (the pid then stays the
        last writer's)."""
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666), True
        except PermissionError:
            pass
        try:
            return os.open(self.path, os.O_RDONLY), False
        except OSError as exc:
            raise InputError(f"cannot open the lock file ({exc.strerror or exc})", path=self.path) from None

    def release(self, *, cleanup: bool = False) -> None:
        """Drop the lock; with ``cleanup``, also remove the folders ``acquire`` created when
        they hold nothing but the lock file (a start that failed leaves nothing behind)."""
        if self._fd is None:
            return
        if cleanup and self._created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
            self.path.unlink(missing_ok=True)
            for p in self._created:
                with contextlib.suppress(OSError):
                    p.rmdir()
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None


@contextlib.contextmanager
def directory_lock(folder: str | Path, what: str = "run directory") -> Iterator[DirectoryLock]:
    """Hold :class:`DirectoryLock` on ``folder`` for the block; a failure inside the block
    removes the folders the lock created when nothing else was written in them."""
    lock = DirectoryLock(folder, what).acquire()
    try:
        yield lock
    except BaseException:
        lock.release(cleanup=True)
        raise
    lock.release()


@contextlib.contextmanager
def lock_folders(folders: Iterable[str | Path], what: str) -> Iterator[list[DirectoryLock]]:
    """Hold :class:`DirectoryLock` on every folder for the block (a command that writes into
    many folders: tracks over a dataset, generate's per-reference folders).

    All or none: a folder in use raises :class:`InputError` and drops the locks taken so far.
    On any exit, folders the locks created and nothing was written in are removed again (a
    batch whose items all failed leaves nothing behind).
    """
    locks: list[DirectoryLock] = []
    try:
        for folder in sorted({Path(f) for f in folders}):
            locks.append(DirectoryLock(folder, what).acquire())
        yield locks
    finally:
        for lock in reversed(locks):
            lock.release(cleanup=True)


def is_lock_file(path: Path) -> bool:
    return path.name == LOCK_NAME
