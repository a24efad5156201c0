"""The package's shape, read from its imports with ``ast`` (docs/ARCHITECTURE.md, "Layers").

Layers, bottom to top; a module may import its own package and any lower layer, never a
package of its own layer or above:

    errors < fs, memory, threads, workers < camera < io < tracks, model < synth, train, sample
        < eval, analysis < demo < cli < __main__

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a loop
dodged by a late import is still a loop. The one allowed loop is the CLI's completion
generator, which imports the CLI to read its options and is run by a CLI command.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mvt4g"

LAYERS: list[set[str]] = [
    {"errors", "_lazy", "__init__"},
    {"fs", "memory", "threads", "workers"},
    {"camera"},
    {"io"},
    {"tracks", "model"},
    {"synth", "train", "sample"},
    {"eval", "analysis"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ALLOWED_LOOP_MEMBERS = {"mvt4g.cli.completion_gen"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """mvt4g modules that ``name`` imports anywhere in its body, resolved to real modules."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when there is one.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] == "mvt4g" and t != name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {t for t in imported_modules(name, path, known) if t in known} for name, path in mods.items()}


def layer_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in RANK:
        raise AssertionError(f"{module}: package {top!r} is in no layer; add it to LAYERS and docs/ARCHITECTURE.md")
    return top, RANK[top]


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with more than one module are loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_every_package_has_a_layer():
    for module in modules():
        layer_of(module)


def test_imports_run_down_the_layers():
    wrong = []
    for module, targets in graph().items():
        top, rank = layer_of(module)
        for target in sorted(targets):
            other, other_rank = layer_of(target)
            if other != top and other_rank >= rank:
                wrong.append(f"{module} -> {target} ({top} is layer {rank}, {other} is layer {other_rank})")
    assert not wrong, "imports running up or across a layer:\n" + "\n".join(wrong)


def test_no_import_loops():
    loops = [c for c in strongly_connected(graph()) if not ALLOWED_LOOP_MEMBERS & set(c)]
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(c) for c in loops)


@pytest.mark.parametrize(
    "g, loops",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
    ],
)
def test_loop_finder_on_known_graphs(g, loops):
    assert sorted(strongly_connected(g)) == loops


def test_the_checker_sees_a_late_import(tmp_path):
    """A loop dodged by an import inside a function is found (the reason every import counts)."""
    source = "def f():\n    from mvt4g.tracks import geometry\n    return geometry\n"
    path = tmp_path / "moving.py"
    path.write_text(source)
    known = {"mvt4g.tracks", "mvt4g.tracks.geometry", "mvt4g.tracks.moving"}
    assert imported_modules("mvt4g.tracks.moving", path, known) == {"mvt4g.tracks.geometry"}
