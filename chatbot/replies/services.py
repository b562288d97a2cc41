"""Reply suggestions as verbs: train a reply model version, activate it, suggest
replies for a visitor's message, and record what the agent did with them."""

import logging
import re
from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot import realtime
from chatbot.conversations.models import Conversation, Message
from chatbot.modelops.lifecycle import (  # the refusals keep their old address here
    ActivationRefused,  # noqa: F401 (raised by the lifecycle, caught by callers under this name)
    ModelKind,
    Trained,
    TrainingRefused,
    read_metrics,
)
from chatbot.replies import evaluation, pairs, serving
from chatbot.replies.models import ReplyModelVersion, SuggestionEvent

log = logging.getLogger(__name__)

# Only an agent who holds a conversation can reply, so only there are suggestions useful:
# none are made while it waits in the queue, and taking it over asks for them.
PERSON_IN_CHARGE = (Conversation.Status.WITH_AGENT,)
OPEN = ReplyModelVersion.OPEN_STATUSES


# --- The reply model kind --------------------------------------------------------


class ReplyModels(ModelKind):
    """The reply model kinds (one scope per kind): their trainer and evaluator;
    chatbot.modelops does the rest, held-out BLEU guard included."""

    model = ReplyModelVersion
    label = "Reply model"
    scope_fields = ("kind",)
    force_hint = "Use the 'force' action to activate anyway."

    @property
    def artifact_errors(self):
        from inference.replies import ReplyModelError

        return (ReplyModelError, OSError, ValueError)

    def train(self, version: ReplyModelVersion, progress, **options) -> Trained:
        from inference.replies import ReplyTrainConfig, train_reply_model

        train, holdout = evaluation.split_holdout(pairs.build_reply_pairs())
        config = replace(ReplyTrainConfig(kind=version.kind), **{**settings.REPLY_TRAIN_OPTIONS, **options})
        out_dir = settings.MODEL_DIR / "replies" / f"{version.kind}-v{version.pk}"

        def on_progress(step) -> None:
            progress(step.step / max(step.total_steps, 1), "training")

        path = train_reply_model(train, out_dir, config, progress=on_progress, overwrite=True)
        metrics = read_metrics(path)
        if holdout:
            metrics["holdout_pairs"] = len(holdout)
        fields = {"pair_count": len(train) + len(holdout), "metrics": metrics}
        return Trained(artifact_dir=path, holdout=holdout, fields=fields)

    def load(self, artifact_dir):
        from inference.replies import load_suggester

        return load_suggester(artifact_dir)

    def evaluate(self, loaded, holdout) -> dict:
        return evaluation.evaluate_on(loaded, holdout)

    def holdout_of(self, report: dict) -> list:
        return evaluation.holdout_of(report)

    def regression_problems(self, report: dict, baseline: dict) -> list[str]:
        return evaluation.activation_problems(report, baseline)

    def auto_activation_problems(self, version: ReplyModelVersion) -> list[str]:
        return evaluation.auto_activation_problems(version.report)

    def summary(self, report: dict, loaded) -> dict:
        return {"metrics": {"bleu": report["bleu"]}} if report else {}

    def enqueue(self, version_id: int) -> None:
        from chatbot.replies.tasks import train_reply_model_version

        train_reply_model_version.delay(version_id)


reply_models = ReplyModels()


# --- Training -------------------------------------------------------------------


def request_training(
    kind: str, *, user=None, activate_when_ready: bool = False, force_activation: bool = False
) -> ReplyModelVersion:
    """A queued version of ``kind``, or TrainingRefused while one of that kind is busy."""
    if kind not in ReplyModelVersion.Kind.values:
        raise TrainingRefused(f"Unknown reply model kind {kind!r}; use seq2seq or retrieval.")
    return reply_models.request(
        kind=kind, user=user, activate_when_ready=activate_when_ready, force_activation=force_activation
    )


