"""Conversations: list with filters and a cursor, get with messages, post
messages, and the actions agents take in the dashboard."""

import base64
import binascii
import json
from datetime import datetime
from typing import Literal
from uuid import UUID

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema

from chatbot.api import actions, auth, idempotency
from chatbot.api.endpoints import COMMON_PROBLEMS
from chatbot.api.endpoints.visitors import visitor_out
from chatbot.api.problems import ApiProblem
from chatbot.api.schemas import (
    AgentIn,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    HandOffIn,
    MessageIn,
    MessageOut,
    NoteIn,
    Problem,
)
from chatbot.conversations.models import Conversation, Message

router = Router(tags=["conversations"])

PAGE_SIZE = 100
LIST_FIELDS = list(ConversationOut.model_fields)
PROBLEMS = {**COMMON_PROBLEMS, 404: Problem, 409: Problem}


class ConversationFilters(Schema):
    status: Literal["bot", "waiting_for_agent", "with_agent", "closed"] | None = None
    assigned_agent: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    cursor: str | None = None
    limit: int = PAGE_SIZE


def _encode_cursor(created_at: datetime, pk: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, pk = json.loads(raw)
        return datetime.fromisoformat(created_at), UUID(pk)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ApiProblem(400, "invalid_cursor", "The cursor is not one this API handed out.") from None


@router.get("/conversations", response={200: ConversationPage, **COMMON_PROBLEMS}, auth=auth.read)
def list_conversations(request: HttpRequest, filters: Query[ConversationFilters]):
    """Newest first, `limit` (1 to 100) a page; follow `next_cursor` for the rest. Scope: read.

    Keyset pagination on (created_at, id): a page costs the same however deep it is,
    and conversations created while a client pages do not shift what it sees next.
    """
    if not 1 <= filters.limit <= PAGE_SIZE:
        raise ApiProblem(400, "invalid_limit", f"limit must be between 1 and {PAGE_SIZE}.")
    rows = Conversation.objects.all()
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.assigned_agent is not None:
        rows = rows.filter(assigned_agent_id=filters.assigned_agent)
    if filters.created_after:
        rows = rows.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        rows = rows.filter(created_at__lt=filters.created_before)
    if filters.cursor:
        created_at, pk = _decode_cursor(filters.cursor)
        # (created_at, id) < (cursor): the first condition bounds the index scan, the second breaks ties.
        rows = rows.filter(created_at__lte=created_at).filter(Q(created_at__lt=created_at) | Q(pk__lt=pk))
    page = list(rows.order_by("-created_at", "-id").values(*LIST_FIELDS)[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    next_cursor = _encode_cursor(page[-1]["created_at"], page[-1]["id"]) if more else None
    # Validated and written as JSON in one pass by pydantic-core: a page of 100 costs
    # a fraction of ninja's default (validate, dump to dicts, then json.dumps in Python).
    body = ConversationPage.model_validate({"items": page, "next_cursor": next_cursor}).model_dump_json()
    return HttpResponse(body, content_type="application/json")


def _conversation(conversation_id: UUID) -> Conversation:
    conversation = Conversation.objects.select_related("visitor").filter(pk=conversation_id).first()
    if conversation is None:
        raise ApiProblem(404, "not_found", "No such conversation.")
    return conversation


def message_out(message: Message) -> dict:
    return MessageOut.model_validate(message, from_attributes=True).model_dump(mode="json")


def conversation_out(conversation: Conversation) -> dict:
    return ConversationOut.model_validate(conversation, from_attributes=True).model_dump(mode="json")


@router.get("/conversations/{conversation_id}", response={200: ConversationDetail, **PROBLEMS}, auth=auth.read)
def get_conversation(request: HttpRequest, conversation_id: UUID):
    """The conversation, its visitor and every message (internal notes flagged `internal`). Scope: read."""
    conversation = _conversation(conversation_id)
    return {
        **conversation_out(conversation),
        "visitor": visitor_out(conversation.visitor),
        "messages": [message_out(m) for m in conversation.messages.order_by("seq")],
    }


@router.post("/conversations/{conversation_id}/messages", response={201: MessageOut, **PROBLEMS}, auth=auth.write)
def post_message(request: HttpRequest, conversation_id: UUID, body: MessageIn):
    """A message to the visitor, as an agent (who must hold the conversation) or as the bot.
    The visitor receives it live, exactly like a dashboard reply. Scope: write. Honours Idempotency-Key."""
    _conversation(conversation_id)

    def create():
        if body.sender == "bot":
            if body.agent_id is not None:
                raise ApiProblem(422, "agent_for_bot", "agent_id is only for messages sent as an agent.")
            message = actions.post_bot_message(conversation_id, body.text)
        else:
            agent = actions.find_agent(body.agent_id, request.api_token.user)
            message = actions.post_agent_message(conversation_id, agent, body.text)
        return 201, message_out(message)

    return idempotency.run(request, create)


@router.post("/conversations/{conversation_id}/notes", response={201: MessageOut, **PROBLEMS}, auth=auth.write)
def add_note(request: HttpRequest, conversation_id: UUID, body: NoteIn):
    """An internal note: in the transcript for agents, never sent to the visitor. Scope: write. Honours Idempotency-Key."""
    _conversation(conversation_id)

    def create():
        agent = actions.find_agent(body.agent_id, request.api_token.user)
        return 201, message_out(actions.add_note(conversation_id, agent, body.text))

    return idempotency.run(request, create)


@router.post("/conversations/{conversation_id}/handoff", response={200: ConversationOut, **PROBLEMS}, auth=auth.write)
def hand_off(request: HttpRequest, conversation_id: UUID, body: HandOffIn):
    """Put a bot conversation in the agents' queue. Scope: write. Honours Idempotency-Key."""
    _conversation(conversation_id)
    return idempotency.run(request, lambda: (200, conversation_out(actions.hand_off(conversation_id, body.reason))))


@router.post("/conversations/{conversation_id}/assign", response={200: ConversationOut, **PROBLEMS}, auth=auth.write)
def assign(request: HttpRequest, conversation_id: UUID, body: AgentIn):
    """Give a bot or queued conversation to an agent, as if they took it in the dashboard. Scope: write."""
    _conversation(conversation_id)

    def run():
        agent = actions.find_agent(body.agent_id, request.api_token.user)
        return 200, conversation_out(actions.assign(conversation_id, agent))

    return idempotency.run(request, run)


@router.post("/conversations/{conversation_id}/close", response={200: ConversationOut, **PROBLEMS}, auth=auth.write)
def close(request: HttpRequest, conversation_id: UUID, body: AgentIn):
    """Close a conversation that is the agent's own, or nobody's. Scope: write."""
    _conversation(conversation_id)

    def run():
        agent = actions.find_agent(body.agent_id, request.api_token.user)
        return 200, conversation_out(actions.close(conversation_id, agent))

    return idempotency.run(request, run)
