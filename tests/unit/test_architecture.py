"""The import rules of docs/architecture.md, checked on the source (AST, no imports run).

Every ``import`` counts, also one inside a function; only imports under
``if TYPE_CHECKING:`` (annotations) are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rlthf_plugin"

#: Components from the bottom up; a component imports only components of lower layers.
LAYERS = [
    ["errors", "secret", "pairs", "vocab", "batching", "data"],
    ["selection"],
    ["config"],
    ["store"],
    ["workspace", "io"],
    ["models", "backends"],
    ["loop"],
    ["service", "report"],
    ["cli"],
]
LAYER = {component: i for i, layer in enumerate(LAYERS) for component in layer}
#: The package's own entry points sit above every layer.
TOP = {"__init__", "__main__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import outside ``if TYPE_CHECKING:`` blocks."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, node.lineno))
            # ``from . import x`` imports the module x
            out.extend((f"{name}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return out


def _component(module: str) -> str | None:
    """``rlthf_plugin.store.ledger`` -> ``store``; None outside the package."""
    parts = module.split(".")
    if parts[0] != "rlthf_plugin":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _edges() -> list[tuple[str, str, str, int, str]]:
    """(from component, to component, file, line, imported module) for project imports."""
    edges = []
    for path in _sources():
        src = _component(_module_name(path)) or "__init__"
        if path.parent == PACKAGE:
            src = path.stem
        for name, line in _imports(path):
            dst = _component(name)
            # None: another package; "__init__": ``from rlthf_plugin import X`` names X itself below;
            # not in LAYER: an attribute of the package root, not a module.
            if dst is None or dst == "__init__" or dst not in LAYER:
                continue
            edges.append((src, dst, str(path.relative_to(PACKAGE.parent)), line, name))
    return edges


def test_every_component_has_a_layer():
    components = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir()
                                                          if p.is_dir() and (p / "__init__.py").exists()}
    assert components - TOP - set(LAYER) == set(), "add the new module or package to LAYERS (and docs/architecture.md)"


def test_layers_import_only_downwards():
    bad = [f"{where}:{line}: {src} imports {name} ({dst})"
           for src, dst, where, line, name in _edges()
           if src not in TOP and src != dst and LAYER[dst] >= LAYER[src]]
    assert bad == []


def test_no_import_cycles_between_components():
    graph: dict[str, set[str]] = {}
    for src, dst, *_ in _edges():
        if src != dst and src not in TOP:
            graph.setdefault(src, set()).add(dst)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen)):
                return True
        return False

    assert [c for c in graph if reaches(c, c, set())] == []


@pytest.mark.parametrize("component, forbidden", [
    ("models", {"store", "workspace", "loop", "backends"}),
    ("backends", {"config", "store", "workspace", "loop"}),
])
def test_forbidden_imports(component, forbidden):
    bad = [f"{where}:{line}: imports {name}" for src, dst, where, line, name in _edges()
           if src == component and dst in forbidden]
    assert bad == []


def test_selection_imports_only_itself():
    bad = [f"{where}:{line}: imports {name}" for src, dst, where, line, name in _edges()
           if src == "selection" and dst != "selection"]
    assert bad == []


def test_sql_only_in_store():
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}"
           for path in _sources() if _component(_module_name(path)) != "store"
           for name, line in _imports(path) if name.split(".")[0] == "sqlalchemy"]
    assert bad == []


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself: an upward import is found (so the tests above can fail)."""
    bad = tmp_path / "rlthf_plugin" / "store" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from ..loop import iteration\n    import sqlalchemy\n", encoding="utf-8")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "rlthf_plugin"
    try:
        assert _imports(bad) == [("rlthf_plugin.loop", 2), ("rlthf_plugin.loop.iteration", 2), ("sqlalchemy", 3)]
        assert {(s, d) for s, d, *_ in _edges()} == {("store", "loop")}
    finally:
        PACKAGE = saved


def test_readme_and_docs_name_every_component():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):].split("```")[1]
    docs = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for component in LAYER:
        shown = f"{component}/" if (PACKAGE / component).is_dir() else f"{component}.py"
        assert shown in layout, f"README layout lacks {shown}"
        assert shown in docs, f"docs/architecture.md lacks {shown}"
