"""Why this answer: the explanation of one visitor message's intent by the model
version that answered it (inference.intents.explain) and, when the bot asked the
help center, of the knowledge base's answer or abstention by the index version it
asked (inference.knowledge.explain_answer). Computed by one task on the inference
queue when an agent or reviewer asks, kept per (message, model version) and
(message, index version), pushed to the agents when ready. Never on the path of a reply.

Only agents and staff see explanations: the visitor's socket has no frame that
asks for one, and the push goes to the agents' group, never a conversation's.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from chatbot import realtime
from chatbot.modelops.lifecycle import check_pinned
from chatbot.nlu.models import Explanation, KnowledgeExplanation, ModelVersion, TrainingExample

log = logging.getLogger(__name__)

NEAREST_EXAMPLES = 3
AGENT_PERMISSION = "conversations.work_in_dashboard"
# A request still pending after this long lost its task (a worker died): ask again.
STALE_PENDING = timedelta(minutes=2)


class ExplanationRefused(Exception):
    pass


def can_view(user) -> bool:
    """Agents (the dashboard's permission, by name: agents sits above nlu) and staff;
    never visitors or strangers."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_staff or user.has_perm(AGENT_PERMISSION)


# --- Asking for one ---------------------------------------------------------------


@dataclass
class Why:
    """Both parts of one visitor message's explanation; a part is None when the
    message has none (no intent model answered it, or the help center was not asked)."""

    message_id: int
    conversation_id: object
    model_version_id: int | None
    index_version_id: int | None
    intent: Explanation | None = None
    knowledge: KnowledgeExplanation | None = None

    @property
    def parts(self) -> list:
        return [row for row in (self.intent, self.knowledge) if row is not None]

    @property
    def status(self) -> str:
        statuses = {row.status for row in self.parts}
        for status in (Explanation.Status.PENDING, Explanation.Status.FAILED):
            if status in statuses:
                return status
        return Explanation.Status.READY


def _index_version_id(message) -> int | None:
    """The index version the bot asked about this message (answered or declined), if any."""
    Message = apps.get_model("conversations", "Message")
    return Message.objects.filter(reply_to_id=message.pk).values_list("knowledge_index_id", flat=True).first()


def _answered_message(message_id: int):
    Message = apps.get_model("conversations", "Message")
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.sender != Message.Sender.VISITOR:
        raise ExplanationRefused("Only a visitor's message has an answer to explain.")
    index_version_id = _index_version_id(message)
    if message.model_version_id is None and index_version_id is None:
        raise ExplanationRefused("No intent model answered this message, so there is nothing to explain.")
    return message, index_version_id


def _ask(model, **key):
    """The row for `key`, created pending, or set pending again when it failed or its
    task was lost: (row, whether a task must compute it)."""
    try:
        with transaction.atomic():
            row, created = model.objects.get_or_create(**key)
    except IntegrityError:  # two requests at once: the other one created it
        row, created = model.objects.get(**key), False
    retry = row.status == model.Status.FAILED or (
        row.status == model.Status.PENDING and row.requested_at < timezone.now() - STALE_PENDING
    )
    if retry:
        changed = model.objects.filter(pk=row.pk, status=row.status).update(
            status=model.Status.PENDING, error="", requested_at=timezone.now()
        )
        row.refresh_from_db()
        retry = bool(changed)
    return row, created or retry


def request_why(message_id: int) -> Why:
    """The cached explanation of the message (both parts), or pending parts with one
    task queued for them (once: a second request while they are pending queues
    nothing, unless the first task was lost). A failed part is tried again."""
    message, index_version_id = _answered_message(message_id)
    version_id = message.model_version_id
    why = Why(message.pk, message.conversation_id, version_id, index_version_id)
    with transaction.atomic():
        explain_intent = explain_knowledge = False
        if version_id is not None:
            why.intent, explain_intent = _ask(Explanation, message_id=message.pk, model_version_id=version_id)
        if index_version_id is not None:
            why.knowledge, explain_knowledge = _ask(
                KnowledgeExplanation, message_id=message.pk, index_version_id=index_version_id
            )
        if explain_intent or explain_knowledge:
            arguments = (message.pk, version_id if explain_intent else None)
            if explain_knowledge:
                arguments += (index_version_id,)
            transaction.on_commit(lambda: _enqueue(*arguments))
    return why


def request_explanation(message_id: int) -> Explanation:
    """The intent part of request_why (refused for a message no intent model answered)."""
    why = request_why(message_id)
    if why.intent is None:
        raise ExplanationRefused("No intent model answered this message, so there is nothing to explain.")
    return why.intent


def _enqueue(message_id: int, version_id: int | None, index_version_id: int | None = None) -> None:
    from chatbot.nlu.tasks import explain_message

    if index_version_id is None:
        explain_message.delay(message_id, version_id)
    else:
        explain_message.delay(message_id, version_id, index_version_id)


def cached_why(message) -> Why | None:
    """What is stored for the message now (None when nobody asked yet)."""
    why = Why(message.pk, message.conversation_id, message.model_version_id, _index_version_id(message))
    if why.model_version_id is not None:
        why.intent = Explanation.objects.filter(message_id=message.pk, model_version_id=why.model_version_id).first()
    if why.index_version_id is not None:
        why.knowledge = KnowledgeExplanation.objects.filter(
            message_id=message.pk, index_version_id=why.index_version_id
        ).first()
    return why if why.parts else None


def cached_explanation(message_id: int, version_id: int | None) -> Explanation | None:
    if version_id is None:
        return None
    return Explanation.objects.filter(message_id=message_id, model_version_id=version_id).first()


# --- Computing one (the task) --------------------------------------------------------


def compute_explanation(message_id: int, version_id: int | None, index_version_id: int | None = None) -> Why | None:
    """Compute and store the asked parts; push the explanation to the agents. Safe to
    run twice: a ready part is not computed again, and of two runs at once only the
    first to store a part pushes."""
    Message = apps.get_model("conversations", "Message")
    message = Message.objects.filter(pk=message_id, sender=Message.Sender.VISITOR).first()
    if message is None:
        return None
    version = ModelVersion.objects.filter(pk=version_id).first() if version_id is not None else None
    index_known = index_version_id is not None and _index_version_exists(index_version_id)
    if version is None and not index_known:
        return None
    stored = False
    if version is not None:
        stored |= _compute(
            Explanation, {"model_version_id": version.pk}, message, lambda: explain_text(version, message.text)
        )
    if index_known:
        stored |= _compute(
            KnowledgeExplanation,
            {"index_version_id": index_version_id},
            message,
            lambda: explain_knowledge(index_version_id, message.text),
        )
    why = cached_why(message)
    if stored and why is not None:
        realtime.push(realtime.AGENTS_GROUP, explanation_event(message.conversation_id, why))
    return why


def _index_version_exists(index_version_id: int) -> bool:
    return apps.get_model("knowledge", "KnowledgeIndexVersion").objects.filter(pk=index_version_id).exists()


def _compute(model, key: dict, message, explain) -> bool:
    """Compute one part unless it is ready; store it. True when this run stored it."""
    row, _ = model.objects.get_or_create(message_id=message.pk, **key)
    if row.status == model.Status.READY:
        return False
    try:
        data = explain()
    except Exception as exc:  # a broken artifact or an empty text: the agent sees why
        log.exception("explaining message %s (%s) failed", message.pk, key)
        status, data, error = model.Status.FAILED, {}, f"{type(exc).__name__}: {exc}"
    else:
        status, error = model.Status.READY, ""
    with transaction.atomic():
        return bool(
            model.objects.filter(pk=row.pk)
            .exclude(status=model.Status.READY)
            .update(status=status, data=data, error=error, computed_at=timezone.now())
        )


def explain_knowledge(index_version_id: int, text: str) -> dict:
    from chatbot.knowledge import serving

    return serving.explain(index_version_id, text)


def explain_text(version: ModelVersion, text: str) -> dict:
    from inference.intents.explain import explain

    predictor = _predictor(version)
    examples, encoder = _examples_with_embeddings(version, predictor)
    explanation = explain(predictor, text, examples=examples, encoder=encoder, neighbours=NEAREST_EXAMPLES)
    data = explanation.to_dict()
    ids = dict(
        TrainingExample.objects.filter(text__in=[n["text"] for n in data["neighbours"]]).values_list("text", "id")
    )
    for neighbour in data["neighbours"]:
        neighbour["example_id"] = ids.get(neighbour["text"])
    return data


# --- What the worker keeps: predictors and example embeddings per model version ----------

_lock = threading.Lock()
# Keyed by (version id, artifact directory): a version's artifact never changes.
_predictors: dict[tuple, object] = {}  # -> inference.Predictor (the last few versions asked for)
_embeddings: dict[tuple, dict[str, np.ndarray]] = {}  # -> {example text: unit vector}
_encoders: dict[str, object] = {}  # base model -> SentenceEncoder
KEEP_VERSIONS = 2


def _predictor(version: ModelVersion):
    from chatbot.nlu import serving

    serving_now = serving.serving_predictor(version.pk, version.artifact_dir)
    if serving_now is not None:
        return serving_now
    key = _key(version)
    with _lock:
        if key not in _predictors:
            from inference import Predictor

            check_pinned(version.artifact_dir, version.artifact_sha256)
            predictor = Predictor.load(
                version.artifact_dir, device=settings.INFERENCE_DEVICE, threads=settings.INFERENCE_THREADS
            )
            _predictors[key] = predictor
            for old in list(_predictors)[:-KEEP_VERSIONS]:
                _predictors.pop(old, None)
                _embeddings.pop(old, None)
        return _predictors[key]


def _key(version: ModelVersion) -> tuple:
    return (version.pk, version.artifact_dir)


class _CachedEncoder:
    """A SentenceEncoder that answers the training examples from this version's
    cache, so a second explanation encodes only the visitor's text."""

    def __init__(self, encoder, cache: dict[str, np.ndarray]) -> None:
        self.encoder, self.cache = encoder, cache

    def encode(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 1 and texts[0] not in self.cache:
            return self.encoder.encode(texts)  # the visitor's text: not kept
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts]) if texts else self.encoder.encode(texts)


