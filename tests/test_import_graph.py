"""The layout holds: `search/` imports form no cycle, and no backend imports another backend
(`search.backends.runtime` is their shared plumbing: backends may import it, it imports no backend).

Imports are read with `ast`, so ones inside functions (which hide a cycle until run time) count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SEARCH = Path(__file__).resolve().parent.parent / "search"
BACKENDS = "search.backends"
RUNTIME = "search.backends.runtime"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name (a package by its __init__.py)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `name` imports anywhere in its source, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from . import bm25` imports the module search.bm25; `from .bm25 import X` imports search.bm25.
            targets += [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    return {target for target in targets if target in known and target != name}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_files(root, package)
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph is acyclic."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph.get(module, ())):
            if target in on_path:
                return path[path.index(target):] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(SEARCH, "search")


def test_the_graph_sees_every_kind_of_import(graph):
    assert {f"{BACKENDS}.torch_reranker", f"{BACKENDS}.torch_encoder", f"{BACKENDS}.late_interaction",
            "search.inference", "search.models"} <= graph["search.loading"]
    assert "search.loading" in graph["search.cli"], "an import inside a function (cli._rerank) was missed"
    assert "search.analysis" in graph["search.pipeline"], "`from . import analysis` was missed"
    assert {"search.inference", "search.models"} <= graph[f"{BACKENDS}.late_interaction"]


def test_search_has_no_import_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in search/: {' -> '.join(cycle or [])}"


def is_runtime(name: str) -> bool:
    return name == RUNTIME or name.startswith(RUNTIME + ".")


def backend_of(module: str) -> str | None:
    """The backend `module` belongs to: search.backends.X for the module X or any module of the package X;
    None outside search.backends and for search.backends.runtime, the plumbing every backend may use."""
    if not module.startswith(BACKENDS + ".") or is_runtime(module):
        return None
    return ".".join(module.split(".")[:3])


def test_no_backend_imports_another_backend_or_the_loader(graph):
    modules = {name for name in graph if backend_of(name)}
    assert len({backend_of(name) for name in modules}) >= 3, modules
    assert f"{BACKENDS}.tei.client" in modules, "a backend split into a package is checked module by module"
    for module in sorted(modules):
        wrong = sorted(target for target in graph[module]
                       if (backend_of(target) and backend_of(target) != backend_of(module))
                       or target == "search.loading")
        assert not wrong, (f"{module} imports {', '.join(wrong)}; a backend may import only its own modules, "
                           "search.backends.runtime, search.inference, search.models and the like, and "
                           "search.loading builds and connects backends")


def test_the_runtime_imports_no_backend_nor_the_loader(graph):
    runtime = {name for name in graph if is_runtime(name)}
    assert {f"{RUNTIME}.onnx_export", f"{RUNTIME}.openvino_int8", f"{RUNTIME}.pairs"} <= runtime, runtime
    assert f"{RUNTIME}.onnx_export" in graph[f"{BACKENDS}.onnx_reranker"], "the backends' runtime imports were missed"
    for module in sorted(runtime):
        wrong = sorted(target for target in graph[module] if backend_of(target) or target == "search.loading")
        assert not wrong, f"{module} imports {', '.join(wrong)}; runtime/ is plumbing the backends share"


def test_backend_of_keeps_a_packages_modules_together():
    assert backend_of(f"{BACKENDS}.tei.client") == backend_of(f"{BACKENDS}.tei") == f"{BACKENDS}.tei"
    assert backend_of(f"{BACKENDS}.torch_encoder") == f"{BACKENDS}.torch_encoder"
    assert backend_of("search.loading") is None and backend_of(BACKENDS) is None
    assert backend_of(f"{RUNTIME}.onnx_export") is None, "runtime/ is no backend"


def test_a_cycle_through_a_function_level_import_is_found_and_named(tmp_path):
    # The layout this test guards against: rerank imported late_interaction inside a function.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rerank.py").write_text("def load():\n    from .late_interaction import Late\n    return Late()\n")
    (package / "late_interaction.py").write_text("from .rerank import LOCK\n\nclass Late: ...\n")
    (package / "models.py").write_text("import pkg.rerank\nfrom pkg import late_interaction\n")

    graph = import_graph(package, "pkg")

    assert graph == {"pkg": set(), "pkg.rerank": {"pkg.late_interaction"}, "pkg.late_interaction": {"pkg.rerank"},
                     "pkg.models": {"pkg.rerank", "pkg.late_interaction"}}
    assert find_cycle(graph) == ["pkg.late_interaction", "pkg.rerank", "pkg.late_interaction"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
