"""Reading a JSON file the user gave us: every failure is one :class:`InputError` naming the file.

Cameras, trajectories, clip metadata, Kubric metadata and model cards are all JSON the user may
have written by hand, so the same four things go wrong everywhere (missing, a folder, not JSON,
the wrong shape) and each deserves the same one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mvt4g.errors import InputError


def read_json(path: str | Path, what: str = "JSON file", expect: type | None = dict) -> Any:
    """Parse ``path`` as JSON; ``what`` names the file in messages ("trajectory file").

    ``expect`` is the type the top level must have (``dict`` by default, ``list``, or ``None``
    for anything). Raises :class:`InputError` for a missing path, a directory, unreadable or
    invalid JSON, and a top level of the wrong type.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no such {what}", path=path) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not a {what}", path=path) from None
    except PermissionError:
        raise InputError(f"cannot read this {what} (permission denied)", path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a JSON file ({exc})", path=path) from None
    if expect is not None and not isinstance(data, expect):
        kind = {dict: "a JSON object", list: "a JSON list"}.get(expect, expect.__name__)
        raise InputError(f"must hold {kind}", path=path)
    return data


def read_jsonl(path: str | Path, what: str = "JSON-lines file") -> list[Any]:
    """Parse one JSON value per non-empty line (metrics logs); same errors as :func:`read_json`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"no such {what}", path=path) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not a {what}", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text file ({exc})", path=path) from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number} is not JSON ({exc})", path=path) from None
    return records
