"""The engine's layout: no import cycle, the runtime below the fixes and speed-ups, every fix naming its proof,
and the package's size limits (modules of at most 400 lines, functions of at most 50)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from earlyexit import engine

PACKAGE = Path(engine.__file__).resolve().parents[1]  # src/earlyexit
ENGINE = PACKAGE / "engine"
TESTS = Path(__file__).resolve().parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

# Over the limits today: to be shrunk, never grown. (path under src/, function or None)
ALLOWED_OVER_LIMIT: set[tuple[str, str | None]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ENGINE.rglob("*.py"))}


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The engine modules that module ``name`` imports anywhere (type-checking and function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {module for module in found if module in modules and module != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_names_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_the_engine_s_modules() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_runtime_imports_no_fix_and_no_speedup_and_they_import_not_each_other() -> None:
    allowed = {"runtime": {"runtime"}, "fixes": {"runtime", "fixes"}, "speedups": {"runtime", "speedups"}}

    def part(module: str) -> str:  # earlyexit.engine.<part>...; the package itself is "engine"
        return module.split(".")[2] if module.count(".") >= 2 else "engine"

    wrong = [f"{name} imports {module}" for name, imported in _graph().items() if part(name) in allowed
             for module in sorted(imported)
             if module != "earlyexit.engine.registry" and part(module) not in allowed[part(name)]]
    assert not wrong


def _entries_named_in_docstrings() -> list[tuple[str, str]]:
    return [(fix.__name__, fix.__doc__ or "") for fix in engine.FIXES]


@pytest.mark.parametrize(("fix", "doc"), _entries_named_in_docstrings(), ids=[f.__name__ for f in engine.FIXES])
def test_every_fix_links_aws_documentation_and_names_existing_tests(fix: str, doc: str) -> None:
    assert "https://docs.aws.amazon.com/" in doc
    named = re.findall(r"(tests/test_[\w]+\.py)::(test_\w+)", doc)
    assert named, f"{fix} names no test"
    for file, test in named:
        source = (TESTS.parent / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, re.MULTILINE), f"{fix} names {file}::{test}, which does not exist"


def test_every_entry_is_registered_once_in_one_part() -> None:
    names = [entry.__name__ for entry in engine.ENTRIES]
    assert len(names) == len(set(names))
    assert {e.__module__.split(".")[2] for e in engine.FIXES} == {"fixes"}
    assert {e.__module__.split(".")[2] for e in engine.SPEEDUPS} == {"speedups"}
    assert {e.__module__.split(".")[2] for e in engine.RUNTIME} == {"runtime"}


def _over_limits() -> set[tuple[str, str | None]]:
    found: set[tuple[str, str | None]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.add((relative, None))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno is not None and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                found.add((relative, node.name))
    return found


def test_modules_and_functions_stay_within_their_size_limits() -> None:
    over = _over_limits()
    assert not over - ALLOWED_OVER_LIMIT, f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function"
    assert not ALLOWED_OVER_LIMIT - over, "within the limits now: remove from ALLOWED_OVER_LIMIT"
    assert not {path for path, _ in over if path.startswith("earlyexit/engine/")}
