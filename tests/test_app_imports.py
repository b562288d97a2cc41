"""The import contract between the Django apps: no circle. An app may use the
apps below it; one below never imports one above, not even inside a function
(a lazy import hides a circle, it does not remove it). Within one app anything
goes (services and tasks import each other). Project modules an app imports
(`chatbot.realtime`, `chatbot.celery`, ...) count as part of the path."""

import ast
from itertools import pairwise
from pathlib import Path

import networkx as nx
import pytest

CHATBOT = Path(__file__).resolve().parent.parent / "chatbot"
APPS = sorted(path.parent.name for path in CHATBOT.glob("*/apps.py"))


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from chatbot import realtime` names a module too.
            names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return {name for name in names if name.startswith("chatbot.")}


def owner(module: str) -> str:
    """The app a chatbot module belongs to, or the project module itself."""
    parts = module.split(".")
    return parts[1] if parts[1] in APPS else ".".join(parts[:2])


def import_graph() -> nx.DiGraph:
    """App (or project module) -> what it imports, each edge with one file that does it."""
    graph = nx.DiGraph()
    for path in CHATBOT.rglob("*.py"):
        module = ".".join(path.relative_to(CHATBOT.parent).with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module.removesuffix(".__init__")
        if module == "chatbot" or "migrations" in path.parts:
            continue
        source = owner(module)
        for target in {owner(name) for name in imported_modules(path)} - {source, "chatbot"}:
            if source in APPS or target in APPS:
                graph.add_edge(source, target, where=str(path.relative_to(CHATBOT.parent)))
    return graph


def app_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """Only the apps; an app that reaches another through project modules imports it."""
    apps = nx.DiGraph()
    apps.add_nodes_from(APPS)
    for source in set(APPS) & set(graph):
        # Walk on through project modules, stopping at the first app on each path.
        paths = [[source, target] for target in graph.successors(source)]
        while paths:
            path = paths.pop()
            where = " -> ".join(graph.edges[a, b]["where"] for a, b in pairwise(path))
            if path[-1] in APPS:
                apps.add_edge(source, path[-1], where=where)
            else:
                paths += [[*path, n] for n in graph.successors(path[-1]) if n not in path]
    return apps


def test_the_apps_are_found():
    assert {"agents", "conversations", "nlu", "replies"} <= set(APPS)


def test_no_import_circle_between_apps():
    apps = app_graph(import_graph())
    circles = [
        " -> ".join(f"{a} ({apps.edges[a, b]['where']})" for a, b in pairwise([*cycle, cycle[0]]))
        for cycle in nx.simple_cycles(apps)
    ]
    assert circles == []


def test_the_chat_does_not_import_the_dashboard():
    """The circle this contract was written for: conversations -> agents -> conversations."""
    assert not app_graph(import_graph()).has_edge("conversations", "agents")


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import chatbot.nlu.models", {"chatbot.nlu.models"}),
        ("from chatbot import realtime", {"chatbot.realtime"}),
        (
            "def f():\n    from chatbot.agents.presence import connect",
            {"chatbot.agents.presence", "chatbot.agents.presence.connect"},
        ),
        ("from .models import X\nimport django", set()),
    ],
)
def test_every_kind_of_import_is_seen(tmp_path, source, expected):
    path = tmp_path / "module.py"
    path.write_text(source)
    assert imported_modules(path) == expected
