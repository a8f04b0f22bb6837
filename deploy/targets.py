"""The function targets: every `@functions_framework.http` entry point of functions/main.py, read, not imported."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN = REPO / "functions" / "main.py"


def function_targets(main: Path = MAIN) -> list[str]:
    """The names of main.py's HTTP functions, in the order they are written."""
    tree = ast.parse(main.read_text(), filename=str(main))
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and any(_is_http(d) for d in node.decorator_list)]


def _is_http(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Attribute) and decorator.attr == "http"
            and isinstance(decorator.value, ast.Name) and decorator.value.id == "functions_framework")


def newest_migration(directory: Path = REPO / "supabase" / "migrations") -> str:
    """The version of the newest migration: what a release built from this tree needs applied."""
    versions = sorted(p.name.split("_", 1)[0] for p in directory.glob("*.sql"))
    if not versions:
        raise FileNotFoundError(f"no migrations in {directory}")
    return versions[-1]
