#!/usr/bin/env bash
# The whole mvt4g job as a shell pipeline, for scripts and schedulers:
#
#   synth -> tracks -> plucker -> prepare -> train -> generate -> eval
#
# Renders SCENES synthetic multi-view scenes, makes sure each has multi-view tracks and
# Plücker ray maps, caches the training features, trains on every scene but the last, then
# generates a novel view of the last (held-out) scene's reference video along TRAJ and scores
# the model on that scene's other views against their exact renders.
#
# Steps talk to each other through `--json` (parsed with Python, no jq): the clips synth
# wrote, the model directory train reports and the videos generate and eval wrote.
#
# Run (from any folder; a few minutes on a CPU with the defaults):
#
#   examples/pipeline.sh
#   OUT=runs/demo SCENES=8 STEPS=300 TRAJ=arc-left,zoom-in examples/pipeline.sh
#   OUT=/tmp/t SCENES=3 FRAMES=5 SIZE=16x16 STEPS=4 GEN_STEPS=2 examples/pipeline.sh   # half a minute
#
# Settings (environment variables, defaults in brackets):
#   OUT        output folder [mvt4g_pipeline]
#   SCENES     synthetic scenes, >= 2; the last one is held out [4]
#   VIEWS      cameras per scene (cam01 is the reference) [2]
#   FRAMES     frames per video, 4k+1 [17]
#   SIZE       HxW of the videos, even [32x32]
#   POINTS     exact multi-view tracks per scene [256]
#   SEED       scene seed [0]
#   CONFIG     training config: an example by name or a TOML file [tiny]
#   STEPS      training steps [100]
#   GEN_STEPS  denoising steps of generate and eval [4]
#   TRAJ       trajectories for generate: presets or files, comma-separated [arc-left]
#   METRICS    eval metric groups [psnr,ssim]
#   PYTHON     the interpreter that reads the --json outputs [python3]; mvt4g must be on PATH
#
# Writes, under OUT:
#   synth/scene_NNNN/   clips (videos, cameras, depth, masks, tracks.npz, plucker/, cache/)
#   run/                training run (config.toml, metrics.jsonl, checkpoints/, model/)
#   generate/cam01/TRAJ.mp4 (+ .side-by-side.mp4, .trajectory.json, .meta.json)
#   eval/videos/SCENE/VIEW.mp4, eval/report.md
#   logs/STEP.json      each step's --json output (logs/eval.json holds every score)
#
# Re-running with the same settings reuses finished work: synth keeps the scenes it wrote
# (--skip-existing), tracks and plucker keep current files, prepare reuses cached features, train
# continues from its latest checkpoint (--resume; nothing to do when it is at STEPS), and
# generate and eval are skipped while their outputs are newer than the model's weights.
# Raise STEPS and rerun to train longer: generate and eval then run again.
#
# Exit status: the failing step's own. 2 = bad input (fix the settings; retrying will not
# help), 1 = the work failed, 130/143 = interrupted (Ctrl-C / SIGTERM; train saves a checkpoint,
# so a rerun resumes). Schedulers should signal the whole process group, as they usually do.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-mvt4g_pipeline}"
SCENES="${SCENES:-4}"
VIEWS="${VIEWS:-2}"
FRAMES="${FRAMES:-17}"
SIZE="${SIZE:-32x32}"
POINTS="${POINTS:-256}"
SEED="${SEED:-0}"
CONFIG="${CONFIG:-tiny}"
STEPS="${STEPS:-100}"
GEN_STEPS="${GEN_STEPS:-4}"
TRAJ="${TRAJ:-arc-left}"
METRICS="${METRICS:-psnr,ssim}"
PYTHON="${PYTHON:-python3}"

say() { echo "pipeline: $*" >&2; }

# Ctrl-C / SIGTERM reach the running step too (same process group): it stops cleanly (train
# saves a checkpoint) and run_step reports it. The traps only make this shell wait for that.
INTERRUPTED=0
trap 'INTERRUPTED=130' INT
trap 'INTERRUPTED=143' TERM

# run_step NAME CMD...: run one mvt4g command with its --json stdout saved to logs/NAME.json
# (written only on success, so a failed step never leaves a log that looks finished).
run_step() {
    local name=$1 rc=0
    shift
    say "step $name: $*"
    "$@" >"$LOGS/$name.json.part" || rc=$?
    if ((rc == 0)); then
        mv "$LOGS/$name.json.part" "$LOGS/$name.json"
        printf '%s\n' "$*" >"$LOGS/$name.args"
        ((INTERRUPTED == 0)) && return 0
        say "interrupted after step '$name' finished; run the pipeline again to go on"
        exit "$INTERRUPTED"
    fi
    rm -f "$LOGS/$name.json.part" "$LOGS/$name.json" "$LOGS/$name.args"
    case $rc in
        2) say "step '$name' failed (exit 2): bad input or usage, see the error above; fix the settings, retrying will not help" ;;
        130 | 143) say "step '$name' was interrupted (exit $rc); run the pipeline again to resume (train continues from its checkpoint)" ;;
        *) say "step '$name' failed (exit $rc): the work failed, see the error above" ;;
    esac
    exit "$rc"
}

# json NAME CODE: run Python CODE with d = logs/NAME.json (read from stdin).
json() { "$PYTHON" -c "import json, sys; d = json.load(sys.stdin); $2" <"$LOGS/$1.json"; }

# reusable NAME NEWER_THAN CMD...: whether logs/NAME.json came from the same command and is
# newer than the file NEWER_THAN (the model weights it was made from).
reusable() {
    local name=$1 newer_than=$2
    shift 2
    [[ -f $LOGS/$name.json && -f $LOGS/$name.args && $LOGS/$name.json -nt $newer_than ]] &&
        [[ "$(cat "$LOGS/$name.args")" == "$*" ]]
}

