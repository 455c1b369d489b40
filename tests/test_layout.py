"""The package's imports run one way: cli -> {study, confirm} -> workers/supervisor ->
{objective, runs} -> {space, model, train, data} (studies/method.md, Code layout)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "search"


def imports() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (at the top or inside a function)."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists())
        graph[path.stem] = found - {"__init__"}
    return graph


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
    use_cases = {"study", "confirm"}
    assert {m for m, deps in graph.items() if deps & use_cases} == {"cli"}
    below = {"workers", "supervisor", "objective", "runs", "train", "model", "data", "record", "identity"}
    assert {m: graph[m] & (use_cases | {"cli"}) for m in below if graph[m] & (use_cases | {"cli"})} == {}
    assert "confirm" not in graph["study"] and "study" not in graph["confirm"]
    # a study's identity and a run sit below the search's objective, beside it at most
    assert not graph["identity"] & {"objective", "runs", "workers"} and "objective" not in graph["runs"]
    # the training loop knows nothing of Optuna's trials, studies or workers
    assert graph["train"] <= {"config", "data", "model"}
