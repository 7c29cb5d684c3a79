"""Both packages are DAGs of small modules with public interfaces, and the harness is layered.

Every import of ``pcr_register.*`` (``pcr_conformance.*``) counts, at module level and inside functions (a function-level import
hides a cycle, it does not remove it); so do relative imports. No module is longer than MAX_LINES, and no
module imports another's ``_private`` name (``from pcr_register.x import _y`` or ``x._y`` on an imported
module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "pcr_register"
SRC = Path(__file__).resolve().parent.parent / "src"
SOURCE = SRC / PACKAGE
PACKAGES = ("pcr_register", "pcr_conformance")
MAX_LINES = 450

# pcr_conformance is layered (ARCHITECTURE.md): a module imports only modules of its own layer or a lower one.
#   0 contract           the specs and what is derived from them, identifiers, the harness' exceptions,
#                        where the packaged folders are
#   1 suite library      what a test uses: targets, clients, test data, builders, named expectations,
#                        the response contract, kits, the offline validator
#   2 pytest integration the plugin and its parts (options, selection, outcomes, Allure, summary.json)
#   3 commands           the pcr-conformance CLI and its commands
LAYER_NAMES = ("contract", "suite library", "pytest integration", "commands")
LAYERS: dict[str, int] = {
    "pcr_conformance": 0, "errors": 0, "specs": 0, "catalogue": 0, "identifiers": 0, "resources": 0,
    "readings": 0, "versions": 0,
    "contract": 1, "expect": 1, "calllog": 1, "client": 1, "cleanup": 1, "embedded": 1, "kits": 1,
    "messages": 1, "suite": 1, "target": 1, "testdata": 1, "validate": 1, "validate_model": 1,
    "validate_rules": 1, "validate_schema": 1, "attestation": 1, "bundle": 1, "bundle_verify": 1,
    "tlsprobe": 1, "embedded_forks": 1, "deadline": 1, "impl_profile": 1, "judging": 1, "validate_traffic": 1, "contract_diff": 1,
    "traffic": 1, "client_rules": 1, "scenario": 1, "proxy": 1, "upstream": 1, "load": 1, "load_results": 1,
    "load_users": 1, "service_levels": 1,
    "plugin": 2, "workers": 2, "load_session": 2, "plugin_state": 2, "expectations": 2, "profiles": 2, "outcomes": 2, "fixtures": 2,
    "session_report": 2, "kit_reports": 2, "proof": 2, "allure_support": 2, "summary": 2, "junit_support": 2, "evidence": 2,
    "cli": 3, "commands": 3, "collect": 3, "forked": 3, "report": 3, "allure_build": 3, "selftest": 3, "selftest_report": 3, "verdict_page": 3,
}


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


@pytest.mark.parametrize("package", PACKAGES)
def test_the_imports_form_no_cycle(package: str) -> None:
    graph = import_graph(SRC / package, package)
    assert len(graph) > 10, f"expected the modules under {SRC / package}"
    cycle = find_cycle({m: set(deps) for m, deps in graph.items()})
    assert cycle is None, f"import cycle in {package}: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_longer_than_the_limit(package: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    lengths = {str(f.relative_to(SRC)): len(f.read_text(encoding="utf-8").splitlines()) for f in files}
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by responsibility): {too_long}"


def layer_of(module: str) -> int:
    """The layer of a pcr_conformance module (its own entry, else its subpackage's)."""
    short = module.split(".", 1)[1] if "." in module else module
    top = short.split(".")[0]
    assert short in LAYERS or top in LAYERS, (
        f"{module} has no layer: add it to LAYERS in tests/test_structure.py and to ARCHITECTURE.md")
    return LAYERS.get(short, LAYERS.get(top, 0))


def upward_imports(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    return [f"{m} ({LAYER_NAMES[layer_of(m)]}) imports {d} ({LAYER_NAMES[layer_of(d)]})"
            for m, deps in sorted(graph.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]


def test_harness_layers_import_downwards_only() -> None:
    """contract -> suite library -> pytest integration -> commands: never an import of a higher layer."""
    upward = upward_imports(import_graph(SRC / "pcr_conformance", "pcr_conformance"))
    assert not upward, "; ".join(upward)


def private_uses(path: Path, modules: set[str], root: Path = SOURCE, package: str = PACKAGE) -> list[str]:
    """`from pcr_register.x import _y` and `x._y` where x is an imported module of the package."""
    uses = [f"{target}.{name}" for target, names in imports_of(path, modules, root, package).items()
            for name in names
            if name.startswith("_") and not name.startswith("__")]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> module
    importer = module_name(path, root, package)
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


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_uses_another_modules_private_names(package: str) -> None:
    root = SRC / package
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root, package) for f in files}
    offenders = {module_name(f, root, package): uses for f in files
                 if (uses := private_uses(f, modules, root, package))}
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


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    root = tmp_path / "pcr_conformance"
    root.mkdir()
    for name, text in {"__init__.py": "", "cli.py": "x = 1\n",
                       "specs.py": "def f():\n    from pcr_conformance import cli\n"}.items():
        (root / name).write_text(text, encoding="utf-8")
    graph = import_graph(root, "pcr_conformance")
    assert upward_imports(graph) == ["pcr_conformance.specs (contract) imports pcr_conformance.cli (commands)"]


def test_the_suites_fail_through_expect_never_a_bare_assert() -> None:
    """A suite failure names its requirement (pcr_conformance.expect); a bare assert would name none, and the
    suites run with --assert=plain (suites.ini), which would leave it without pytest's explanation too."""
    suites = SRC.parent / "suites"
    bare = [f"{path.relative_to(suites.parent)}:{node.lineno}"
            for path in sorted(suites.rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
            if isinstance(node, ast.Assert)]
    assert bare == [], f"use pcr_conformance.expect instead of assert: {bare}"
