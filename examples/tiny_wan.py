"""Write tiny random stand-ins for the full-scale inputs, to rehearse the full-scale path on a CPU.

The paper's path starts from files nobody can download here: a diffusers Wan2.1-T2V-1.3B folder,
a ReCamMaster checkpoint and the MultiCamVideo dataset with its captions. This writes each in its
real on-disk format at toy size, with random weights (mvt4g.model.tiny_formats):

    OUT/Wan2.1-T2V-tiny-Diffusers/   transformer/, vae/, text_encoder/ (umT5), tokenizer/
    OUT/recammaster.ckpt             a ReCamMaster state dict under DiffSynth-Studio's key names
    OUT/MultiCamVideo-Dataset/       metadata.csv (file_name,text) and
        train/f24_aperture5/sceneN/  videos/cam01.mp4 ..., cameras/camera_extrinsics.json, tracks.npz
    OUT/finetune.toml                a training config: model.init = OUT/models/recammaster, 9x32x32

The videos are `mvt4g synth` scenes (32x32, 9 frames, 3 views) moved into MultiCamVideo's
layout (Unreal-style camera_extrinsics.json, focal length from the folder name); tracks.npz
holds their exact tracks, standing in for a tracker's. Then the README's chain runs as it
would on the real files: convert -> train (captions encoded by the umT5) -> generate -> eval.

    python examples/tiny_wan.py rehearsal

The generated videos are noise: the weights are random. The point is the path, not the picture.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from mvt4g.camera.converters import recammaster_extrinsics_dict
from mvt4g.camera.intrinsics import MULTICAMVIDEO_SENSOR_MM
from mvt4g.errors import MVT4GError
from mvt4g.io import read_clip
from mvt4g.model.tiny_formats import recammaster_state_dict, tiny_recammaster_source, write_tiny_wan
from mvt4g.synth import SynthSettings, synthesize

CAPTIONS = ["a red cube and a blue ball on grass", "a green box moving in snow"]
FINETUNE = """# Fine-tune the converted tiny ReCamMaster (written by examples/tiny_wan.py).
[model]
init = "{init}"

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


def write_dataset(out: Path, scenes: int, seed: int) -> Path:
    """MultiCamVideo-layout clips with a metadata.csv; returns the dataset root."""
    root = out / "MultiCamVideo-Dataset"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(SynthSettings(views=3, frames=9, height=32, width=32, seed=seed, points=64), tmp, scenes)
        for i, src in enumerate(sorted(Path(tmp).glob("scene_*"))):
            clip = read_clip(src)
            cam = clip.cameras[clip.views[0]]
            focal_mm = float(cam.K[0, 0, 0]) * MULTICAMVIDEO_SENSOR_MM / cam.width
            scene = root / "train" / f"f{focal_mm:.4g}_aperture5" / f"scene{i + 1}"
            shutil.copytree(src / "videos", scene / "videos")
            (scene / "cameras").mkdir()
            extrinsics = recammaster_extrinsics_dict({v: clip.cameras[v].c2w for v in clip.views})
            (scene / "cameras" / "camera_extrinsics.json").write_text(json.dumps(extrinsics, indent=1))
            shutil.copy(src / "tracks.npz", scene / "tracks.npz")
            rows.append((f"{scene.parent.name}/{scene.name}/videos/cam01.mp4", CAPTIONS[i % len(CAPTIONS)]))
    with (root / "metadata.csv").open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([("file_name", "text"), *rows])
    return root


def fail(message: str) -> None:
    """One line on stderr and exit 2, as every mvt4g command does for bad input."""
    print(f"tiny_wan.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (must not exist)")
    parser.add_argument("--scenes", type=int, default=2, help="clips in the dataset")
    parser.add_argument("--seed", type=int, default=0, help="weights and scenes seed")
    args = parser.parse_args()
    if args.out.exists():
        fail(f"{args.out}: exists (choose a new folder)")
    if args.scenes < 1:
        fail("--scenes must be at least 1")
    try:
        write_tiny_wan(args.out / "Wan2.1-T2V-tiny-Diffusers", seed=args.seed)
        torch.save(recammaster_state_dict(tiny_recammaster_source(args.seed + 5)), args.out / "recammaster.ckpt")
        root = write_dataset(args.out, args.scenes, args.seed)
        (args.out / "finetune.toml").write_text(FINETUNE.format(init=(args.out / "models" / "recammaster").resolve()))
    except (MVT4GError, OSError) as exc:  # nothing half-written is left
        shutil.rmtree(args.out, ignore_errors=True)
        fail(str(exc))
    print(f"wrote {args.out}: a tiny Wan folder, recammaster.ckpt, {args.scenes} captioned clips in {root}, finetune.toml")


if __name__ == "__main__":
    main()
