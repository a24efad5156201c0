"""`mvt4g train` checks every clip's data before it creates the run directory: a failed start
leaves nothing behind, and a plain rerun after fixing the data is not blocked."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import assert_one_line_error
from helpers.train import CONFIG, synth_clips


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synth_clips(tmp_path_factory)


def _break(npz, how: str) -> None:
    data = dict(np.load(npz))
    if how == "nan":
        data["tracks"] = data["tracks"].astype(np.float32)
        data["tracks"][0, 0, 0, 0] = np.nan
    elif how == "missing-key":
        data.pop("visible")
    elif how == "wrong-views":
        data = {k: (v[:1] if getattr(v, "ndim", 0) >= 3 and k in ("tracks", "visible") else v) for k, v in data.items()}
        data.pop("views", None)
    elif how == "wrong-shape":
        data["tracks"] = data["tracks"][..., :1]
    elif how == "not-npz":
        npz.write_bytes(b"not a zip file")
        return
    np.savez(npz, **data)


@pytest.mark.parametrize("how", ["nan", "missing-key", "wrong-views", "wrong-shape", "not-npz"])
def test_bad_tracks_fail_before_the_run_directory_exists(cli, synth, tmp_path, how):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    _break(data / "scene_0001" / "tracks.npz", how)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    out = tmp_path / "runs" / "r1"
    result = cli("train", "--config", config, "--data", data, "--out", out, "--steps", "1")
    assert_one_line_error(result, "tracks.npz")
    assert not (tmp_path / "runs").exists()
