"""The shipped models: names resolve everywhere, weights match their cards, corruption is refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mvt4g.errors import InputError
from mvt4g.model import lookup
from mvt4g.model.checkpoint import WEIGHTS_NAME, from_pretrained, read_config


@pytest.mark.parametrize("name", lookup.SHIPPED)
def test_shipped_weights_match_their_card_and_load(name):
    folder = lookup.resolve_model(name)
    card = lookup.shipped_card(name)
    assert lookup.sha256_file(folder / WEIGHTS_NAME) == card["sha256"]
    assert (folder / lookup.CARD_MD).is_file()
    model = from_pretrained(folder)
    assert all(p.dtype.is_floating_point and p.dtype.itemsize == 4 for p in model.parameters())  # fp16 storage, fp32 compute
    assert read_config(folder).video.frames == 9


def test_default_is_the_method_fine_tune():
    assert lookup.DEFAULT_MODEL == "mvtrack4gen"
    assert read_config(lookup.resolve_model("mvtrack4gen")).use_tracking_head


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    shutil.copytree(lookup.SHIPPED_ROOT / "base", root / "base")
    monkeypatch.setattr(lookup, "SHIPPED_ROOT", root)
    return root / "base"


def test_corrupt_or_missing_shipped_weights_are_refused(shipped_copy):
    assert lookup.resolve_model("base") == shipped_copy
    weights = shipped_copy / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt"):
        lookup.resolve_model("base")
    weights.unlink()
    with pytest.raises(InputError, match="no model.safetensors"):
        lookup.resolve_model("base")


def test_unknown_names_list_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="shipped models: mvtrack4gen, base"):
        lookup.resolve_model("mvtrack4")
    with pytest.raises(InputError, match="no such model or run directory"):
        lookup.resolve_model("runs/missing")


def test_cli_unknown_model_is_one_line_exit_2(cli, tmp_path):
    video = tmp_path / "ref.mp4"
    from mvt4g.io.video import write_video

    write_video(video, np.zeros((9, 32, 32, 3), np.uint8), fps=15)
    res = cli("generate", video, "--traj", "arc-left", "--model", "nosuch", "--out-dir", tmp_path / "gen")
    assert res.code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "shipped models: mvtrack4gen, base" in res.stderr
    assert not (tmp_path / "gen").exists()


def test_info_shows_the_model_card(cli):
    res = cli("info", "--model", "base", "--json")
    assert res.code == 0, res.stderr
    assert '"shipped": "base"' in res.stdout and '"sha256"' in res.stdout
