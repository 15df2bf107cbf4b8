"""Each file of named queries has one owner module, and only that module runs its statements.

Other modules call the owner's functions instead (the lock protocol through
``slotmill.materializer.locks``, the booking lifecycle through ``...bookings``), so a reader
of one query file knows every caller. Benchmarks and tests may read statements to measure
or EXPLAIN them; the runtime package may not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from slotmill.sql import QUERIES_DIR, query_files

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIRS = ("slotmill", "api", "jobs", "materializer", "sql")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] != "slotmill":
        parts.insert(0, "slotmill")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_modules() -> dict[str, ast.Module]:
    out: dict[str, ast.Module] = {}
    for top in RUNTIME_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.is_relative_to(ROOT / "slotmill") and top != "slotmill":
                continue
            if (ROOT / "slotmill") in path.parents and path.parent.is_symlink():
                continue
            out[_module_name(path)] = ast.parse(path.read_text(), str(path))
    return out


def _binding(tree: ast.Module) -> str | None:
    """The module-level name bound to ``owned_by(__name__)``, if any."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "owned_by"
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            return node.targets[0].id
    return None


def ownership_problems(modules: dict[str, ast.Module]) -> list[str]:
    files = query_files()
    problems: list[str] = []
    bindings: dict[str, str] = {}
    for owner, q in files.items():
        tree = modules.get(owner)
        if tree is None:
            problems.append(f"sql/queries/{q.file}: owner {owner} is not a module of the package")
            continue
        name = _binding(tree)
        if name is None:
            problems.append(f"{owner} owns sql/queries/{q.file} but never binds owned_by(__name__)")
            continue
        bindings[owner] = name
        source = ast.unparse(tree)
        for statement in q.statements:
            if repr(statement) not in source and f'"{statement}"' not in source:
                problems.append(f"sql/queries/{q.file}: {statement!r} is never run by its owner {owner}")

    for module, tree in modules.items():
        aliases: dict[str, str] = {}  # local name -> owner module it refers to
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if fname == "owned_by" and module != "slotmill.sql":
                    arg = node.args[0] if node.args else None
                    if not (isinstance(arg, ast.Name) and arg.id == "__name__"):
                        problems.append(f"{module}: owned_by() must be called with __name__")
                if fname == "query_files" and module != "slotmill.sql":
                    problems.append(f"{module}: reads query files directly ({fname})")
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    target = f"{node.module}.{a.name}"
                    if node.module in bindings and a.name == bindings[node.module] and node.module != module:
                        problems.append(f"{module}: imports {node.module}'s statements ({a.name})")
                    if target in bindings:
                        aliases[a.asname or a.name] = target
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in bindings:
                        aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr == bindings[aliases[node.value.id]]
                and aliases[node.value.id] != module
            ):
                problems.append(f"{module}: runs {aliases[node.value.id]}'s statements ({node.value.id}.{node.attr})")
    return problems


def test_every_query_file_has_one_owner_that_runs_all_of_it() -> None:
    assert sorted(p.name for p in QUERIES_DIR.glob("*.sql")) == sorted(q.file for q in query_files().values())
    assert ownership_problems(_runtime_modules()) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "slotmill.api.host",
            "from slotmill.materializer.locks import Q\nQ['lock_staff']\n",
            "slotmill.api.host: imports slotmill.materializer.locks's statements (Q)",
        ),
        (
            "slotmill.materializer.ondemand",
            "from slotmill.api import public\npublic.Q['read_slots']\n",
            "slotmill.materializer.ondemand: runs slotmill.api.public's statements (public.Q)",
        ),
        (
            "slotmill.jobs.queue",
            "from slotmill.sql import owned_by\nX = owned_by('slotmill.materializer.refresh')\n",
            "slotmill.jobs.queue: owned_by() must be called with __name__",
        ),
    ],
)
def test_running_another_modules_statements_is_caught(module: str, source: str, expected: str) -> None:
    # The defects this test exists for: the API ran the materializer's lock statement, and
    # on-demand computation ran a statement of the API's file.
    modules = _runtime_modules()
    modules[module] = ast.parse(ast.unparse(modules[module]) + "\n" + source)
    assert expected in ownership_problems(modules)
