"""Captions of videos and clips: a clip's ``meta.json`` or a dataset's ``metadata.csv``.

ReCamMaster and DiffSynth-Studio keep captions in a ``metadata.csv`` with the columns
``file_name`` and ``text`` (one row per video). Its training scripts read ``file_name``
relative to the csv folder's ``train/`` (``MultiCamVideo-Dataset/metadata.csv`` lists
``f18_aperture10/scene1_0/videos/cam01.mp4``); its inference example, relative to the csv's
own folder (``videos/case0.mp4``). Both are accepted, so the same file serves ``train`` and
``generate``.

Lookup (:func:`caption_of`): the ``caption`` of ``meta.json`` in the clip folder wins; else the
nearest ``metadata.csv`` in the video's folder or up to :data:`SEARCH_DEPTH` folders above it
that has a row for the video (for a clip: for any of its videos, in view order, or for the
clip folder itself). No caption is ``""``, which is what Wan encodes for an empty prompt.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from mvt4g.errors import InputError
from mvt4g.fs.jsonio import read_json

CAPTIONS_FILE = "metadata.csv"
#: How many folders above a video are searched for ``metadata.csv`` (a MultiCamVideo video sits
#: four below its dataset root: train/f18_aperture10/scene1_0/videos/cam01.mp4).
SEARCH_DEPTH = 5
_TEXT_COLUMNS = ("text", "caption", "prompt")

#: Wan2.1's standard negative prompt, which ReCamMaster's inference passes with guidance 5:
#: the unconditional branch of classifier-free guidance when ``--negative-prompt`` is not given.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


@dataclass(frozen=True)
class Caption:
    """A caption and where it came from (a ``meta.json`` or ``metadata.csv`` path; None: none found)."""

    text: str
    source: Path | None


def read_captions_csv(path: str | Path, *, strict: bool = True) -> dict[str, str]:
    """Path relative to the csv's folder (normalised) -> caption, for every row of a
    ``metadata.csv``; InputError when unreadable.

    Each ``file_name`` is entered twice, as it is and under ``train/`` (see the module
    docstring); the text column is ``text`` (or ``caption`` / ``prompt``).
    ``strict=False`` (the search above a video): a csv without a ``file_name`` column is not a
    captions file and reads as empty; one with it but no text column is still an error.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            column = next((c for c in _TEXT_COLUMNS if c in fields), None)
            if "file_name" not in fields and not strict:
                return {}  # some other table that happens to be called metadata.csv
            if "file_name" not in fields or column is None:
                raise InputError(f"a captions file needs the columns file_name and text, found {', '.join(fields) or 'none'}",
                                 path=path)  # fmt: skip
            rows = [(row["file_name"], row[column]) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"unreadable captions file ({exc})", path=path) from None
    # Keys are relative paths, matched against a video's path relative to the csv's folder:
    # no filesystem call per row (MultiCamVideo's csv has ~136k), and linked clips still match.
    out: dict[str, str] = {}
    for name, text in rows:
        if not name:
            continue
        for key in (os.path.join("train", name), name):  # the csv's own folder wins when both exist
            out[os.path.normpath(key)] = (text or "").strip()
    return out


def _csv_files(start: Path) -> list[Path]:
    return [folder / CAPTIONS_FILE for folder in [start, *start.parents][: SEARCH_DEPTH + 1]
            if (folder / CAPTIONS_FILE).is_file()]  # fmt: skip


def caption_of(paths: list[Path], *, meta: dict | None = None, meta_path: Path | None = None) -> Caption:
    """The caption of a video or clip.

    ``paths``: what a ``metadata.csv`` row may name (a clip's videos in view order, then the
    clip folder; or one video). ``meta``: the clip's parsed ``meta.json``, whose ``caption``
    wins when it is a non-empty string.
    """
    if meta and isinstance(meta.get("caption"), str) and meta["caption"].strip():
        return Caption(meta["caption"].strip(), meta_path)
    if not paths:
        return Caption("", None)
    wanted = [Path(os.path.abspath(p)) for p in paths]
    for csv_path in _csv_files(wanted[0].parent):
        stat = csv_path.stat()
        rows = _cached_captions(str(csv_path), stat.st_mtime_ns, stat.st_size)
        for path in wanted:
            key = os.path.relpath(path, csv_path.parent)
            if key in rows:
                return Caption(rows[key], csv_path)
    return Caption("", None)


@functools.lru_cache(maxsize=8)
def _cached_captions(path: str, mtime_ns: int, size: int) -> dict[str, str]:
    # A dataset's clips share one csv (MultiCamVideo: ~136k rows): read it once per change.
    return read_captions_csv(path, strict=False)


def reference_caption(path: str | Path) -> Caption:
    """The caption of a video given to ``generate``: its clip's (``CLIP/videos/V.mp4`` with a
    ``CLIP/meta.json``) or its ``metadata.csv`` row (a frame folder is named by its path)."""
    path = Path(path)
    clip = path.parent.parent if path.parent.name == "videos" else None
    if clip is not None and (clip / "meta.json").is_file():
        meta = read_json(clip / "meta.json", what="meta.json")
        found = caption_of([], meta=meta if isinstance(meta, dict) else None, meta_path=clip / "meta.json")
        if found.text:
            return found
    return caption_of([path])
