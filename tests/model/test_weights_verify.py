"""Loading weights always verifies them: truncated, empty, corrupt or mismatched safetensors
files are one InputError (exit 2 in every command that reads a model, `info` included)."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from helpers import assert_one_line_error
from safetensors.torch import save_file

from mvt4g.errors import InputError
from mvt4g.model.checkpoint import (
    WEIGHTS_NAME,
    from_pretrained,
    load_state_dict_file,
    verify_safetensors_file,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("verify_model") / "tiny"
    save_pretrained(MVT4GModel(preset("tiny")), root)
    return root


def _raw(header: dict, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def _broken(path, how: str) -> None:
    good = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif how == "header-only":
        n = struct.unpack("<Q", good[:8])[0]
        path.write_bytes(good[: 8 + n])
    elif how == "short":
        path.write_bytes(good[:5])
    elif how == "garbage":
        path.write_bytes(b"\xff" * 4096)
    elif how == "bad-json":
        path.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    elif how == "wrong-size":
        path.write_bytes(_raw({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8))
    elif how == "bad-dtype":
        path.write_bytes(_raw({"x": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8))


CASES = ["empty", "truncated", "header-only", "short", "garbage", "bad-json", "wrong-size", "bad-dtype"]


@pytest.mark.parametrize("how", CASES)
def test_broken_files_are_one_input_error(tmp_path, model_dir, how):
    path = tmp_path / "w.safetensors"
    shutil.copy(model_dir / WEIGHTS_NAME, path)
    _broken(path, how)
    with pytest.raises(InputError, match="w.safetensors"):
        verify_safetensors_file(path)
    with pytest.raises(InputError):
        load_state_dict_file(path)


def test_a_good_file_passes_and_shapes_are_checked(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(2, 3), "b": torch.ones(4, dtype=torch.int64)}, str(path))
    assert verify_safetensors_file(path) == {"a": [2, 3], "b": [4]}
    verify_safetensors_file(path, {"a": (2, 3), "b": (4,)})
    with pytest.raises(InputError, match="weight a has shape"):
        verify_safetensors_file(path, {"a": (3, 2), "b": (4,)})
    with pytest.raises(InputError, match="1 missing"):
        verify_safetensors_file(path, {"a": (2, 3), "b": (4,), "c": (1,)})
    with pytest.raises(InputError, match="1 unexpected"):
        verify_safetensors_file(path, {"a": (2, 3)})


@pytest.mark.parametrize("how", ["empty", "truncated", "header-only", "garbage", "mismatched"])
def test_info_and_from_pretrained_refuse_broken_weights(cli, tmp_path, model_dir, how):
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    weights = broken / WEIGHTS_NAME
    if how == "mismatched":
        save_file({"not.a.weight": torch.zeros(3)}, str(weights))
    else:
        _broken(weights, how)
    assert_one_line_error(cli("info", "--model", broken), WEIGHTS_NAME)
    with pytest.raises(InputError):
        from_pretrained(broken)


def test_info_on_a_good_model(cli, model_dir):
    assert cli("info", "--model", model_dir, "--json").code == 0

