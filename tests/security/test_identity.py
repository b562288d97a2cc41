"""A visitor can type any name and email: agents see it marked unverified. The
embedding site can sign the identity (HMAC of user id and email), shown as verified."""

import hashlib
import hmac

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatbot.asgi import application
from chatbot.conversations import services
from chatbot.conversations.models import Visitor
from chatbot.conversations.services import ProtocolError
from tests.conftest import ORIGIN

SECRET = "site-secret-for-identity-verification"


def signature(user_id: str, email: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{user_id}:{email}".encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def verification(settings):
    settings.IDENTITY_VERIFICATION_SECRET = SECRET


def visitor_row(visitor) -> Visitor:
    return Visitor.objects.get(pk=visitor.conversation.visitor_id)


def dashboard_page(agent, visitor) -> str:
    client = Client()
    client.force_login(agent)
    return client.get(f"/agent/c/{visitor.conversation.pk}/?fragment=1").content.decode()


def test_a_typed_identity_is_shown_to_agents_as_unverified(visitor, agent):
    services.identify(visitor.conversation, "Grace Hopper", "grace@example.com")
    assert visitor_row(visitor).identity_verified is False
    page = dashboard_page(agent, visitor)
    assert "unverified" in page and "grace@example.com" in page


def test_a_signed_identity_is_shown_as_verified(visitor, agent, verification):
    services.identify(
        visitor.conversation, "Grace", "grace@example.com", "user-42", signature("user-42", "grace@example.com")
    )
    row = visitor_row(visitor)
    assert row.identity_verified is True and row.external_id == "user-42"
    page = dashboard_page(agent, visitor)
    assert "verified" in page and "unverified" not in page and "user-42" in page


@pytest.mark.parametrize(
    ("user_id", "email", "signed_email", "secret"),
    [
        ("user-42", "grace@example.com", "mallory@example.com", SECRET),  # signature of another email
        ("user-42", "grace@example.com", "grace@example.com", "guessed-secret"),
    ],
)
def test_a_wrong_signature_is_refused_and_changes_nothing(visitor, verification, user_id, email, signed_email, secret):
    with pytest.raises(ProtocolError) as refused:
        services.identify(visitor.conversation, "Grace", email, user_id, signature(user_id, signed_email, secret))
    assert refused.value.code == "invalid_identity_signature"
    row = visitor_row(visitor)
    assert (row.email, row.identity_verified, row.external_id) == ("", False, "")


def test_an_unsigned_identify_cannot_overwrite_a_verified_identity(visitor, verification):
    services.identify(visitor.conversation, "Grace", "grace@example.com", "u1", signature("u1", "grace@example.com"))
    with pytest.raises(ProtocolError) as refused:
        services.identify(visitor.conversation, "Mallory", "mallory@example.com")
    assert refused.value.code == "identity_verified"
    assert visitor_row(visitor).email == "grace@example.com"


def test_signed_identity_is_refused_when_the_server_has_no_secret(visitor):
    with pytest.raises(ProtocolError) as refused:
        services.identify(visitor.conversation, "Grace", "grace@example.com", "u1", "0" * 64)
    assert refused.value.code == "identity_verification_off"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_identify_frame_carries_the_signature(verification):
    from channels.db import database_sync_to_async

    token, conversation = await database_sync_to_async(services.start_session)()
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", ORIGIN.encode())])
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "auth", "token": token})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "history"
    await communicator.send_json_to(
        {
            "type": "identify",
            "name": "Grace",
            "email": "grace@example.com",
            "user_id": "u7",
            "user_hash": signature("u7", "grace@example.com"),
        }
    )
    assert (await communicator.receive_json_from(timeout=5)) == {"type": "identify_ack"}
    await communicator.disconnect()
    row = await database_sync_to_async(Visitor.objects.get)(pk=conversation.visitor_id)
    assert row.identity_verified and row.external_id == "u7"
