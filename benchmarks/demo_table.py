"""The README's demo table, generated from a demo run (never typed in).

    mvt4g demo --out mvt4g_demo                       # the default run (.ci/run runs it too)
    python benchmarks/demo_table.py mvt4g_demo        # print the table of that run
    python benchmarks/demo_table.py mvt4g_demo --write

``--write`` stores the run's evaluation record in ``benchmarks/results/demo_default.json`` and
rewrites the block between the ``demo-table`` markers of README.md with the table
``mvt4g demo`` put at the top of its report. ``tests/test_readme.py`` checks that the README's
block is the table of that stored record, so the README shows what a default run printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mvt4g.demo.report import results_table  # noqa: E402

RECORD = REPO / "benchmarks" / "results" / "demo_default.json"
README = REPO / "README.md"
START, END = "<!-- demo-table:start -->", "<!-- demo-table:end -->"


def readme_block(record: dict) -> str:
    """The README's block: the report's results table (its heading dropped) and the run's compute."""
    lines = results_table(record["evaluate"])[2:]
    c = record["compute"]
    lines += [f"Fine-tuning: {c['steps']} steps each from `{c['base']}`, seed {c['seed']}, {c['sample_steps']} "
              f"sampling steps; this run took {c['seconds'] / 60:.1f} min on {c['machine']}."]  # fmt: skip
    return "\n".join(lines).strip() + "\n"


def record_of(run: Path) -> dict:
    """What the README needs from a demo folder: the evaluation summary and the run's compute."""
    stages = run / "stages"
    read = lambda name: json.loads((stages / f"{name}.json").read_text())  # noqa: E731
    demo = json.loads((run / "demo.json").read_text())
    settings = demo["settings"]
    seconds = sum(read(n)["seconds"] for n in ("data", "tracks", "features", "finetune_method", "finetune_baseline",
                                               "generate", "evaluate", "analyze"))  # fmt: skip
    import os
    import platform

    return {
        "evaluate": read("evaluate")["summary"],
        "compute": {"steps": read("finetune_method")["summary"]["planned_steps"], "base": settings["base"],
                    "seed": settings["seed"], "sample_steps": settings["sample_steps"], "seconds": seconds,
                    "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), shared"},
    }  # fmt: skip


def replace_block(text: str, block: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a finished demo folder")
    p.add_argument("--write", action="store_true", help="store the record and rewrite README.md's block")
    args = p.parse_args()
    missing = [n for n in ("demo.json", "stages/evaluate.json", "stages/finetune_method.json") if not (args.run / n).is_file()]
    if missing:
        p.exit(2, f"demo_table.py: {args.run} is not a finished demo folder (no {missing[0]})\n")
    record = record_of(args.run)
    block = readme_block(record)
    if args.write:
        RECORD.write_text(json.dumps(record, indent=1) + "\n")
        README.write_text(replace_block(README.read_text(), block))
    print(block, end="")


if __name__ == "__main__":
    main()
