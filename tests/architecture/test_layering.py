"""The floor plan holds: domain packages never import the app, the bottom floor imports nothing of the
project, and no two modules import each other (directly or round a longer loop).

Read from the source with `ast` (every import, including those inside functions), so a lazy import
cannot hide an upward arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("geo", "address_registry", "grid_builder", "siting", "layers", "tiles", "residents", "onboarding", "gis_api")
DOMAIN = ("address_registry", "grid_builder", "siting", "layers", "tiles", "residents", "onboarding")
# who may import whom (the package itself is always allowed)
ALLOWED = {
    "geo": set(),
    "layers": {"geo"},
    "tiles": {"geo", "layers"},
    "address_registry": {"geo"},
    "grid_builder": {"geo"},
    "siting": {"geo", "layers"},
    "residents": {"geo"},
    "onboarding": {"geo"},
    "gis_api": set(PACKAGES),
}
WEB_FRAMEWORKS = ("fastapi", "starlette", "typer", "uvicorn")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic revisions are scripts run by Alembic, not part of the import graph
            out[_module_name(path)] = path
    return out


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    sources = _sources()
    g = nx.DiGraph()
    g.add_nodes_from(sources)
    for module, path in sources.items():
        for name in _imports(path, module, path.name == "__init__.py"):
            # resolve to the longest known module prefix ("pkg.mod.func" → "pkg.mod")
            target = name
            while target and target not in sources:
                target = target.rpartition(".")[0]
            if target and target != module:
                g.add_edge(module, target, raw=name)
            elif name.split(".")[0] in WEB_FRAMEWORKS:
                g.nodes[module].setdefault("frameworks", set()).add(name.split(".")[0])
    return g


def test_graph_sees_the_code(graph):
    # a broken walker would pass every rule below on an empty graph
    assert graph.number_of_nodes() > 80
    assert graph.has_edge("gis_api.app", "gis_api.errors")
    assert graph.has_edge("layers.store", "geo.cache")


def test_no_upward_imports(graph):
    bad = []
    for a, b in graph.edges:
        pa, pb = a.split(".")[0], b.split(".")[0]
        if pa != pb and pb not in ALLOWED[pa]:
            bad.append(f"{a} → {b}")
    assert not bad, "imports against the floor plan (docs/architecture.md):\n" + "\n".join(sorted(bad))


def test_domain_packages_know_no_web_framework(graph):
    bad = [f"{m}: {sorted(fw)}" for m, fw in graph.nodes(data="frameworks") if fw and m.split(".")[0] in (*DOMAIN, "geo")]
    assert not bad, "domain modules importing a web framework:\n" + "\n".join(bad)


def test_no_import_cycles(graph):
    # a package's __init__ re-exporting its own modules is a face, not a cycle: edges between a module
    # and its own enclosing packages are left out (Python runs those __init__s first anyway)
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((a, b) for a, b in graph.edges if not (b.startswith(a + ".") or a.startswith(b + ".")))
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c + [c[0]]) for c in cycles[:10])
