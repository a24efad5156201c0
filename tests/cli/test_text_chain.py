"""The full-scale path with text, on tiny random models in the real on-disk formats:
convert a DiffSynth-named ReCamMaster checkpoint against a diffusers Wan folder that has a umT5
text_encoder/ and tokenizer/ -> train with captions from a metadata.csv -> generate with a
prompt (and with the reference's caption) -> eval, each with no extra flags."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers.recammaster import make_base, recammaster_source, recammaster_state
from helpers.train import synth_clips

pytestmark = pytest.mark.slow

TRAIN = """
[model]
init = "{init}"
tracking_head = false

[data]
frames = 9
height = 32
width = 32
queries = 8

[train]
batch_size = 1
threads = 1
log_every = 1
"""


def _captioned_data(tmp_path, tmp_path_factory, captions: list[str]):
    """Synth clips whose captions live in a metadata.csv (ReCamMaster's file), not in meta.json."""
    data = tmp_path / "data"
    shutil.copytree(synth_clips(tmp_path_factory), data)
    rows = ["file_name,text"]
    for scene, caption in zip(sorted(data.glob("scene_*")), captions, strict=False):
        meta = json.loads((scene / "meta.json").read_text())
        meta.pop("caption")
        (scene / "meta.json").write_text(json.dumps(meta))
        rows.append(f'{scene.name}/videos/cam01.mp4,"{caption}"')
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    return data


def _train(cli, tmp_path, model_dir, data, name):
    config = tmp_path / f"{name}.toml"
    config.write_text(TRAIN.format(init=model_dir))
    result = cli("train", "--config", config, "--data", data, "--out", tmp_path / name, "--steps", "1", "--json")
    assert result.code == 0, result.stderr
    return result.json()


def test_convert_train_with_captions_generate_with_a_prompt_and_eval(cli, tmp_path, tmp_path_factory):
    torch.save(recammaster_state(recammaster_source()), tmp_path / "rcm.ckpt")
    model_dir = tmp_path / "models" / "recammaster"
    converted = cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", make_base(tmp_path, text=True),
                    "--out", model_dir, "--no-tracking-head", "--json")  # fmt: skip
    assert converted.code == 0, converted.stderr

    # Training encodes each clip's caption with the model's umT5 (no flag: the converted model has one).
    data = _captioned_data(tmp_path, tmp_path_factory, ["a red cube on grass", "a blue sphere in snow"])
    run = _train(cli, tmp_path, model_dir, data, "run")
    assert run["text"]["encoder"] == str((tmp_path / "wan").resolve())
    assert (run["text"]["captioned"], run["text"]["uncaptioned"]) == (2, 0)
    assert run["text"]["sources"] == [str(data / "metadata.csv")]
    # ... and the captions reach the model: other captions, another loss from the same seed.
    (data / "metadata.csv").write_text(
        (data / "metadata.csv").read_text().replace("a red cube on grass", "the dog walks").replace("blue", "white")
    )
    other = _train(cli, tmp_path, model_dir, data, "other")
    assert other["final"]["diff"] != run["final"]["diff"]

    # generate: the prompt given, else the reference's caption, guided against Wan's negative prompt.
    ref = data / "scene_0000" / "videos" / "cam01.mp4"
    args = ["generate", ref, "--traj", "arc-left", "--model", tmp_path / "run", "--steps", "2", "--json"]
    given = cli(*args, "--prompt", "a bear walks on rocks", "--negative-prompt", "blurry", "--out", tmp_path / "given.mp4")
    assert given.code == 0, given.stderr
    [item] = given.json()["items"]
    assert item["guidance"]["applied"] and item["guidance"]["prompt"] == "a bear walks on rocks"
    assert (item["guidance"]["prompt_source"], item["guidance"]["negative_prompt"]) == ("--prompt", "blurry")
    captioned = cli(*args, "--out", tmp_path / "captioned.mp4")
    assert captioned.code == 0, captioned.stderr
    [item] = captioned.json()["items"]
    assert item["guidance"]["prompt"] == "the dog walks"  # from metadata.csv, the ReCamMaster way
    assert item["guidance"]["prompt_source"] == str(data / "metadata.csv")
    assert item["guidance"]["negative_prompt"].startswith("色调艳丽")  # Wan's, as ReCamMaster's inference

    # eval --model prompts each item with its clip's caption.
    scored = cli("eval", "--bench", "synthetic", "--data-root", data, "--model", tmp_path / "run", "--steps", "2",
                 "--device", "cpu", "--metrics", "psnr", "--sequences", "scene_0000", "--frames", "9", "--json")  # fmt: skip
    assert scored.code == 0, scored.stderr
    videos = scored.json()["videos"]
    assert [v["trajectory"] for v in videos] == ["cam02", "cam03"]
    for video in videos:
        assert 0 < video["metrics"]["psnr"] < 60
        assert any("prompted with its caption" in note for note in video["notes"])