def start_training(kind: str, *, user=None, activate_when_ready: bool = False) -> ReplyModelVersion:
    """request_training, then the run on the training queue once the row is committed."""
    version = request_training(kind, user=user, activate_when_ready=activate_when_ready)
    transaction.on_commit(lambda: reply_models.enqueue(version.pk))
    return version


def train_version(version_id: int, progress=None) -> ReplyModelVersion:
    """Build the pairs, train, score held-out BLEU (and the active version's on the same
    pairs), mark ready (or failed). Safe to run twice: only a queued version starts."""
    return reply_models.run(version_id, progress)


def retrain_if_due() -> list[ReplyModelVersion]:
    """Start training (and activation when ready, if the BLEU guard allows it) of each
    reply model kind once agents have written REPLY_RETRAIN_AFTER_REPLIES replies since
    that kind's newest version. A kind still training is left alone; its next check
    counts from it."""
    due_after = settings.REPLY_RETRAIN_AFTER_REPLIES
    if due_after <= 0:
        return []
    replies = Message.objects.filter(sender=Message.Sender.AGENT, internal=False)
    started = []
    for kind in ReplyModelVersion.Kind.values:
        latest = ReplyModelVersion.objects.filter(kind=kind).order_by("-created_at").first()
        new = replies.filter(created_at__gt=latest.created_at) if latest else replies
        if new.count() < due_after:
            continue
        try:
            started.append(start_training(kind, activate_when_ready=True))
        except TrainingRefused:
            continue
    if started:
        log.info("agents wrote %s+ new replies: retraining %s", due_after, ", ".join(str(v) for v in started))
    return started


# --- Activation -------------------------------------------------------------------


def activate_version(version_id: int, user=None, *, force: bool = False) -> ReplyModelVersion:
    """Make a ready version the active one of its kind; workers swap on their next
    suggestion. Refused for a version that is not ready, whose artifact does not load,
    or whose held-out BLEU falls below the active one's by more than
    REPLY_ACTIVATION_MAX_BLEU_DROP (unless forced)."""
    return reply_models.activate(version_id, user, force=force)


# --- Suggesting -----------------------------------------------------------------


def wants_suggestions(message_id: int) -> bool:
    """A person handles the message's conversation and a reply model is there to suggest."""
    return (
        Message.objects.filter(
            pk=message_id, sender=Message.Sender.VISITOR, conversation__status__in=PERSON_IN_CHARGE
        ).exists()
        and ReplyModelVersion.objects.filter(is_active=True, status=ReplyModelVersion.Status.READY).exists()
    )


def suggest_for_message(message_id: int, timeout_s: float | None = None) -> list[SuggestionEvent]:
    """Suggestions of the chosen model(s) for a visitor message in a conversation a
    person handles, each stored as a SuggestionEvent and pushed to the agents.
    Safe to run twice: a version suggests once per message. A model that fails is
    logged and shows nothing; the others still do."""
    message = (
        Message.objects.select_related("conversation").filter(pk=message_id, sender=Message.Sender.VISITOR).first()
    )
    if message is None or message.conversation.status not in PERSON_IN_CHARGE:
        return []
    versions = [
        version
        for version in serving.chosen_versions()
        if not SuggestionEvent.objects.filter(message=message, model_version=version).exists()
    ]
    if not versions:
        return []
    context = pairs.context_before(message.conversation, message.seq + 1)
    if not context:
        return []
    frames = [{"speaker": t.speaker, "text": t.text} for t in context]
    timeout_s = settings.REPLY_SUGGESTION_TIMEOUT_S if timeout_s is None else timeout_s
    events = []
    for version in versions:
        try:
            found = serving.suggester_for(version).suggest(frames, n=settings.REPLY_SUGGESTIONS_N, timeout_s=timeout_s)
        except Exception:  # no suggestion is better than a broken dashboard
            log.exception("reply model %s could not suggest for message %s", version, message_id)
            continue
        suggestions = [
            {"text": s.text, "score": round(float(s.score), 4)}
            for s in found
            if worth_showing(version, s.text, s.score)
        ]
        if suggestions:
            events.append(_show(message, version, suggestions))
    return events