def _examples_with_embeddings(version: ModelVersion, predictor):
    """The training examples of the model's intents (as the database has them now)
    and an encoder that has their embeddings cached for this version."""
    from inference import Example
    from inference.encoder import SentenceEncoder

    rows = TrainingExample.objects.filter(intent__name__in=list(predictor.labels)).values_list("text", "intent__name")
    examples = [Example(text=text, intent=intent) for text, intent in rows]
    base_model = predictor.config.base_model
    with _lock:
        if base_model not in _encoders:
            _encoders[base_model] = SentenceEncoder(base_model, device=settings.INFERENCE_DEVICE)
        cache = _embeddings.setdefault(_key(version), {})
    return examples, _CachedEncoder(_encoders[base_model], cache)


# --- What agents are shown ------------------------------------------------------------


def payload(why: Why) -> dict:
    """The explanation as the dashboard reads it (JSON): the intent part's fields, and
    `knowledge` when the help center was asked."""
    body = {"message_id": why.message_id, "model_version": why.model_version_id, "status": why.status}
    if why.intent is not None and why.intent.status == Explanation.Status.READY:
        body["explanation"] = with_edit_links(why.intent.data)
    if why.intent is not None and why.intent.status == Explanation.Status.FAILED:
        body["error"] = why.intent.error
    if why.knowledge is not None:
        part = {"status": why.knowledge.status}
        if why.knowledge.status == KnowledgeExplanation.Status.READY:
            part["data"] = why.knowledge.data
        if why.knowledge.status == KnowledgeExplanation.Status.FAILED:
            part["error"] = why.knowledge.error
        body.update(index_version=why.index_version_id, knowledge=part)
    return body


