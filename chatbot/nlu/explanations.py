"""Why this answer: the explanation of one visitor message's intent by the model
version that answered it (inference.intents.explain), computed on the inference
queue when an agent or reviewer asks, kept per (message, model version) and
pushed to the agents when ready. Never on the path of a reply.

Only agents and staff see explanations: the visitor's socket has no frame that
asks for one, and the push goes to the agents' group, never a conversation's.
"""

import logging
import threading
from datetime import timedelta

import numpy as np
from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from chatbot import realtime
from chatbot.modelops.lifecycle import check_pinned
from chatbot.nlu.models import Explanation, ModelVersion, TrainingExample

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


def _answered_message(message_id: int):
    Message = apps.get_model("conversations", "Message")
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.sender != Message.Sender.VISITOR:
        raise ExplanationRefused("Only a visitor's message has an answer to explain.")
    if message.model_version_id is None:
        raise ExplanationRefused("No intent model answered this message, so there is nothing to explain.")
    return message


def request_explanation(message_id: int) -> Explanation:
    """The cached explanation of the message by the version that answered it, or a
    pending one with its task queued (once: a second request while it is pending
    queues nothing, unless the first task was lost). A failed one is tried again."""
    message = _answered_message(message_id)
    version_id = message.model_version_id
    with transaction.atomic():
        try:
            with transaction.atomic():
                row, created = Explanation.objects.get_or_create(message_id=message.pk, model_version_id=version_id)
        except IntegrityError:  # two requests at once: the other one created it
            row, created = Explanation.objects.get(message_id=message.pk, model_version_id=version_id), False
        retry = row.status == Explanation.Status.FAILED or (
            row.status == Explanation.Status.PENDING and row.requested_at < timezone.now() - STALE_PENDING
        )
        if retry:
            changed = Explanation.objects.filter(pk=row.pk, status=row.status).update(
                status=Explanation.Status.PENDING, error="", requested_at=timezone.now()
            )
            row.refresh_from_db()
            retry = bool(changed)
        if created or retry:
            transaction.on_commit(lambda: _enqueue(message.pk, version_id))
    return row


def _enqueue(message_id: int, version_id: int) -> None:
    from chatbot.nlu.tasks import explain_message

    explain_message.delay(message_id, version_id)


def cached_explanation(message_id: int, version_id: int | None) -> Explanation | None:
    if version_id is None:
        return None
    return Explanation.objects.filter(message_id=message_id, model_version_id=version_id).first()


# --- Computing one (the task) --------------------------------------------------------


def compute_explanation(message_id: int, version_id: int) -> Explanation | None:
    """Compute and store the explanation; push it to the agents. Safe to run twice:
    a ready explanation is not computed again, and of two runs at once only the
    first to store it pushes."""
    Message = apps.get_model("conversations", "Message")
    message = Message.objects.filter(pk=message_id, sender=Message.Sender.VISITOR).first()
    version = ModelVersion.objects.filter(pk=version_id).first()
    if message is None or version is None:
        return None
    row, _ = Explanation.objects.get_or_create(message_id=message_id, model_version_id=version_id)
    if row.status == Explanation.Status.READY:
        return row
    try:
        data = explain_text(version, message.text)
    except Exception as exc:  # a broken artifact or an empty text: the agent sees why
        log.exception("explaining message %s with v%s failed", message_id, version_id)
        status, data, error = Explanation.Status.FAILED, {}, f"{type(exc).__name__}: {exc}"
    else:
        status, error = Explanation.Status.READY, ""
    with transaction.atomic():
        stored = (
            Explanation.objects.filter(pk=row.pk)
            .exclude(status=Explanation.Status.READY)
            .update(status=status, data=data, error=error, computed_at=timezone.now())
        )
        row.refresh_from_db()
        if stored:
            realtime.push(realtime.AGENTS_GROUP, explanation_event(message.conversation_id, row))
    return row


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


def payload(row: Explanation) -> dict:
    """The explanation as the dashboard reads it (JSON)."""
    body = {
        "message_id": row.message_id,
        "model_version": row.model_version_id,
        "status": row.status,
    }
    if row.status == Explanation.Status.READY:
        body["explanation"] = with_edit_links(row.data)
    if row.status == Explanation.Status.FAILED:
        body["error"] = row.error
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


def explanation_event(conversation_id, row: Explanation) -> dict:
    """For agents who opened the conversation (AgentConsumer.message_explanation)."""
    return {"type": "message.explanation", "conversation_id": str(conversation_id), **payload(row)}


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
        row = request_explanation(message_id)
    except ExplanationRefused as exc:
        return {"refused": str(exc)}
    context = {"row": row}
    if row.status == Explanation.Status.READY:
        context.update(data=with_edit_links(row.data), pieces=word_shades(row.data))
    return context
