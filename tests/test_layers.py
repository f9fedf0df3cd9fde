"""The import graph of isc_kit/ and bench/: no circles, and no module imports from a step after its own.

Every import counts (module level, inside functions, under ``TYPE_CHECKING``): a circle hidden in a
function is still a circle a reader has to hold in their head.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The steps of DESIGN.md's flow, left to right; a module may import from its own step or one to its left.
LAYERS = [
    (
        "base",
        (
            "errors",
            "config",
            "columns",
            "progress",
            "catalog",
            "_format",
            "_glob",
            "_md5x",
            "_proc",
            "results",
        ),
    ),
    ("source", ("source", "inputs", "outputs")),
    (
        "manifest",
        ("manifest", "pinned", "metadata", "input_checks", "records", "md5batch", "_hashing", "groundtruth"),
    ),
    ("select", ("select",)),
    (
        "fetch",
        (
            "transfer",
            "_s3sign",
            "local",
            "destination",
            "_join",
            "placement",
            "verify",
            "dvcstate",
            "dvcfiles",
        ),
    ),
    ("pin", ("pin", "pin_plan", "dvc_checkout", "pull_workspace", "pull_cachefill", "_dvcremote", "outs")),
    ("share", ("pull", "push", "share")),
    ("embedded S3", ("fixture", "s3server")),  # the synthetic mini-ISC and its server: beside the flow
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for pkg in ("isc_kit", "bench") for p in (ROOT / pkg).rglob("*.py")}


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    subs = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in MODULES]
    return subs if node.module is None or len(subs) == len(node.names) else [prefix, *subs]


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                deps.update(
                    t
                    for t in _targets(module, node, path.name == "__init__.py")
                    if t in MODULES and t != module
                )
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "isc_kit" or len(parts) < 2:
        return None
    return next((i for i, (_, names) in enumerate(LAYERS) if parts[1] in names), None)


def test_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_no_module_imports_from_a_later_step() -> None:
    upward = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"  # type: ignore[index]
        for m, deps in import_graph().items()
        for d in deps
        if _layer(m) is not None and _layer(d) is not None and _layer(d) > _layer(m)  # type: ignore[operator]
    ]
    assert upward == []


def test_the_check_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
