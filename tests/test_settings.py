"""Settings fail loud: every environment variable is read in one place, strictly,
and is documented in the README's settings table."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV_READERS = {
    "env_str", "env_bool", "env_int", "env_float", "env_list", "env_path", "env_database", "env_redis_url",
    "env_rate", "env_rates",
}  # fmt: skip
# The only modules that may look at os.environ: the server's settings reader and
# the inference toolkit's runtime (inference/ cannot use Django settings).
READERS_OF_THE_ENVIRONMENT = {"chatbot/environment.py", "inference/runtime.py"}


def source_files():
    for package in ("chatbot", "inference"):
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", None) == "os"


def environment_reads(tree: ast.AST) -> list[tuple[str | None, int, bool]]:
    """(variable name or None when not a literal, line, whether it touches os.environ
    directly) for each read of the environment."""
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if isinstance(func, ast.Name) and func.id in ENV_READERS:
                reads.append((name, node.lineno, False))
            elif isinstance(func, ast.Attribute) and func.attr == "get" and _is_os_environ(func.value):
                reads.append((name, node.lineno, True))
            elif isinstance(func, ast.Attribute) and func.attr == "getenv" and getattr(func.value, "id", None) == "os":
                reads.append((name, node.lineno, True))
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
            reads.append((key, node.lineno, True))
        elif (
            isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        ):
            # Variable names kept in constants (THREADS_ENV = "INFERENCE_THREADS") are read through them.
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.endswith("_ENV"):
                    reads.append((node.value.value, node.lineno, False))
    return reads


def variables_read_by_the_code() -> dict[str, str]:
    found = {}
    for path in source_files():
        for name, line, _ in environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            if name is not None:
                found.setdefault(name, f"{path.relative_to(REPO)}:{line}")
    return found


def readme_settings() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def test_every_environment_variable_the_code_reads_is_in_the_readme_settings_table():
    read = variables_read_by_the_code()
    missing = {name: where for name, where in read.items() if name not in readme_settings()}
    assert not missing, f"add these to the README's settings table: {missing}"


def test_the_readme_documents_no_variable_the_code_does_not_read():
    stale = readme_settings() - set(variables_read_by_the_code())
    assert not stale, f"the README documents settings nothing reads: {sorted(stale)}"


def test_only_the_settings_reader_and_the_inference_runtime_read_the_environment():
    elsewhere = []
    for path in source_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in READERS_OF_THE_ENVIRONMENT:
            continue
        for name, line, direct in environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            if direct:
                elsewhere.append(f"{relative}:{line} {name or '(a variable name)'}")
    assert not elsewhere, f"read the environment through chatbot.environment or inference.runtime: {elsewhere}"


def start_with(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        # Used to divide by zero in the rate limit.
        ({"RATE_LIMIT_WINDOW_S": "0"}, "Set RATE_LIMIT_WINDOW_S to at least 1 seconds"),
        # A lax boolean read this typo as "off" and silently stopped the nightly retraining.
        ({"NIGHTLY_RETRAIN": "ture"}, "Set NIGHTLY_RETRAIN to 1 or 0"),
        ({"NIGHTLY_RETRAIN_HOUR": "24"}, "Set NIGHTLY_RETRAIN_HOUR to between 0 and 23"),
        ({"AGENT_PRESENCE_TTL_S": "soon"}, "AGENT_PRESENCE_TTL_S is not valid"),
        ({"HANDOFF_AFTER_FALLBACKS": "0"}, "Set HANDOFF_AFTER_FALLBACKS to at least 1"),
        ({"REPLY_SUGGESTIONS_SOURCE": "magic"}, "Set REPLY_SUGGESTIONS_SOURCE to best, seq2seq, retrieval or both"),
        ({"CELERY_VISIBILITY_TIMEOUT": "600", "CELERY_TRAINING_TIME_LIMIT": "900"}, "CELERY_TRAINING_TIME_LIMIT"),
        ({"INFERENCE_DEVICE": "gpu"}, "Set it to cpu, cuda or cuda:N"),
        ({"PORT": "70000"}, "Set PORT to between 1 and 65535"),
    ],
)
def test_an_impossible_value_stops_the_start_with_what_to_set(env, sentence):
    result = start_with(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and sentence in result.stderr


def test_blank_values_mean_the_default_and_case_does_not_matter_for_words():
    result = start_with(NIGHTLY_RETRAIN="", LOG_LEVEL="warning", REPLY_SUGGESTIONS_SOURCE="Retrieval")
    assert result.returncode == 0, result.stderr


def test_the_presence_timeout_is_a_declared_setting(settings):
    from chatbot.agents import presence

    settings.AGENT_PRESENCE_TTL_S = 17
    assert presence.ttl_s() == 17


def test_the_inference_runtime_variables_are_in_the_readme_settings_table():
    from inference.runtime import ENVIRONMENT

    assert set(ENVIRONMENT) <= readme_settings()
