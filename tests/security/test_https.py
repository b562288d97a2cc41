"""HTTPS hardening, the Content-Security-Policy, and the keys and hosts a start accepts."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.test import Client

REPO = Path(__file__).resolve().parent.parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests' conftest sets it for this process;
    # a deployment must not have it, and check --deploy says so.
    ignored = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in ignored}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deployment_check_passes_with_debug_off():
    result = manage(
        "check", "--deploy", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="chat.example.com"
    )
    assert result.returncode == 0, result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout and "security.W" not in result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_the_hardening_can_be_turned_down_from_the_environment():
    result = manage(
        "check",
        "--deploy",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="chat.example.com",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
    )
    assert "security.W008" in result.stderr and "security.W004" in result.stderr


def test_a_secret_key_shorter_than_50_characters_is_refused():
    result = manage("check", DEBUG="0", SECRET_KEY="x" * 49)
    assert result.returncode != 0
    assert "SECRET_KEY is too short" in result.stderr


def test_a_debug_run_without_a_key_uses_a_random_key_kept_for_this_install():
    from django.conf import settings

    key_file = REPO / "var" / "secret_key"
    assert settings.SECRET_KEY != "insecure-development-key-only-for-debug"
    if not os.environ.get("SECRET_KEY"):
        assert settings.SECRET_KEY == key_file.read_text().strip()
        assert len(settings.SECRET_KEY) >= 50
        assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_the_debug_key_is_made_once_and_then_reused(tmp_path):
    from chatbot.environment import local_secret_key

    first = local_secret_key(tmp_path / "var" / "secret_key")
    assert len(first) >= 50
    assert local_secret_key(tmp_path / "var" / "secret_key") == first
    assert local_secret_key(tmp_path / "other" / "secret_key") != first


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_serve_refuses_debug_on_a_host_other_machines_reach(host, settings):
    from chatbot.conversations.management.commands.serve import check_debug_host

    settings.DEBUG = True
    with pytest.raises(CommandError, match="DEBUG_ON_PUBLIC_HOST"):
        check_debug_host(host)
    settings.DEBUG_ON_PUBLIC_HOST = True
    check_debug_host(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]"])
def test_serve_keeps_debug_on_loopback(host, settings):
    from chatbot.conversations.management.commands.serve import check_debug_host

    settings.DEBUG = True
    check_debug_host(host)


def test_make_run_with_host_0000_and_debug_does_not_start():
    result = manage("serve", "--host", "0.0.0.0", "--port", "1", DEBUG="1", HOST="0.0.0.0")
    assert result.returncode != 0
    assert "Refusing to serve with DEBUG" in result.stderr


@pytest.mark.parametrize("page", ["/agent/login/", "/admin/login/"])
def test_the_dashboard_and_admin_send_a_strict_content_security_policy(page, db):
    policy = Client().get(page).headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"].startswith("'self'")
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_the_admins_own_inline_script_carries_the_nonce(admin):
    client = Client()
    client.force_login(admin)
    response = client.get("/admin/nlu/modelversion/")
    nonce = response.headers["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in response.content.decode()


def test_the_demo_shop_page_keeps_a_customers_own_policy(db):
    # It stands in for a page of the embedding site, which sets its own policy.
    assert "Content-Security-Policy" not in Client().get("/").headers
