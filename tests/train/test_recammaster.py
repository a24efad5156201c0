"""Fine-tuning a converted ReCamMaster checkpoint as it is: convert -> train, no flags.

The checkpoint is tiny and random in ReCamMaster's (DiffSynth) key names, over a tiny
diffusers Wan directory with its vae/; the model keeps ReCamMaster's 12-value pose
conditioning, so training must feed it poses computed from the clips' cameras.
"""

from __future__ import annotations

import json

import torch
from helpers.recammaster import make_base, recammaster_source, recammaster_state
from helpers.train import synth_clips


def test_converted_recammaster_trains_on_its_own_pose_conditioning(cli, tmp_path, tmp_path_factory):
    synth = synth_clips(tmp_path_factory)
    source = recammaster_source()
    torch.save(recammaster_state(source), tmp_path / "rcm.ckpt")
    model_dir = tmp_path / "models" / "recammaster"
    converted = cli("convert", "recammaster", tmp_path / "rcm.ckpt", "--base", make_base(tmp_path), "--out", model_dir,
                    "--no-tracking-head", "--json")  # fmt: skip
    assert converted.code == 0, converted.stderr
    config = tmp_path / "finetune.toml"
    config.write_text(
        f"""
[model]
init = "{model_dir}"
tracking_head = false

[data]
frames = 17
height = 32
width = 32
queries = 8

[train]
batch_size = 2
threads = 1
log_every = 1
"""
    )
    out = tmp_path / "run"
    result = cli("train", "--config", config, "--data", synth, "--out", out, "--steps", "2", "--json")
    assert result.code == 0, result.stderr
    final = result.json()["final"]
    assert final["diff"] > 0 and final["corr"] > 0  # L_corr on the tapped attention works for it too
    from mvt4g.model.checkpoint import from_pretrained

    trained = from_pretrained(out / "model")
    assert trained.config.camera.mode == "recammaster"
    # The pose encoders were trained (they are in the camera group of the fine-tuning scope).
    before = source.backbone.camera.pose_encoders[0].weight
    assert not torch.equal(trained.backbone.camera.pose_encoders[0].weight, before)
    assert json.loads((out / "model" / "config.json").read_text())["model"]["camera"]["mode"] == "recammaster"
