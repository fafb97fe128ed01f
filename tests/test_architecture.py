"""The structure the README's Architecture section describes: no import cycle, one seam."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mysqlpool"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The mysqlpool modules ``path`` imports, type-only imports included."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mysqlpool"):
            if node.module != "mysqlpool":
                imported.add(node.module)
            # `from mysqlpool import registry` imports a module too.
            imported |= {
                f"{node.module}.{alias.name}" for alias in node.names if is_module(node.module, alias.name)
            }
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.startswith("mysqlpool")}
    return imported


def is_module(package: str, name: str) -> bool:
    path = PACKAGE.parent.joinpath(*package.split("."), name)
    return path.with_suffix(".py").exists() or path.is_dir()


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                cycles.append(path[path.index(imported) :] + [imported])
            elif len(path) < len(graph):
                visit(imported, [*path, imported])

    for module in sorted(graph):
        visit(module, [module])
    assert cycles == []


def test_sqlalchemy_internals_are_used_in_one_module_only() -> None:
    private = re.compile(
        r"\._pool\.queue|\._do_get\b|_inc_overflow|_dec_overflow|_create_connection|_return_conn"
        r"|_do_ping_w_event|_ConnectionRecord|\.get_connection\(\)"
    )
    users = {module_name(path) for path in PACKAGE.rglob("*.py") if private.search(path.read_text())}
    assert users == {"mysqlpool.sqlalchemy_internals"}
