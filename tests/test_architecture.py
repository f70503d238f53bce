"""The layout keeps its rule (docs/architecture.md): every module imports only its own layer and the layers below
it, no import circle at all (lazy imports inside functions included), and no source file over 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

# Lowest first: a module may import modules of its own layer and of every layer before it.
LAYERS = [
    ("shared", ["pipeline.languages", "pipeline.references", "pipeline.storage", "pipeline.processes", "pipeline"]),
    ("ingest", ["pipeline.ingest"]),
    ("language rules", ["language_rules"]),
    ("translate", ["pipeline.translate"]),
    ("quality", ["pipeline.quality"]),
    ("assemble", ["pipeline.assemble"]),
    ("review", ["pipeline.review"]),
    ("probe", ["pipeline.probe"]),
    ("train", ["pipeline.train"]),
    ("release", ["pipeline.release"]),
    ("serve", ["pipeline.serve"]),
    ("annotation", ["annotation"]),
    ("flows", ["flows"]),
    ("command line", ["pipeline.cli"]),
]
PACKAGES = ("pipeline", "flows", "annotation", "language_rules")
MAX_LINES = 450


def modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    """The index of the layer whose longest prefix names ``module``."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return index


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules ``path`` imports, anywhere in the file (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in PACKAGES)
    return found


def test_every_import_goes_to_the_same_or_a_lower_layer():
    known = modules()
    upward = []
    for module, path in known.items():
        for target in imports(path, known):
            if layer(target) > layer(module):
                upward.append(f"{module} ({LAYERS[layer(module)][0]}) imports {target} ({LAYERS[layer(target)][0]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    known = modules()
    graph = {m: {t for t in imports(p, known) if t in known and t != m} for m, p in known.items()}
    # a module imports its package's __init__ implicitly: only explicit edges count here
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import circles: {cycles}"


def test_the_shared_modules_import_nothing_but_each_other():
    """The process helpers (which model import and asset serving use) and the other shared modules import no stage."""
    known = modules()
    shared = set(LAYERS[0][1]) - {"pipeline"}
    for module in shared:
        assert imports(known[module], known) <= shared, module


def test_no_source_file_over_450_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these files (at most {MAX_LINES} lines each): {long}"


def test_the_layers_match_the_architecture_document():
    """The numbered list of layers in docs/architecture.md names the same layers, in the same order."""
    import re

    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rule = text[text.index("## Which may import which") :]
    documented = [re.findall(r"`([\w.]+)`", line) for line in rule.splitlines() if re.match(r"\d+\. ", line)]
    assert [names[0] for names in documented] == [prefixes[0] for _, prefixes in LAYERS]
