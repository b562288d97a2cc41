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


# --- The image's lock file (issue 13: a hash-pinned install) -------------------------

LOCK = REPO / "docker" / "requirements.lock"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of docker/requirements.lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        pinned = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if pinned:
            current = _canonical(pinned.group(1))
            entries[current] = (pinned.group(2), [])
        elif current and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            entries[current][1].append(digest.group(1))
    return entries


def test_the_image_lock_pins_every_product_requirement_with_a_hash():
    locked = lock_entries()
    for name, line in requirement_names(REPO / "requirements.txt").items():
        wanted = line.split("==", 1)[1]
        assert _canonical(name) in locked, f"{name} is in requirements.txt but not in {LOCK.name}: run pip-compile"
        version, hashes = locked[_canonical(name)]
        # torch is locked as its CPU build: 2.13.0+cpu is the release 2.13.0.
        assert version.split("+", 1)[0] == wanted, f"{name}: requirements.txt says {wanted}, the lock {version}"
        assert hashes, f"{name} has no hash in {LOCK.name}"


def test_every_package_of_the_image_lock_is_hash_pinned_and_none_is_a_test_tool():
    locked = lock_entries()
    assert len(locked) > len(requirement_names(REPO / "requirements.txt"))  # the dependencies too
    assert not [name for name, (_, hashes) in locked.items() if not hashes]
    assert not TOOLS & set(locked)


def test_the_image_installs_only_from_the_lock_with_hashes():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert all("--require-hashes" in line for line in installs if " -r " in line), installs
    assert any("/tmp/requirements.lock" in line for line in installs)
    assert not any("-r /tmp/requirements.txt" in line for line in installs)