def with_edit_links(data: dict) -> dict:
    """The neighbours with the admin page that edits each example (where it still exists)."""
    neighbours = [
        {**n, "edit_url": reverse("admin:nlu_trainingexample_change", args=[n["example_id"]])}
        if n.get("example_id")
        else n
        for n in data.get("neighbours", [])
    ]
    return {**data, "neighbours": neighbours}


def explanation_event(conversation_id, why: Why) -> dict:
    """For agents who opened the conversation (AgentConsumer.message_explanation)."""
    return {"type": "message.explanation", "conversation_id": str(conversation_id), **payload(why)}


def word_shades(data: dict) -> list[dict]:
    """The text cut into pieces, each word with its weight scaled to 0..1 against the
    strongest, for pages that highlight it (the admin's templates)."""
    text, words = data.get("text", ""), data.get("words", [])
    strongest = max((abs(w["weight"]) for w in words), default=0.0) or 1.0
    pieces, at = [], 0
    for word in words:
        if word["start"] > at:
            pieces.append({"text": text[at : word["start"]], "weight": None})
        pieces.append(
            {
                "text": text[word["start"] : word["end"]],
                "weight": word["weight"],
                "shade": round(abs(word["weight"]) / strongest, 2),
                "negative": word["weight"] < 0,
            }
        )
        at = word["end"]
    if at < len(text):
        pieces.append({"text": text[at:], "weight": None})
    return pieces


def for_page(message_id: int) -> dict:
    """What an admin page shows (the review inbox item, the message view): the cached
    explanation, else one asked for now (the page reloads until it is ready)."""
    try:
        why = request_why(message_id)
    except ExplanationRefused as exc:
        return {"refused": str(exc)}
    context = {"row": why.intent, "status": why.status, "knowledge": why.knowledge}
    if why.intent is not None and why.intent.status == Explanation.Status.READY:
        context.update(data=with_edit_links(why.intent.data), pieces=word_shades(why.intent.data))
    return context
