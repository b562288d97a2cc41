"""Password guessing on the two login pages, and what visitors learn about agents."""

import pytest
from django.test import Client

from chatbot.agents import services as agent_services
from chatbot.conversations.models import Message

LOGIN_PAGES = ["/agent/login/", "/admin/login/"]


def audit_entries():
    # Imported here, so that each test fails on its own on code without the audit log.
    from chatbot.audit.models import AuditEntry

    return AuditEntry.objects


def _try(client: Client, page: str, username: str, password: str):
    return client.post(page, {"username": username, "password": password, "next": "/"}, REMOTE_ADDR="203.0.113.7")


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_wrong_passwords_lock_the_login_out_even_for_the_right_password(page, agent, admin, settings):
    user = admin if page.startswith("/admin") else agent
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _try(client, page, user.username, "guess")
    response = _try(client, page, user.username, f"pw-{user.username}")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_per_user_name_and_address(agent, other_agent, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _try(Client(), "/agent/login/", agent.username, "guess")
    # The same user from another address, and another user from the same one, still get in.
    response = Client().post("/agent/login/", {"username": "alice", "password": "pw-alice"}, REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 302
    assert _try(Client(), "/agent/login/", "bob", "pw-bob").status_code == 302


def test_lockouts_are_listed_in_the_admin_and_the_audit_log(agent, admin, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _try(Client(), "/agent/login/", agent.username, "guess")
    staff = Client()
    staff.force_login(admin)
    page = staff.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "alice" in page.content.decode()
    entry = audit_entries().get(action="login.lockout")
    assert entry.details["username"] == "alice" and entry.details["ip_address"] == "203.0.113.7"


def test_the_visitor_sees_the_agents_display_name_never_the_login_name(visitor, agent):
    agent.first_name, agent.last_name = "", ""
    agent.save()
    agent_services.take_over(visitor.conversation.pk, agent)
    joined = Message.objects.filter(conversation=visitor.conversation, sender="system").last()
    assert "alice" not in joined.text.lower()
    reply = agent_services.reply(visitor.conversation.pk, agent, "Hello")
    from chatbot.conversations.services import message_frame

    assert message_frame(reply)["agent_name"] == "Support agent"


def test_an_agent_without_a_display_name_is_asked_for_one_at_login(agent):
    agent.first_name = ""
    agent.save()
    response = _try(Client(), "/agent/login/", "alice", "pw-alice")
    assert response.status_code == 200
    assert "no display name" in response.content.decode()
