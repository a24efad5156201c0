"""The reliability contract as a table of bad inputs over every command. Each one must exit 2
with exactly one line on stderr naming the option or file, and leave the output tree unchanged.
All run in-process (tiny sizes, no work starts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_one_line_error

# {clip}: a 2-view clip; {model}: a tiny saved model; {file}: a plain file; {out}: a fresh output
# path in the watched tree; {empty}: an empty file; {video}: a short mp4.
PROC = "/proc/mvt4g-nope/out"
CASES: list[tuple[list[str], str]] = []


def case(needle: str, *args: str) -> None:
    CASES.append((list(args), needle))


# synth
for size in ["0x0", "abc", "3x5", "-2x4", "2x", "x2", "48", "1x1", "100000x100000", "48x80x3"]:
    case("size", "synth", "--out", "{out}", "--size", size)
for frames in ["0", "-1", "1000000000", "abc"]:
    case("frames", "synth", "--out", "{out}", "--frames", frames)
for views in ["0", "100", "-3", "x"]:
    case("views", "synth", "--out", "{out}", "--views", views)
for opt, value in [("--points", "0"), ("--points", "-5"), ("--supersample", "0"), ("--supersample", "9"),
                   ("--fps", "0"), ("--fps", "-1"), ("--objects", "-1"), ("--objects", "255"), ("--threads", "0"),
                   ("--seed", "-1"), ("--workers", "0"), ("--scenes", "0"), ("--scenes", "-1")]:  # fmt: skip
    case(opt.lstrip("-"), "synth", "--out", "{out}", opt, value)
case("nope", "synth", "--out", "{out}", "--preset-views", "nope")
case("cannot write in", "synth", "--out", PROC)
case("is not a folder", "synth", "--out", "{file}/sub")
case("--out", "synth")
case("--bogus", "synth", "--out", "{out}", "--bogus")

# traj
case("nope", "traj", "show", "nope")
for frames in ["0", "1", "-4", "1000000000"]:
    case("frames", "traj", "show", "arc-left", "--frames", frames)
case(".png", "traj", "show", "arc-left", "--plot", "{out}.jpg")
case("cannot write in", "traj", "show", "arc-left", "--out", PROC)
case("cannot write in", "traj", "show", "arc-left", "--plot", PROC + ".png")
case("--format", "traj", "show", "arc-left", "--format", "recammaster")
case("--camera", "traj", "show", "arc-left", "--camera", "cam01")
case("missing.json", "traj", "show", "{tmp}/missing.json")
case("--angle", "traj", "show", "zoom-in", "--angle", "10")
case("--speed", "traj", "show", "arc-left", "--speed", "warp")
case("overwrite", "traj", "show", "arc-left", "--out", "{file}")
case("empty", "traj", "show", "{empty}.json")

# plucker
case("missing", "plucker", "{tmp}/missing")
for size in ["0x0", "abc", "-4x4", "100000x100000"]:
    case("size", "plucker", "{clip}", "--size", size)
case("cam07", "plucker", "{clip}", "--relative-to", "cam07")
case("int8", "plucker", "{clip}", "--dtype", "int8")
case("some", "plucker", "{clip}", "--frames", "some")
case("cannot write in", "plucker", "{clip}", "--out", PROC)
case("--out takes one source", "plucker", "{clip}", "{clip}", "--out", "{out}")
case("file", "plucker", "{file}")

# info
case("unknown preset 'huge'", "info", "--preset", "huge")
case("exactly one", "info")
case("no such model", "info", "--model", "{tmp}/nope")
case("model.safetensors", "info", "--model", "{model_empty}")
case("model.safetensors", "info", "--model", "{model_truncated}")
case("model.safetensors", "info", "--model", "{model_mismatched}")
case("config", "info", "--model", "{file_dir}")

# train
TRAIN = ["train", "--config", "{config}", "--data", "{clips}", "--out", "{out}"]
case("config file does not exist", "train", "--data", "{clips}", "--out", "{out}", "--config", "{tmp}/nope.toml")
case("config file is empty", "train", "--data", "{clips}", "--out", "{out}", "--config", "{empty}")
case("not a valid TOML", "train", "--data", "{clips}", "--out", "{out}", "--config", "{file}")
for override in ["optim.lr", "nosuch.key=1", "optim.lr=abc", "train.steps=-1", "optim.lrr=1"]:
    case("--set" if "=" not in override else override.split("=")[0].split(".")[-1][:4], *TRAIN, "--set", override)
case("data directory does not exist", "train", "--config", "{config}", "--data", "{tmp}/nodata", "--out", "{out}")
case("cannot write in", "train", "--config", "{config}", "--data", "{clips}", "--out", PROC)
case("steps", *TRAIN, "--steps", "0")
case("steps", *TRAIN, "--steps", "-3")
case("layer", *TRAIN, "--tap-layer", "999")

# generate
GEN = ["generate", "{video}", "--model", "{model}", "--out-dir", "{out}"]
case("--traj", *GEN)
case("nope", *GEN, "--traj", "nope")
case("missing.mp4", "generate", "{tmp}/missing.mp4", "--traj", "arc-left", "--model", "{model}")
case("nope", "generate", "{video}", "--traj", "arc-left", "--model", "{tmp}/nope")
for size in ["0x0", "abc", "30x30", "40000x40000"]:
    case("size", *GEN, "--traj", "arc-left", "--size", size, "--frames", "17")
for frames in ["4", "-1", "1000000001"]:
    case("frames", *GEN, "--traj", "arc-left", "--frames", frames)
case("cannot write in", "generate", "{video}", "--model", "{model}", "--traj", "arc-left", "--out", PROC + ".mp4", "--frames", "17")
case("cannot write in", "generate", "{video}", "--model", "{model}", "--traj", "arc-left", "--out-dir", PROC, "--frames", "17")
case("track-timestep", *GEN, "--traj", "arc-left", "--query-points", "grid", "--track-timestep", "1200")
case("--track-timestep needs --query-points", *GEN, "--traj", "arc-left", "--track-timestep", "10")
case("--ref-cameras", *GEN, "--target-cameras", "{file}")
case("not both", *GEN, "--traj", "arc-left", "--prompt", "a", "--prompt-file", "{file}")
case("--out must end in .mp4", "generate", "{video}", "--model", "{model}", "--traj", "arc-left", "--out", "{out}.avi", "--frames", "17")
case("exactly one of --out", *GEN, "--traj", "arc-left", "--out", "{out}.mp4")
case("model.safetensors", "generate", "{video}", "--traj", "arc-left", "--model", "{model_truncated}", "--frames", "17", "--out-dir", "{out}")
case("model.safetensors", "generate", "{video}", "--traj", "arc-left", "--model", "{model_empty}", "--frames", "17", "--out-dir", "{out}")
case("steps", *GEN, "--traj", "arc-left", "--steps", "0", "--frames", "17")

# demo
for size in ["0x0", "abc", "100000x100000"]:
    case("size", "demo", "--out", "{out}", "--size", size)
for frames in ["4", "6", "1000000001"]:
    case("frames", "demo", "--out", "{out}", "--frames", frames)
case("views", "demo", "--out", "{out}", "--views", "1")
case("budget-minutes", "demo", "--out", "{out}", "--budget-minutes", "0")
case("no model named 'nope'", "demo", "--out", "{out}", "--base", "nope")
case("--steps", "demo", "--out", "{out}", "--steps", "0")
case("no such video", "demo", "--out", "{out}", "--real-video", "{tmp}/missing.mp4")
case("cannot write in", "demo", "--out", PROC)
case("not a demo folder", "demo", "--out", "{file_dir}")
case("--out is a file", "demo", "--out", "{file}")

# tracks, eval, analyze, convert
case("missing", "tracks", "compute", "{tmp}/missing")
case("missing.ckpt", "convert", "recammaster", "{tmp}/missing.ckpt", "--base", "{tmp}", "--out", "{out}")
case("No such command", "nosuchcommand")

# more values of the same options (each a distinct input a user may type)
for size in ["0x48", "48x0", "47x80", "48x81", "1e3x4", "4.5x4", " ", "99999999999x2"]:
    case("size", "synth", "--out", "{out}", "--size", size)
for value in ["nan", "inf", "-inf"]:
    case("fps", "synth", "--out", "{out}", "--fps", value)  # inf used to fail only when the video was written
for frames in ["2.5", "", "9e99"]:
    case("frames", "synth", "--out", "{out}", "--frames", frames)
for size in ["0x8", "8x0", "axb", "-8x8", "8x-8"]:
    case("size", "plucker", "{clip}", "--size", size)
for size in ["0x32", "32", "3x3x3", "-32x32"]:
    case("size", "demo", "--out", "{out}", "--size", size)
for frames in ["0", "1", "-1", "2"]:
    case("frames", "demo", "--out", "{out}", "--frames", frames)
for value in ["-1", "1e9"]:
    case("budget-minutes", "demo", "--out", "{out}", "--budget-minutes", value)
for frames in ["x", "2.5"]:
    case("frames", "traj", "show", "arc-left", "--frames", frames)
for name in ["arc", "ARC-LEFT", "pan"]:
    case(name, "traj", "show", name)
for steps in ["x", "1.5"]:
    case("steps", *TRAIN, "--steps", steps)
for size in ["33x32", "32x33", "-32x32", "32"]:
    case("size", *GEN, "--traj", "arc-left", "--size", size, "--frames", "17")


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import shutil

    import numpy as np
    import torch

    from mvt4g.io.video import write_video
    from mvt4g.model.checkpoint import WEIGHTS_NAME, save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel
    from mvt4g.synth.pipeline import SynthSettings, synthesize

    root = tmp_path_factory.mktemp("bad_inputs")
    clips = root / "clips"
    synthesize(SynthSettings(views=2, frames=17, height=32, width=32, points=16), clips, 1)
    torch.manual_seed(0)
    save_pretrained(MVT4GModel(preset("tiny")), root / "model")
    for how in ("empty", "truncated", "mismatched"):
        broken = root / f"model_{how}"
        shutil.copytree(root / "model", broken)
        w = broken / WEIGHTS_NAME
        if how == "empty":
            w.write_bytes(b"")
        elif how == "truncated":
            w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
        else:
            from safetensors.torch import save_file

            save_file({"x": torch.zeros(2)}, str(w))
    write_video(root / "in.mp4", np.zeros((17, 32, 32, 3), np.uint8), fps=10)
    (root / "file").write_text("not a thing\n")
    (root / "config.toml").write_text('[model]\npreset = "tiny"\n')
    (root / "empty").write_text("")
    (root / "empty.json").write_text("")
    (root / "file_dir").mkdir()
    (root / "file_dir" / "precious.txt").write_text("keep")
    return root


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(a)[:80] for a, _ in CASES])
def test_bad_input_is_exit_2_one_line_and_writes_nothing(cli, world, args, needle):
    subs = {"{tmp}": str(world), "{out}": str(world / "out"), "{clip}": str(world / "clips" / "scene_0000"),
            "{clips}": str(world / "clips"), "{model}": str(world / "model"), "{file}": str(world / "file"),
            "{empty}": str(world / "empty"), "{video}": str(world / "in.mp4"), "{file_dir}": str(world / "file_dir"), "{config}": str(world / "config.toml")}  # fmt: skip
    for how in ("empty", "truncated", "mismatched"):
        subs[f"{{model_{how}}}"] = str(world / f"model_{how}")
    real = []
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        real.append(a)
    before = _tree(world)
    result = cli(*real)
    assert_one_line_error(result, needle)
    assert _tree(world) == before


def test_the_table_is_large_enough():
    assert len(CASES) >= 150