# What PII masking leaves in training text: "[email]", "[order_id]"...
PLACEHOLDER = re.compile(r"\[[a-z_]+\]")


def min_score(kind: str) -> float:
    if kind == ReplyModelVersion.Kind.RETRIEVAL:
        return settings.REPLY_RETRIEVAL_MIN_SCORE
    return settings.REPLY_SEQ2SEQ_MIN_SCORE


def worth_showing(version: ReplyModelVersion, text: str, score: float) -> bool:
    """Never a reply with a masking placeholder in it (an agent would send "[email]"),
    nor one the model itself scores below the kind's relevance threshold."""
    return bool(text.strip()) and not PLACEHOLDER.search(text) and float(score) >= min_score(version.kind)


def _show(message: Message, version: ReplyModelVersion, suggestions: list[dict]) -> SuggestionEvent:
    with transaction.atomic():
        event, created = SuggestionEvent.objects.get_or_create(
            message=message,
            model_version=version,
            defaults={"suggestions": suggestions, "agent_id": message.conversation.assigned_agent_id},
        )
        if created:
            realtime.push(realtime.AGENTS_GROUP, suggestions_event(event))
    return event


def suggestions_event(event: SuggestionEvent) -> dict:
    """For agents who opened the conversation (AgentConsumer.reply_suggestions); never for visitors."""
    return {
        "type": "reply.suggestions",
        "conversation_id": str(event.message.conversation_id),
        "message_id": event.message_id,
        "event_id": event.pk,
        "version_id": event.model_version_id,
        "suggestions": event.suggestions,
    }


# --- Outcomes -----------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def record_outcome(reply: Message, event_id: object = None, inserted: bool = False) -> list[SuggestionEvent]:
    """Settle every suggestion still shown in the reply's conversation. One set at most
    is accepted: the one the agent inserted from (sent_as_is when the reply is one of its
    suggestions, edited when changed), or without an insertion the newest set the reply
    equals a suggestion of (sent_as_is). Every other set is ignored, so one reply never
    counts as two acceptances."""
    try:
        chosen = int(event_id) if event_id not in (None, "") else None
    except (TypeError, ValueError):
        chosen = None
    settled = []
    pending = list(
        SuggestionEvent.objects.filter(
            message__conversation_id=reply.conversation_id,
            message__seq__lt=reply.seq,
            outcome=SuggestionEvent.Outcome.SHOWN,
        ).order_by("-message__seq", "-pk")
    )
    inserted_from = next((e for e in pending if inserted and e.pk == chosen), None)
    accepted = inserted_from or next((e for e in pending if any(_same(reply.text, t) for t in e.texts)), None)
    for event in pending:
        if event is not accepted:
            outcome = SuggestionEvent.Outcome.IGNORED
        elif any(_same(reply.text, text) for text in event.texts):
            outcome = SuggestionEvent.Outcome.SENT_AS_IS
        else:
            outcome = SuggestionEvent.Outcome.EDITED
        changed = SuggestionEvent.objects.filter(pk=event.pk, outcome=SuggestionEvent.Outcome.SHOWN).update(
            outcome=outcome, reply=reply, agent=reply.author, decided_at=timezone.now()
        )
        if changed:
            event.outcome = outcome
            settled.append(event)
    return settled


def record_outcome_safely(reply: Message, event_id: object = None, inserted: bool = False) -> None:
    """record_outcome for the reply view: the reply is sent whatever happens here."""
    try:
        record_outcome(reply, event_id, inserted)
    except Exception:
        log.exception("could not record the suggestion outcome of message %s", reply.pk)


def acceptance_rate(version: ReplyModelVersion) -> float | None:
    """(sent as is + edited) over every event the version showed; None before it showed any."""
    events = SuggestionEvent.objects.filter(model_version=version)
    shown = events.count()
    if not shown:
        return None
    return events.filter(outcome__in=SuggestionEvent.ACCEPTED).count() / shown
