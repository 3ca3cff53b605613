"""The import graph of daemon/ and notifiers/: no cycle (imports inside functions count) and no module
importing another module's private name. A static read of the source (ast), so it cannot be fooled by
import order or by a lazy import that a test run happens not to reach."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("daemon", "notifiers")
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            found[".".join(parts).removesuffix(".__init__")] = path
    return found


def graph() -> tuple[dict[str, set[str]], set[tuple[str, str, str]]]:
    mods = modules()
    edges: dict[str, set[str]] = {name: set() for name in mods}
    private: set[tuple[str, str, str]] = set()
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in PACKAGES:
                    continue
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    edges[name].add(target if target in mods else node.module)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.add((name, node.module, alias.name))
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in mods)
        edges[name].discard(name)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_daemon_and_notifiers() -> None:
    edges, _ = graph()
    assert "daemon.pipeline.queue" in edges["daemon.pipeline.dead_letter"]  # function-level imports are read
    assert cycles(edges) == []


def test_the_dispatcher_and_the_dead_letter_share_the_queue_below_them() -> None:
    edges, _ = graph()
    assert "daemon.pipeline.outbox" not in edges["daemon.pipeline.dead_letter"]
    assert edges["daemon.pipeline.queue"] & {"daemon.pipeline.outbox", "daemon.pipeline.dead_letter"} == set()
    assert "daemon.reports.scoring" not in edges["daemon.config"]  # config imports no report module


def test_no_module_imports_a_private_name_of_another() -> None:
    _, private = graph()
    assert private == set()


def test_no_command_imports_a_sibling_commands_helpers() -> None:
    edges, _ = graph()
    for name, targets in edges.items():
        if name.startswith("daemon.commands."):
            siblings = {t for t in targets if t.startswith("daemon.commands.") and t != "daemon.commands.args"}
            assert siblings == set(), name
