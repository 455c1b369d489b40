"""The package's imports run one way, down the layers of search/__init__.py:
cli -> flags -> printers -> {study, confirm, baseline, reporting, dashboard} -> results/ -> execution/ -> strategy/ -> optuna_private -> engine/ -> config
(studies/method.md, Code layout). Held per folder and, where it says more, per module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "search"
# Top to bottom; a place imports only places below it, and modules of its own folder.
LAYERS = [{"cli"}, {"flags"}, {"printers"}, {"study", "confirm", "baseline", "reporting", "dashboard", "progress"},
          {"results"}, {"execution"}, {"strategy"}, {"optuna_private"}, {"engine"}, {"config"}]
FOLDERS = {"engine", "strategy", "execution", "results"}


def _name(path: Path) -> str:
    """'execution/workers' for search/execution/workers.py, 'cli' for search/cli.py."""
    return path.relative_to(PACKAGE).with_suffix("").as_posix()


def imports() -> dict[str, set[str]]:
    """Module ('cli', 'execution/workers') -> the package's modules it imports (at the top or
    inside a function); the package root (its version) is left out."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" or path.name == "__main__.py":
            continue
        here = path.relative_to(PACKAGE).parent.parts
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = list(here[:len(here) - (node.level - 1)]) + (node.module.split(".") if node.module else [])
            # `from .x import y`: module x, or module x/y when x is a folder
            for parts in [base, *(base + [alias.name] for alias in node.names)]:
                module = "/".join(parts)
                if (PACKAGE / f"{module}.py").exists():
                    found.add(module)
        graph[_name(path)] = found
    return graph


def place(module: str) -> str:
    """The folder of a module, or the module itself at the top."""
    return module.split("/")[0]


def rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if place(module) in layer)


def test_every_module_has_a_place_in_the_layers():
    graph = imports()
    assert {place(m) for m in graph} <= set().union(*LAYERS)
    assert FOLDERS <= {place(m) for m in graph}  # the folders exist and hold modules


def test_no_import_runs_back_up_between_folders():
    graph = imports()
    up = {(m, d) for m, deps in graph.items() for d in deps
          if place(d) != place(m) and rank(d) <= rank(m)}
    assert up == set()


def test_no_module_imports_one_that_imports_it_back():
    graph = imports()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for m in graph.get(todo.pop(), ()):
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return seen

    assert [m for m in graph if m in reach(m)] == []


def test_the_use_cases_sit_above_the_workers_and_only_the_cli_calls_them():
    graph = imports()
    use_cases = {"study", "confirm", "baseline", "reporting", "dashboard"}
    assert {m for m, deps in graph.items() if deps & use_cases} == {"cli", "printers"}  # printers: their events
    for case in use_cases:  # each stands alone
        assert not graph[case] & use_cases, case
    # a study's identity and a run sit below the search's objective, beside it at most
    assert not graph["execution/identity"] & {"execution/objective", "execution/runs", "execution/workers"}
    assert "execution/objective" not in graph["execution/runs"]
    # the training loop knows nothing of Optuna's trials, studies or workers
    assert graph["engine/train"] <= {"config", "engine/data", "engine/model"}


def test_the_engine_knows_nothing_of_optuna():
    for path in (PACKAGE / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "optuna" for n in names), path.name


# Private names of other libraries read on purpose: the process's exit without cleanup, and
# torch's compiler (search.engine.train).
OTHER_PRIVATE = {("os", "_exit"), ("torch", "_dynamo")}


def test_only_optuna_private_reads_optunas_private_names():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "optuna_private.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = ast.unparse(node.value)
                if owner not in ("self", "cls") and (owner, node.attr) not in OTHER_PRIVATE:
                    found.append(f"{_name(path)}:{node.lineno} {owner}.{node.attr}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
                if any(m.split(".")[0] == "optuna" and any(p.startswith("_") for p in m.split(".")) for m in modules) \
                        or any(n.startswith("_") for n in names if node.level == 0):
                    found.append(f"{_name(path)}:{node.lineno} import {ast.unparse(node)}")
    assert found == []
