"""What the API sends and accepts (pydantic, via django-ninja): the OpenAPI schema is built from these."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.conf import settings
from ninja import Field, Schema
from pydantic import field_validator

AttributeValue = str | int | float | bool | None
MAX_ATTRIBUTES = 50


class Problem(Schema):
    """RFC 9457 problem details; `code` is stable, `detail` is for people."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[dict] | None = None


class MessageOut(Schema):
    id: int
    seq: int
    sender: str
    text: str
    internal: bool
    author_id: int | None
    intent: str
    confidence: float | None
    created_at: datetime


class ConversationOut(Schema):
    id: UUID
    status: str
    visitor_id: int
    assigned_agent_id: int | None
    handoff_reason: str
    csat: int | None
    last_seq: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class VisitorOut(Schema):
    id: int
    name: str
    email: str
    page_url: str
    created_at: datetime
    last_seen_at: datetime
    attributes: dict[str, AttributeValue]


class ConversationDetail(ConversationOut):
    visitor: VisitorOut
    messages: list[MessageOut]


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last one.")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class MessageIn(Schema):
    text: str = Field(..., min_length=1, max_length=settings.MAX_MESSAGE_CHARS)
    sender: Literal["agent", "bot"] = "agent"
    agent_id: int | None = Field(None, description="Post as this agent (default: the token's user). Agent only.")

    _not_blank = field_validator("text")(_text)


class NoteIn(Schema):
    text: str = Field(..., min_length=1, max_length=settings.MAX_MESSAGE_CHARS)
    agent_id: int | None = None

    _not_blank = field_validator("text")(_text)


class HandOffIn(Schema):
    reason: str = Field("api", max_length=50)


class AgentIn(Schema):
    agent_id: int | None = Field(None, description="Default: the token's user.")


class VisitorPatch(Schema):
    name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254)
    attributes: dict[str, AttributeValue] | None = Field(
        None, description="Merged into the stored attributes; a null value removes that attribute."
    )

    @field_validator("attributes")
    @classmethod
    def _bounded(cls, value):
        if value is None:
            return value
        if len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        for key, item in value.items():
            if not key or len(key) > 100:
                raise ValueError("attribute names are 1 to 100 characters")
            if isinstance(item, str) and len(item) > 1000:
                raise ValueError(f"attribute {key!r} is longer than 1000 characters")
        return value


class IntentOut(Schema):
    name: str
    description: str
    handoff: bool
    created_at: datetime
    updated_at: datetime


class IntentIn(Schema):
    name: str = Field(..., min_length=1, max_length=100, pattern=r"^[\w-]+$")
    description: str = Field("", max_length=300)
    handoff: bool = False


class IntentPatch(Schema):
    description: str | None = Field(None, max_length=300)
    handoff: bool | None = None


class ExampleOut(Schema):
    id: int
    intent: str
    text: str
    source: str
    created_at: datetime


class ExampleIn(Schema):
    text: str = Field(..., min_length=1, max_length=2000)


class ModelVersionOut(Schema):
    id: int
    status: str
    mode: str
    progress: float
    stage: str
    is_active: bool
    example_count: int
    metrics: dict
    error: str
    activation_note: str
    created_at: datetime
    finished_at: datetime | None
    activated_at: datetime | None


class TrainingIn(Schema):
    mode: Literal["fast", "full"] = "fast"


class ActivateIn(Schema):
    force: bool = Field(False, description="Activate even if the regression guard refuses it.")
