"""The import rules of docs/architecture.md, checked on the source (AST, no imports run).

Every ``import`` counts, also one inside a function; only imports under
``if TYPE_CHECKING:`` (annotations) are exempt. Checked: layers import only downwards, no
cycle between components nor between modules, no private ``_name`` imported from another
module, no module over :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rlthf_plugin"

#: Components from the bottom up; a component imports only components of lower layers.
LAYERS = [
    ["errors", "secret", "pairs", "vocab", "batching", "data", "memory"],
    ["selection"],
    ["config_sections"],
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
#: The size goal: a module longer than this holds more than one concept.
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(path: Path) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement outside ``if TYPE_CHECKING:`` blocks, also inside functions,
    with the absolute name of the module it imports from (``from ..x import y``: ``rlthf_plugin.x``)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.append((node, ""))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                out.append((node, ".".join(base + ([node.module] if node.module else []))))
            else:
                out.append((node, node.module or ""))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import outside ``if TYPE_CHECKING:`` blocks."""
    out: list[tuple[str, int]] = []
    for node, name in _import_nodes(path):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        else:
            out.append((name, node.lineno))
            # ``from . import x`` imports the module x
            out.extend((f"{name}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*")
    return out


def _is_module(name: str) -> bool:
    """Whether ``name`` (``rlthf_plugin.store.ledger``) is a module or package of the project."""
    parts = name.split(".")
    if parts[0] != "rlthf_plugin":
        return False
    path = PACKAGE.parent.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _module_imports(path: Path) -> list[tuple[str, int]]:
    """(project module, line) each import of ``path`` runs: ``from .x import y`` runs x;
    ``from . import x`` runs the module x (the package itself only for names that are not
    modules); importing ``a.b.c`` also runs the packages ``a.b`` and ``a`` (unless they are
    above ``path`` itself: those are running already)."""
    module = _module_name(path)
    own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    out: list[tuple[str, int]] = []
    for node, name in _import_nodes(path):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            subs = [f"{name}.{a.name}" for a in node.names if _is_module(f"{name}.{a.name}")]
            names = subs + ([name] if len(subs) < len(node.names) else [])
        for full in names:
            parts = full.split(".")
            for k in range(1, len(parts) + 1):
                ran = ".".join(parts[:k])
                if (k == len(parts) or ran not in own) and ran != module and _is_module(ran):
                    out.append((ran, node.lineno))
    return out


def _module_cycles() -> list[list[str]]:
    """Every set of modules that import each other (strongly connected, more than one)."""
    graph = {_module_name(p): {m for m, _ in _module_imports(p)} for p in _sources()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def _private_imports() -> list[str]:
    """``file:line: name from module`` for each private name imported from another module of the project."""
    bad = []
    for path in _sources():
        for node, name in _import_nodes(path):
            if isinstance(node, ast.ImportFrom) and _is_module(name):
                bad.extend(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {alias.name} from {name}"
                           for alias in node.names
                           if alias.name.startswith("_") and not alias.name.startswith("__")
                           and not _is_module(f"{name}.{alias.name}"))
    return bad


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


def test_no_import_cycles_between_modules():
    """Not even through imports inside functions (which only hide a cycle until the call)."""
    assert _module_cycles() == []


def test_no_private_name_imported_from_another_module():
    assert _private_imports() == []


def test_no_module_over_the_size_goal():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these by concern (at most {MAX_LINES} lines)"


def test_the_module_rules_see_a_violation(tmp_path):
    """The checkers themselves: a cycle hidden in a function, a cycle through a package's
    ``__init__`` and a private import are found; ``from . import module`` is no cycle."""
    root = tmp_path / "rlthf_plugin"
    files = {
        "__init__.py": "",
        "loop/__init__.py": "",
        "loop/a.py": "from .b import run\n",
        "loop/b.py": "def run():\n    from . import a\n    from .c import _hidden\n",
        "loop/c.py": "_hidden = 1\n",
        "store/__init__.py": "from .d import x\n",
        "store/d.py": "x = 1\n",
        "store/e.py": "from . import d\n",
        "models/__init__.py": "from .f import y\n",
        "models/f.py": "y = 1\n",
        "models/g.py": "def h():\n    from ..models import f\n    from rlthf_plugin.models import y\n",
        "io/__init__.py": "from .p import z\n",
        "io/p.py": "z = 1\n\ndef k():\n    from ..io import z\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    global PACKAGE
    saved, PACKAGE = PACKAGE, root
    try:
        assert _module_cycles() == [["rlthf_plugin.io", "rlthf_plugin.io.p"],
                                    ["rlthf_plugin.loop.a", "rlthf_plugin.loop.b"]]
        assert _private_imports() == ["rlthf_plugin/loop/b.py:3: _hidden from rlthf_plugin.loop.c"]
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