if ! [[ $SCENES =~ ^[0-9]+$ ]] || ((SCENES < 2)); then
    say "SCENES must be a whole number >= 2 (the last scene is held out), got '$SCENES'"
    exit 2
fi
# Checked now rather than after the scenes are rendered: a TOML file, or an example config's name.
names="$("$PYTHON" -c 'from mvt4g.train.config import config_names; print(" ".join(config_names()))' 2>/dev/null)"
if [[ ! -f $CONFIG && " $names " != *" $CONFIG "* ]]; then
    say "CONFIG: no such training config: $CONFIG (a TOML file, or an example config by name: ${names// /, })"
    exit 2
fi
command -v mvt4g >/dev/null || { say "mvt4g is not on PATH (activate its virtual environment)"; exit 2; }
mkdir -p "$OUT"
LOGS="$OUT/logs"
mkdir -p "$LOGS"

# 1. synth: the same settings give the same scenes, so --skip-existing keeps finished ones (and
#    refuses, exit 2, scenes an earlier run wrote with other settings).
run_step synth mvt4g synth --out "$OUT/synth" --scenes "$SCENES" --views "$VIEWS" --frames "$FRAMES" \
    --size "$SIZE" --points "$POINTS" --seed "$SEED" --skip-existing --json
json synth 'print("pipeline: synth: {} scenes, {} kept from an earlier run".format(len(d["scenes"]), len(d["skipped"])))' >&2
CLIPS=()
while IFS= read -r clip; do CLIPS+=("$clip"); done < <(json synth 'print("\n".join(d["scenes"]))')
TRAIN_CLIPS=("${CLIPS[@]:0:${#CLIPS[@]}-1}")
HELD_OUT="${CLIPS[${#CLIPS[@]}-1]}"
read -r HEIGHT WIDTH < <(json synth 'print(*d["size"])')

# 2. tracks: synth clips carry exact tracks (kept); other clips get geometry or flow tracks.
run_step tracks mvt4g tracks compute "${CLIPS[@]}" --json
json tracks 'print("pipeline: tracks:", ", ".join(c["clip"] + " " + c["status"] for c in d["clips"]))' >&2

# 3. plucker: per-view ray maps relative to cam01; current files are kept. (These are for your
#    own tools: train caches its own (reference, target) pair maps in CLIP/cache.)
run_step plucker mvt4g plucker "${CLIPS[@]}" --relative-to cam01 --json
json plucker 'import collections; print("pipeline: plucker:", dict(collections.Counter(o["status"] for o in d["outputs"])))' >&2

# 4. prepare + 5. train on every clip but the held-out one, at the clips' size.
data=()
for clip in "${TRAIN_CLIPS[@]}"; do data+=(--data "$clip"); done
sets=(--set "data.frames=$FRAMES" --set "data.height=$HEIGHT" --set "data.width=$WIDTH")
run_step prepare mvt4g train prepare --config "$CONFIG" "${data[@]}" "${sets[@]}" --json
json prepare 'print("pipeline: prepare: {items} features, {hits} cached, {computed} computed".format(**d))' >&2
# --resume starts a new run when OUT/run holds none, and does nothing when it is at STEPS.
run_step train mvt4g train --config "$CONFIG" "${data[@]}" "${sets[@]}" --out "$OUT/run" --steps "$STEPS" --resume --json
json train 'print("pipeline: train: steps {} -> {}, final loss {:.4f}".format(d["start_step"], d["step"], d["final"]["loss"]))' >&2
MODEL_DIR="$(json train 'print(d["model_dir"])')"
WEIGHTS="$MODEL_DIR/model.safetensors"

# 6. generate: a novel view of the held-out reference, with its real cameras.
generate=(mvt4g generate "$HELD_OUT/videos/cam01.mp4" --ref-cameras "$HELD_OUT/cameras/cameras.json:cam01"
    --traj "$TRAJ" --model "$MODEL_DIR" --steps "$GEN_STEPS" --frames "$FRAMES" --out-dir "$OUT/generate"
    --side-by-side --overwrite --json)
if reusable generate "$WEIGHTS" "${generate[@]}" && json generate 'import os; sys.exit(not all(os.path.isfile(i["outputs"]["video"]) for i in d["items"]))'; then
    say "step generate: reusing videos newer than $WEIGHTS"
else
    run_step generate "${generate[@]}"
fi

# 7. eval: the model on the held-out scene's other views, against their exact renders.
evaluate=(mvt4g eval --bench synthetic --data-root "$OUT/synth" --sequences "$(basename "$HELD_OUT")"
    --model "$MODEL_DIR" --steps "$GEN_STEPS" --metrics "$METRICS" --save-videos "$OUT/eval/videos"
    --report "$OUT/eval/report.md" --overwrite --json)
mkdir -p "$OUT/eval"
if reusable eval "$WEIGHTS" "${evaluate[@]}" && [[ -f $OUT/eval/report.md ]]; then
    say "step eval: reusing scores newer than $WEIGHTS"
else
    run_step eval "${evaluate[@]}"
fi

# Summary on stdout: what was made and the held-out scores.
json generate 'print(*("generated: " + i["outputs"]["video"] for i in d["items"]), sep="\n")'
json eval 'print(*("eval: {} = {}".format(*kv) for kv in d["summary"]["overall"]["metrics"].items()), sep="\n")'
echo "model: $MODEL_DIR"
echo "report: $OUT/eval/report.md"
