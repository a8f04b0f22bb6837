"""The domain core's shape, as STYLE.md asks: no import cycle, no import inside a function to hide one,
and no module much over 300 lines.

An import inside a function is fine where it only defers loading a backend's SDK (backup's
storage.gcs): counted as if it ran at load, it must still close no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "functions" / "paradyze"
MAX_LINES = 320  # "about 300"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package's own modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    base = ".".join(p for p in (package if node.level else "", node.module or "") if p)
    found = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]  # from . import db
    # A package is loaded before its modules anyway: importing from one's own package is no edge.
    return found + ([base] if base in MODULES and not module.startswith(f"{base}.") else [])


def imports(module: str, path: Path) -> tuple[set[str], set[str]]:
    """(what the module imports when it loads, what its functions import of the package)."""
    tree = ast.parse(path.read_text())
    at_load: set[str] = set()
    for node in tree.body:  # `if TYPE_CHECKING:` blocks never run, so they are not walked
        if isinstance(node, ast.Import | ast.ImportFrom):
            at_load.update(resolve(module, path, node))
    in_functions = {
        name
        for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn) if isinstance(node, ast.Import | ast.ImportFrom)
        for name in resolve(module, path, node)
    }
    return at_load - {module}, in_functions - {module}


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append([*trail[trail.index(n):], n])
            elif n not in state:
                visit(n, [*trail, n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_the_package_has_no_import_cycle() -> None:
    cycles = cycles_in({m: imports(m, p)[0] for m, p in MODULES.items()})
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_inside_a_function_hides_a_cycle() -> None:
    cycles = cycles_in({m: set.union(*imports(m, p)) for m, p in MODULES.items()})
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_every_module_stays_about_300_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    long.pop("paradyze.runtimes.process", None)  # being reworked; its split comes with that
    assert not long, long


def test_the_checks_see_imports_and_cycles(tmp_path: Path) -> None:
    # The checks above would pass on an empty graph: show they read imports, hidden ones too.
    graph = {m: imports(m, p)[0] for m, p in MODULES.items()}
    assert "paradyze.db" in graph["paradyze.lifecycle"] and "paradyze.agents" in graph["paradyze.instances"]
    hidden_source = "from . import db\ndef f():\n    from . import lifecycle\n"
    assert imports("paradyze.x", _write(tmp_path, hidden_source))[1] == {"paradyze.lifecycle"}
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def _write(folder: Path, source: str) -> Path:
    path = folder / "x.py"
    path.write_text(source)
    return path
