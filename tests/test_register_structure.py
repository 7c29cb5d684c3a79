"""The reference register's modules form a DAG of small modules with public interfaces.

Every import of ``pcr_register.*`` counts, at module level and inside functions (a function-level import
hides a cycle, it does not remove it); so do relative imports. No module is longer than MAX_LINES, and no
module imports another's ``_private`` name (``from pcr_register.x import _y`` or ``x._y`` on an imported
module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "pcr_register"
SOURCE = Path(__file__).resolve().parent.parent / "src" / PACKAGE
MAX_LINES = 450


def module_name(path: Path, root: Path = SOURCE, package: str = PACKAGE) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module name an ImportFrom refers to (relative imports resolved against the importer)."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(path: Path, modules: set[str], root: Path = SOURCE, package: str = PACKAGE) -> dict[str, list[str]]:
    """{imported module of the package: [names imported from it]} for one file, at any depth of the tree.
    `from pcr_register import x` counts as an import of pcr_register.x when that is a module."""
    importer = module_name(path, root, package)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    found.setdefault(alias.name, [])
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, importer, path.name == "__init__.py")
            if not (target == package or target.startswith(package + ".")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    found.setdefault(sub, [])
                else:
                    found.setdefault(target, []).append(alias.name)
    found.pop(importer, None)
    return found


def import_graph(root: Path = SOURCE, package: str = PACKAGE) -> dict[str, dict[str, list[str]]]:
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root, package) for f in files}
    return {module_name(f, root, package): imports_of(f, modules, root, package) for f in files}


def find_cycle(graph: dict[str, set[str]] | dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_register_imports_form_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 10, f"expected the register's modules under {SOURCE}"
    cycle = find_cycle({m: set(deps) for m, deps in graph.items()})
    assert cycle is None, "import cycle in the register: " + " -> ".join(cycle or [])


def test_no_register_module_is_longer_than_the_limit() -> None:
    lengths = {f.name: len(f.read_text(encoding="utf-8").splitlines()) for f in sorted(SOURCE.rglob("*.py"))}
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by responsibility): {too_long}"


def private_uses(path: Path, modules: set[str], root: Path = SOURCE) -> list[str]:
    """`from pcr_register.x import _y` and `x._y` where x is an imported register module."""
    uses = [f"{target}.{name}" for target, names in imports_of(path, modules, root).items() for name in names
            if name.startswith("_") and not name.startswith("__")]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> module
    importer = module_name(path, root)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(node, importer, path.name == "__init__.py")
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            uses.append(f"{aliases[node.value.id]}.{node.attr}")
    return sorted(set(uses))


def test_no_register_module_uses_another_modules_private_names() -> None:
    files = sorted(SOURCE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    offenders = {module_name(f): uses for f in files if (uses := private_uses(f, modules))}
    assert not offenders, f"private names used across modules (make them public or move them): {offenders}"


# -- the checks can fail ---------------------------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("how", ["module level", "function level", "relative", "from package"])
def test_a_cycle_is_found_however_it_is_imported(tmp_path: Path, how: str) -> None:
    second = {
        "module level": "from pcr_register.a import x\n",
        "function level": "def f():\n    from pcr_register.a import x\n    return x\n",
        "relative": "from .a import x\n",
        "from package": "from pcr_register import a\n",
    }[how]
    root = _package(tmp_path, {"__init__.py": "", "a.py": "from pcr_register.b import y\nx = 1\n",
                               "b.py": second + "y = 2\n", "c.py": "import pcr_register.a\n"})
    graph = {m: set(deps) for m, deps in import_graph(root).items()}
    assert find_cycle(graph) == ["pcr_register.a", "pcr_register.b", "pcr_register.a"]


def test_a_dag_has_no_cycle(tmp_path: Path) -> None:
    root = _package(tmp_path, {"__init__.py": "", "a.py": "from pcr_register import b, c\n",
                               "b.py": "from pcr_register.c import z\n", "c.py": "z = 1\n"})
    assert find_cycle({m: set(deps) for m, deps in import_graph(root).items()}) is None


def test_private_imports_are_found(tmp_path: Path) -> None:
    root = _package(tmp_path, {"__init__.py": "", "a.py": "_hidden = 1\n",
                               "b.py": "from pcr_register.a import _hidden\n",
                               "c.py": "from pcr_register import a\nprint(a._hidden, a.__name__)\n"})
    modules = {module_name(f, root) for f in root.rglob("*.py")}
    assert private_uses(root / "b.py", modules, root) == ["pcr_register.a._hidden"]
    assert private_uses(root / "c.py", modules, root) == ["pcr_register.a._hidden"]
