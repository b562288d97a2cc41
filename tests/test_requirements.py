"""The product's requirements are what the image installs: no test tools in them,
every line pinned, and the dev file builds on them."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"pytest", "pytest-django", "pytest-timeout", "pytest-asyncio", "playwright", "ruff", "daphne", "factory-boy"}


def requirement_names(path: Path) -> dict[str, str]:
    lines = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            name = re.split(r"[\[=<>~!]", line, maxsplit=1)[0].lower()
            lines[name] = line
    return lines


def test_the_product_requirements_carry_no_test_tools():
    assert not TOOLS & set(requirement_names(REPO / "requirements.txt"))


def test_every_requirement_is_pinned_to_one_version():
    for path in (REPO / "requirements.txt", REPO / "requirements-dev.txt"):
        loose = [line for line in requirement_names(path).values() if "==" not in line]
        assert not loose, f"{path.name}: pin these with ==: {loose}"


def test_the_dev_requirements_build_on_the_product_ones_without_repeating_them():
    dev = REPO / "requirements-dev.txt"
    assert "-r requirements.txt" in dev.read_text(encoding="utf-8").splitlines()
    assert not set(requirement_names(dev)) & set(requirement_names(REPO / "requirements.txt"))
