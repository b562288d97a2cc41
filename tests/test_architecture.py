"""Import contracts between the layers, checked on the source with `ast` (no import
runs): `inference` is plain model code that runs on a host with only torch and
transformers, so it never imports Django or the `chatbot` project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_INFERENCE = ("django", "chatbot", "channels", "celery", "rest_framework")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, at any depth
    (inside functions too); relative imports are resolved against the file's package."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if node.module is None:  # `from . import x`: x may be a module
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def forbidden_imports(root: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] in forbidden
    ]


def test_inference_never_imports_django_or_the_chatbot_project() -> None:
    assert forbidden_imports(REPO / "inference", FORBIDDEN_IN_INFERENCE) == []


@pytest.mark.parametrize(
    "source",
    [
        "import django",
        "from django.conf import settings",
        "def load():\n    from chatbot.nlu import models\n",
        "import importlib\nimportlib.import_module('chatbot.settings')\n",
        "from channels.layers import get_channel_layer",
    ],
)
def test_the_contract_check_sees_every_way_of_importing(tmp_path: Path, source: str, monkeypatch) -> None:
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    (tmp_path / "inference").mkdir()
    (tmp_path / "inference" / "leak.py").write_text(source)
    assert len(forbidden_imports(tmp_path / "inference", FORBIDDEN_IN_INFERENCE)) == 1
