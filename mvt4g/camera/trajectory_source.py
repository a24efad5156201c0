"""What a ``--traj`` value names: a preset or a trajectory file, resolved by ONE rule set.

`mvt4g traj show NAME|FILE` and `mvt4g generate --traj NAME|FILE[,...]` both resolve their values
here, so they accept and refuse the same ones:

* a preset name (``mvt4g traj list``) is that preset; preset ``options`` (``angle``,
  ``distance``, ``target_depth``, ``speed``, ``path``) change it, and only the ones it takes;
* anything else is a trajectory file: an mvt4g trajectory JSON, or a ReCamMaster
  ``camera_extrinsics.json`` (``camera`` picks one of its cameras); preset options do not apply;
* a value that is neither a preset nor an existing file is "no such trajectory file" when it
  looks like a path (a suffix, ``/`` or ``\\``), else an unknown preset (the message lists them);
* ``camera`` must be used by at least one ``camera_extrinsics.json`` value;
* values are comma-separated (``"arc-left,zoom-in"``), none empty, and their output names unique.

A :class:`Trajectory` is relative to its own frame 0 and has no frame count until asked for
one (:meth:`Trajectory.poses`): presets are built for it, files are resampled to it. Frame
counts come from the caller (the output's, or ``mvt4g.io.frames.DEFAULT_FRAMES`` for
``traj show``); this layer has no default of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvt4g.camera.choices import PRESET_OPTIONS
from mvt4g.camera.trajectories import (
    PRESET_NAMES,
    PRESETS,
    TrajectorySpec,
    preset_spec,
    trajectory_from_spec,
)
from mvt4g.camera.trajectory_files import (
    is_extrinsics_json,
    load_trajectory_file,
    read_trajectory_json,
    resample_trajectory,
)
from mvt4g.errors import InputError


def option_flag(name: str) -> str:
    """The command-line option of a preset parameter: ``target_depth`` -> ``--target-depth``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Trajectory:
    """A resolved ``--traj`` value: a preset's ``spec`` or a file's ``file_poses``.

    ``name``: what the trajectory calls itself (the preset, a file's ``"name"``, or
    ``STEM:camNN``); ``output_name``: the file-name-safe name outputs are written under (the
    preset, or the file's stem with ``-camNN`` when a camera was picked); ``source``:
    ``preset:NAME`` or ``PATH[:camNN]``.
    """

    name: str
    output_name: str
    source: str
    spec: TrajectorySpec | None = None
    file_poses: np.ndarray | None = None  # [N, 4, 4] relative to frame 0

    @property
    def preset(self) -> str | None:
        """The preset's name, or None for a file."""
        return self.spec.name if self.spec is not None else None

    def poses(self, frames: int) -> tuple[np.ndarray, str | None]:
        """``c2w [frames, 4, 4]`` relative to frame 0, and a note when a file was resampled."""
        if self.spec is not None:
            return trajectory_from_spec(self.spec, frames), None
        n = len(self.file_poses)
        if n == frames:
            return self.file_poses.copy(), None
        return resample_trajectory(self.file_poses, frames), f"trajectory file has {n} poses: resampled to {frames}"


def safe_name(text: str) -> str:
    """``text`` as a file name: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return name or "trajectory"


def split_values(values: list[str] | tuple[str, ...]) -> list[str]:
    """``--traj`` values (each possibly comma-separated) -> one item each; InputError for empty ones."""
    items = [part.strip() for value in values for part in str(value).split(",")]
    if not items or any(not part for part in items):
        given = ",".join(map(str, values))
        raise InputError(f"trajectories are preset names or trajectory files, separated by commas without empty entries; got {given!r}")
    return items


def resolve_trajectories(
    values: list[str] | tuple[str, ...], camera: str | None = None, options: dict[str, object] | None = None
) -> list[Trajectory]:
    """Resolve ``--traj`` values by the rules in the module docstring; InputError for a bad one.

    ``options``: preset parameters (``None`` values are ignored), for every preset value.
    """
    given = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = [k for k in given if k not in PRESET_OPTIONS]
    if unknown:
        raise InputError(f"not a preset option: {', '.join(unknown)} (options: {', '.join(PRESET_OPTIONS)})")
    out: list[Trajectory] = []
    used_camera = False
    for item in split_values(values):
        if item in PRESETS:
            out.append(_preset(item, given))
            continue
        trajectory, used = _file(item, camera, given)
        used_camera = used_camera or used
        out.append(trajectory)
    if camera is not None and not used_camera:
        raise InputError(f"--camera {camera} only applies to a camera_extrinsics.json trajectory file")
    names = [t.output_name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"trajectories would share output names: {', '.join(dupes)}")
    return out


def resolve_trajectory(value: str, camera: str | None = None, options: dict[str, object] | None = None) -> Trajectory:
    """One trajectory (``traj show NAME|FILE``): :func:`resolve_trajectories` of one value."""
    found = resolve_trajectories([value], camera, options)
    if len(found) != 1:
        raise InputError(f"give one trajectory, a preset name or a file, not {len(found)} ({value!r})")
    return found[0]


def _preset(name: str, given: dict[str, object]) -> Trajectory:
    allowed = PRESETS[name].parameters
    extra = [option_flag(k) for k in given if k not in allowed]
    if extra:
        takes = ", ".join(option_flag(k) for k in allowed if k in PRESET_OPTIONS) or "no options"
        raise InputError(f"preset {name!r} does not take {', '.join(extra)} (it takes {takes})")
    return Trajectory(name, name, f"preset:{name}", spec=preset_spec(name, **given))


def _file(item: str, camera: str | None, given: dict[str, object]) -> tuple[Trajectory, bool]:
    """A trajectory file value and whether ``camera`` was used to pick one of its cameras."""
    path = Path(item)
    if not path.exists():
        if path.suffix != "" or "/" in item or "\\" in item:
            raise InputError("no such trajectory file", path=path)
        raise InputError(f"unknown trajectory preset {item!r} and no such file (presets: {', '.join(PRESET_NAMES)})")
    if given:
        flags = ", ".join(option_flag(k) for k in given)
        raise InputError(f"{flags} change presets; they do not apply to the trajectory file {item!r}")
    picks = camera is not None and is_extrinsics_json(read_trajectory_json(path))
    name, poses = load_trajectory_file(path, camera if picks else None)
    suffix = f"-{camera}" if picks else ""
    source = str(path) + (f":{camera}" if picks else "")
    return Trajectory(name, safe_name(path.stem + suffix), source, file_poses=poses), picks
