"""User trackers as plug-ins: ``--tracker module:callable``.

A learned tracker (a local CoTracker3 or MV-TAP install with its own local weights) drops in
through one callable; mvt4g never downloads anything. ``module`` is an importable module name
(``my_pkg.trackers``) or a path to a ``.py`` file (``./my_tracker.py``); ``callable`` names a
function (or any callable attribute) in it. The interface::

    def track(videos, cameras, queries):
        '''
        videos:  dict view name -> uint8 [T, H, W, 3] RGB frames (clip view order, synchronized)
        cameras: dict view name -> mvt4g.camera.ViewCameras (K [T, 3, 3], c2w [T, 4, 4], OpenCV axes)
        queries: float32 [N, 4] = (view index, frame, x, y), pixel centres at +0.5
        returns: (tracks float [V, T, N, 2] pixel (x, y), visible bool [V, T, N])
        '''

The view index of a query counts views in the order of ``videos`` (the clip's view order), and
the outputs' V axis follows that order too. Track n must be the same physical point in every view
and frame; where a tracker cannot say where point n is in a view (a single-view tracker with no
cross-view association), it marks it not visible there rather than guessing. Coordinates where
not visible carry no meaning and may be NaN (the track file stores 0).

The outputs are validated (shapes, finite coordinates where visible); a plug-in that cannot be
imported or does not meet the interface is bad input (exit 2); an exception raised inside it is a
failed run (exit 1); either is one line from the CLI. examples/tracker_plugin.py is a worked
example: CoTracker3 from local weights, with every input and output mapping spelled out.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mvt4g.errors import InputError, WorkFailed


def load_tracker(spec: str, *, option: str = "--tracker", kind: str = "tracker") -> Callable:
    """Import ``module:callable`` (module name or ``.py`` path); raises :class:`InputError` with one line.

    ``option`` and ``kind`` name the plug-in in messages (``mvt4g eval --pose-estimator`` loads its
    plug-ins here too)."""
    module_name, sep, attr = str(spec).rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"{option} must be MODULE:CALLABLE (e.g. my_plugins.py:estimate), got {spec!r}")
    try:
        if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise InputError(f"{kind} plug-in file not found", path=path)
            name = "mvt4g_plugin_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise InputError("not an importable Python file", path=path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 (anything the plug-in's import raises is the plug-in's problem)
        raise InputError(f"cannot import {kind} plug-in {module_name!r}: {type(exc).__name__}: {_one_line(exc)}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise InputError(f"{kind} plug-in {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise InputError(f"{kind} plug-in attribute {module_name}:{attr} is not callable")
    return fn


def tracker_fingerprint(spec: str) -> str:
    """A string that changes when the plug-in's file changes (for the resumability key)."""
    module_name = str(spec).rpartition(":")[0]
    path = Path(module_name)
    if path.is_file():
        return f"{spec}@{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    return str(spec)


def run_tracker(
    fn: Callable, videos: dict[str, np.ndarray], cameras: dict, queries: np.ndarray, spec: str = "plugin"
) -> tuple[np.ndarray, np.ndarray]:
    """Call a plug-in and validate what it returns: tracks float32 ``[V, T, N, 2]``, visible bool ``[V, T, N]``."""
    V = len(videos)
    T = next(iter(videos.values())).shape[0]
    N = len(queries)
    try:
        out = fn(videos, cameras, np.array(queries, np.float32, copy=True))
    except Exception as exc:  # noqa: BLE001
        raise WorkFailed(f"tracker plug-in {spec} failed: {type(exc).__name__}: {_one_line(exc)}") from None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise InputError(f"tracker plug-in {spec} must return (tracks, visible), got {type(out).__name__}")
    try:
        tracks = np.asarray(_to_numpy(out[0]), dtype=np.float32)
        visible = np.asarray(_to_numpy(out[1]))
    except (TypeError, ValueError) as exc:
        raise InputError(f"tracker plug-in {spec} returned non-numeric arrays ({_one_line(exc)})") from None
    if tracks.shape != (V, T, N, 2):
        raise InputError(f"tracker plug-in {spec} returned tracks of shape {list(tracks.shape)}, expected {[V, T, N, 2]}")
    if visible.shape != (V, T, N):
        raise InputError(f"tracker plug-in {spec} returned visible of shape {list(visible.shape)}, expected {[V, T, N]}")
    if visible.dtype != bool:
        if visible.dtype.kind not in "biuf" or not np.isin(visible, (0, 1)).all():
            raise InputError(f"tracker plug-in {spec} returned a visible array that is not boolean")
        visible = visible.astype(bool)
    if not np.isfinite(tracks[visible]).all():
        raise InputError(f"tracker plug-in {spec} returned NaN or inf coordinates for visible points")
    return tracks, visible


def _to_numpy(x: object) -> object:
    # torch tensors (on any device) without importing torch here.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return x


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:300]
