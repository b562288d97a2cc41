"""The analytics settings: a malformed value stops the start with what to set."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def start_with(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "SITE_TIME_ZONE"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**clean, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "chatbot.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("SITE_TIME_ZONE", "Mars/Olympus", "SITE_TIME_ZONE 'Mars/Olympus' is not a time zone"),
        ("ANALYTICS_IDLE_WINDOW_H", "a day", "ANALYTICS_IDLE_WINDOW_H is not valid"),
        ("ANALYTICS_IDLE_WINDOW_H", "0", "Set ANALYTICS_IDLE_WINDOW_H to at least 0.01 hours"),
        ("ANALYTICS_CLUSTER_DISTANCE", "3", "Set ANALYTICS_CLUSTER_DISTANCE to between 0.01 and 1.99"),
    ],
)
def test_bad_value_stops_the_start(name, value, says):
    result = start_with(**{name: value})
    assert result.returncode != 0 and says in result.stderr


def test_good_values_start():
    assert start_with(SITE_TIME_ZONE="Europe/Berlin", ANALYTICS_IDLE_WINDOW_H="12").returncode == 0
