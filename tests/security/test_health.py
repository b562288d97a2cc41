"""/healthz tells anyone whether the service is up, and only staff and the host itself
what is inside (versions, exception text, worker names)."""

import pytest

pytestmark = pytest.mark.django_db

PUBLIC = "203.0.113.7"


def test_the_public_sees_only_the_status(client):
    response = client.get("/healthz", REMOTE_ADDR=PUBLIC)
    assert response.status_code == 503  # no active model: still says it is down
    assert response.json() == {"status": "unavailable"}


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_the_host_itself_sees_every_check(client, address):
    body = client.get("/healthz", REMOTE_ADDR=address).json()
    assert body["status"] == "unavailable"
    assert body["model"]["ok"] is False and body["model"]["detail"]
    assert body["database"]["ok"]


def test_staff_see_every_check_from_anywhere(client, admin):
    client.force_login(admin)
    body = client.get("/healthz", REMOTE_ADDR=PUBLIC).json()
    assert {"database", "broker", "channel_layer", "model", "workers", "unanswered"} <= set(body)


def test_an_agent_who_is_not_staff_sees_only_the_status(client, agent):
    client.force_login(agent)
    assert client.get("/healthz", REMOTE_ADDR=PUBLIC).json() == {"status": "unavailable"}
