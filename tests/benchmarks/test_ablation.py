"""``benchmarks/ablation.py`` (the paper's Tables 3 and 4 at our scale) at a tiny size: the
table and JSON structure, the Table 4 row that is the Table 3 run itself, and resuming."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERDICTS = {"better", "worse", "no difference", "not enough seeds"}


def load_ablation():
    spec = importlib.util.spec_from_file_location("ablation_benchmark", ROOT / "benchmarks" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def tiny_base(root: Path) -> Path:
    """A random ``tiny`` model (3 blocks, tap layer 1) saved like a trained base."""
    import torch

    from mvt4g.model.checkpoint import save_pretrained
    from mvt4g.model.config import preset
    from mvt4g.model.mvt4g_model import MVT4GModel

    torch.manual_seed(0)
    save_pretrained(MVT4GModel(preset("tiny")), root / "base")
    return root / "base"


def run(module, out: Path, base: Path) -> dict:
    argv = ["--out", str(out), "--base", str(base), "--steps", "2", "--seeds", "0", "1", "--configs", "i_plucker",
            "iv_both", "--layers", "1", "--size", "16x16", "--frames", "5", "--train-scenes", "2",
            "--heldout-scenes", "1", "--sample-steps", "2", "--threads", "1", "--json"]  # fmt: skip
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        assert module.main(argv) == 0, err.getvalue()
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study run twice in one folder; then again after one run's evaluation was deleted."""
    module = load_ablation()
    root = tmp_path_factory.mktemp("ablation")
    base = tiny_base(root)
    out = root / "study"
    first, second = run(module, out, base), run(module, out, base)
    (out / "runs" / "nohead-nocorr-layer1" / "seed1.eval.json").unlink()
    third = run(module, out, base)
    return module, out, first, second, third


@pytest.mark.slow
def test_table_structure(study):
    module, out, first, _, _ = study
    table = {e["config"]: e for e in first["table"]}
    assert list(table) == ["i_plucker", "iv_both", "iv_layer1"]
    # Table 4's row at the base's own tap layer is the iv_both run, trained once.
    assert table["iv_layer1"]["run_id"] == table["iv_both"]["run_id"] == "head-corr-layer1"
    assert first["reused"]["train"] == ["iv_layer1/seed0", "iv_layer1/seed1"]
    for entry in table.values():
        assert entry["seeds"] == [0, 1]
        assert entry["compute"]["steps"] == 2 and entry["compute"]["samples"] == 2 * first["batch_size"]
        for key, _, _ in module.METRICS:
            stat = entry["metrics"][key]
            assert set(stat) == {"mean", "sd", "n", "per_seed"} and len(stat["per_seed"]) == 2
        assert entry["metrics"]["psnr"]["n"] == 2 and entry["metrics"]["tap_pck"]["n"] == 2
    # Only configs with a head have a head track error; (i) has none to compare with.
    assert table["i_plucker"]["metrics"]["head_track_px"]["mean"] is None
    assert table["iv_both"]["metrics"]["head_track_px"]["mean"] > 0
    assert table["iv_both"]["vs_i"]["head_track_px"]["verdict"].startswith("n/a")
    assert table["i_plucker"]["vs_i"] == {}
    for key in ("psnr", "ssim", "psnr_covisible_static", "tap_pck"):
        d = table["iv_both"]["vs_i"][key]
        assert d["verdict"] in VERDICTS and d["n"] == 2
    assert first["anchors"]["copy"]["means"]["query_px"] > 0
    assert first["items_per_run"] == 3 + 2  # cam02..cam04 and the two preset trajectories


@pytest.mark.slow
def test_outputs_written(study):
    _, out, _, _, last = study
    report = (out / "report.md").read_text()
    for text in ("## Results", "## Each config minus (i_plucker)", "## Compute", "| iv_layer1 |", "(ablation.png)"):
        assert text in report, text
    assert (out / "ablation.png").stat().st_size > 5_000
    saved = json.loads((out / "results.json").read_text())
    assert saved["table"] == last["table"]  # the last run wrote them


@pytest.mark.slow
def test_second_run_reuses_everything(study):
    _, _, first, second, third = study
    runs = [f"{c}/seed{s}" for c in ("i_plucker", "iv_both", "iv_layer1") for s in (0, 1)]
    assert second["reused"] == {"data": True, "train": runs, "eval": runs, "anchors": True}
    assert second["table"] == first["table"]
    # A deleted evaluation is redone, alone, from the trained run, with the same numbers.
    assert third["reused"]["train"] == runs
    assert third["reused"]["eval"] == [r for r in runs if r != "i_plucker/seed1"]
    for a, b in zip(first["table"], third["table"]):
        assert a["metrics"] == b["metrics"]


def test_rows_and_verdicts():
    module = load_ablation()
    rows = module.plan_rows(["i_plucker", "iii_track"], [0, 3, 5], tap=3, num_layers=6)
    assert [r.name for r in rows] == ["i_plucker", "iii_track", "iv_layer0", "iv_layer3", "iv_layer5"]
    assert rows[3].run_id == module.Row("iv_both", 3, True, True, 3).run_id
    with pytest.raises(SystemExit):
        module.plan_rows([], [6], tap=3, num_layers=6)
    # Paired over seeds; an error metric that goes down is "better".
    runs = {("i_plucker", s): {"eval": {"means": {"psnr": 10.0 + s, "rot_err": 1.0 + s}}} for s in range(3)}
    done = {s: {"eval": {"means": {"psnr": 11.0 + s + 0.01 * s, "rot_err": 0.5 + s}}} for s in range(3)}
    assert module.versus(done, runs, "i_plucker", [0, 1, 2], "psnr", 1)["verdict"] == "better"
    assert module.versus(done, runs, "i_plucker", [0, 1, 2], "rot_err", -1)["verdict"] == "better"
    same = {s: runs[("i_plucker", s)] for s in range(3)}
    assert module.versus(same, runs, "i_plucker", [0, 1, 2], "psnr", 1)["verdict"] == "no difference"
    noisy = {s: {"eval": {"means": {"psnr": 10.0 + s + (1.0 if s == 1 else -0.5)}}} for s in range(3)}
    assert module.versus(noisy, runs, "i_plucker", [0, 1, 2], "psnr", 1)["verdict"] == "no difference"


@pytest.mark.parametrize(("args", "needle"), [(["--base", "/nope"], "/nope"), (["--steps", "0"], "--steps"),
                                              (["--out", "/proc/mvt4g-no/such"], "cannot write in")])  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, needle):
    study = load_ablation()
    out = tmp_path / "study"
    code = study.main(["--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err
    assert not out.exists()
