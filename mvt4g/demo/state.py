"""Which demo stages are finished: one small JSON record per stage in ``OUT/stages/``.

A record holds the stage's key (:func:`mvt4g.demo.settings.stage_key`), its summary and its
time. A stage is reused when its record exists with the same key; otherwise its output folder
is rebuilt (training stages resume from their checkpoints instead).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.fs.atomic import check_output_location, write_json_atomic
from mvt4g.fs.lock import is_lock_file

#: The file that marks a folder as a demo folder (so --overwrite only ever deletes those).
MARKER = "demo.json"


class DemoState:
    """Stage records of one demo folder."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.dir = self.out / "stages"

    # ---- the folder ---------------------------------------------------------------------
    def prepare(self, settings: dict, overwrite: bool) -> bool:
        """Check or create the demo folder; returns True when earlier stages may be reused."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise InputError("--out is a file", path=out)
        check_output_location(out)
        is_demo = (out / MARKER).is_file()
        if out.is_dir() and any(not is_lock_file(p) for p in out.iterdir()) and not is_demo:
            raise InputError("folder exists and is not a demo folder (no demo.json); choose another --out", path=out)
        if overwrite and is_demo:  # everything but the lock file (held by this run)
            for p in out.iterdir():
                if is_lock_file(p):
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(exist_ok=True)
        write_json_atomic(out / MARKER, {"format_version": 1, "settings": settings, "updated": time.time()})
        return is_demo and not overwrite

    # ---- records ------------------------------------------------------------------------
    def _path(self, stage: str) -> Path:
        return self.dir / f"{stage}.json"

    def load(self, stage: str, key: str) -> dict | None:
        """The finished stage's record when its key matches, else None."""
        path = self._path(stage)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("key") == key else None

    def save(self, stage: str, key: str, summary: dict, seconds: float) -> dict:
        record = {"stage": stage, "key": key, "seconds": round(seconds, 2), "finished": time.time(), "summary": summary}
        write_json_atomic(self._path(stage), record)
        return record
