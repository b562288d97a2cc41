"""Realistic history for demos and benchmarks: visitors asking, the bot answering
or falling back, handoffs to agents who answer after a while, abandoned waits,
ratings and thumbs, reply suggestions, and two intent model versions (the newer
one resolves more). Rows are written in bulk (no signals), then the outcome
finalisation runs on them exactly as the beat task would.
"""

import contextlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from chatbot.analytics import outcomes
from chatbot.analytics.models import SeedRun, UnansweredMessage
from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.nlu.models import Feedback, ModelVersion
from chatbot.replies.models import SuggestionEvent

DEMO_USER_AGENT = "seed_analytics demo data"
BENCH_USER_AGENT = "seed_analytics"
FALLBACK_TEXT = "Sorry, I didn't quite get that. Could you rephrase it, or would you like to talk to a person?"
HANDOFF_TEXT = "I'm handing you over to a member of our support team. Someone will reply here shortly."

# (intent, visitor questions, the bot's answer)
KNOWN = [
    (
        "order_status",
        ["where is my order", "has my parcel shipped yet", "track my order NW-123456"],
        "You can track your order from the link in your confirmation email.",
    ),
    (
        "returns",
        ["how do I return an item", "can I send this back", "return policy please"],
        "You can return any item within 30 days from your account page.",
    ),
    (
        "shipping_costs",
        ["how much is shipping", "is delivery free", "shipping price to Germany"],
        "Shipping is free above 50 EUR, 4.90 EUR below.",
    ),
    (
        "opening_hours",
        ["when are you open", "what are your opening hours", "are you open on sunday"],
        "Our support team is there Monday to Friday, 9:00 to 18:00.",
    ),
    (
        "payment_methods",
        ["can I pay with paypal", "which cards do you accept", "do you take apple pay"],
        "We accept cards, PayPal and Apple Pay.",
    ),
    (
        "cancel_order",
        ["cancel my order", "I want to cancel the order I placed", "stop my order please"],
        "Orders can be cancelled until they ship, from your account page.",
    ),
    ("greeting", ["hello", "hi there", "good morning"], "Hello! How can I help you today?"),
]
# Questions the bot has no intent for: what "top unanswered" should surface, in groups.
UNKNOWN = [
    ["do you sell gift cards", "can I buy a gift card", "gift vouchers available?", "are there gift certificates"],
    ["do you have a student discount", "any discount for students", "student deal?"],
    ["can I change my delivery address", "update the shipping address on my order", "wrong address on my order"],
    ["is this jacket waterproof", "are your jackets water resistant", "will the coat keep rain out"],
    ["do you ship to australia", "international delivery to sydney?", "can you deliver to australia"],
    ["my discount code does not work", "promo code invalid", "coupon not accepted at checkout"],
]
AGENT_REPLIES = [
    "Hi, I'm looking into this for you now.",
    "Thanks for waiting! Let me check that.",
    "I can help with that.",
]
HANDOFF_REASONS = ["fallback", "requested", "thumbs_down"]
AGENT_NAMES = [("seed-agent-1", "Sam"), ("seed-agent-2", "Priya"), ("seed-agent-3", "Jonas")]


@contextlib.contextmanager
def stored_timestamps():
    """Let bulk inserts keep the historical times we give them (auto_now would overwrite them)."""
    fields = [
        f
        for model in (Visitor, Conversation, Message, Feedback, SuggestionEvent)
        for f in model._meta.fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, now, add in saved:
            f.auto_now, f.auto_now_add = now, add


@dataclass
class Batch:
    visitors: list = field(default_factory=list)
    conversations: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    feedback: list = field(default_factory=list)
    suggestions: list = field(default_factory=list)


class Seeder:
    def __init__(self, *, days: int, demo: bool, seed: int, now: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.demo = demo
        self.now = now or timezone.now()
        self.user_agent = DEMO_USER_AGENT if demo else BENCH_USER_AGENT
        self.next_id = {
            model: (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
            for model in (Visitor, Message, Feedback, SuggestionEvent)
        }
        self.old_version, self.new_version = self._versions()
        self.agents = self._agents()

    def _id(self, model) -> int:
        value = self.next_id[model]
        self.next_id[model] += 1
        return value

    def _versions(self) -> tuple[ModelVersion, ModelVersion]:
        """The active version answers the recent half of the history; an older one
        (no artifact: history only) answered before it."""
        new = ModelVersion.objects.filter(is_active=True).first()
        if new is None:
            new = ModelVersion.objects.create(
                status=ModelVersion.Status.FAILED,
                model_id="seed-new",
                error="seed_analytics: history only, no artifact",
            )
        old = ModelVersion.objects.create(
            status=ModelVersion.Status.FAILED, model_id="seed-old", error="seed_analytics: history only, no artifact"
        )
        return old, new

    def _agents(self) -> list:
        User = get_user_model()
        group = Group.objects.filter(name="Agents").first()
        agents = []
        for username, first_name in AGENT_NAMES:
            user, created = User.objects.get_or_create(username=username, defaults={"first_name": first_name})
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                if group is not None:
                    user.groups.add(group)
            agents.append(user)
        return agents

    # --- One conversation ---------------------------------------------------------

    def _start_time(self) -> datetime:
        """Busier on weekdays and in the day than at night."""
        while True:
            at = self.now - timedelta(seconds=self.rng.uniform(0, self.days * 86400))
            weight = (1.0 if at.weekday() < 5 else 0.5) * (1.0 if 8 <= at.hour < 20 else 0.25)
            if self.rng.random() < weight:
                return at

    def conversation(self, batch: Batch) -> None:
        rng = self.rng
        started = self._start_time()
        # The newer version took over two weeks ago (or halfway, for a short history).
        newer = started > self.now - timedelta(days=min(14, self.days / 2))
        version = self.new_version if newer else self.old_version
        resolve_chance = 0.66 if newer else 0.54
        roll = rng.random()
        kind = (
            "resolved" if roll < resolve_chance
            else "unanswered" if roll < resolve_chance + 0.14
            else "abandoned" if roll < resolve_chance + 0.19
            else "handed_off"
        )  # fmt: skip
        visitor_id = self._id(Visitor)
        batch.visitors.append(
            Visitor(
                id=visitor_id,
                token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
                name="Demo visitor" if self.demo else "",
                page_url="https://demo.invalid/shop" if self.demo else "",
                user_agent=self.user_agent,
                created_at=started,
                last_seen_at=started,
            )
        )
        conversation = Conversation(id=uuid.uuid4(), visitor_id=visitor_id, created_at=started)
        messages: list[Message] = []
        clock = [started]

        def say(sender: str, text: str, pause: float, **fields) -> Message:
            clock[0] += timedelta(seconds=pause)
            message = Message(
                id=self._id(Message),
                conversation_id=conversation.id,
                seq=len(messages) + 1,
                sender=sender,
                text=text,
                created_at=clock[0],
                **fields,
            )
            messages.append(message)
            return message

        def ask_known() -> Message:
            intent, questions, answer = rng.choice(KNOWN)
            confidence = rng.uniform(0.78, 0.99)
            asked = say(
                "visitor",
                rng.choice(questions),
                rng.uniform(5, 60),
                intent=intent,
                confidence=confidence,
                model_version_id=version.pk,
            )
            reply = say(
                "bot",
                answer,
                rng.uniform(0.2, 1.5),
                intent=intent,
                confidence=confidence,
                model_version_id=version.pk,
                reply_to_id=asked.pk,
            )
            if rng.random() < 0.1:
                batch.feedback.append(
                    Feedback(
                        id=self._id(Feedback),
                        message_id=asked.pk,
                        source=Feedback.Source.THUMBS_UP,
                        predicted_intent=intent,
                        confidence=confidence,
                        created_at=reply.created_at,
                    )
                )
            return reply

        def ask_unknown() -> Message:
            text = rng.choice(rng.choice(UNKNOWN))
            confidence = rng.uniform(0.1, 0.45)
            intent = rng.choice(KNOWN)[0]
            asked = say(
                "visitor", text, rng.uniform(5, 60), intent=intent, confidence=confidence, model_version_id=version.pk
            )
            reply = say(
                "bot",
                FALLBACK_TEXT,
                rng.uniform(0.2, 1.5),
                intent=intent,
                confidence=confidence,
                model_version_id=version.pk,
                reply_to_id=asked.pk,
                quick_replies=["Talk to a human"],
            )
            batch.feedback.append(
                Feedback(
                    id=self._id(Feedback),
                    message_id=asked.pk,
                    source=Feedback.Source.FALLBACK,
                    predicted_intent=intent,
                    confidence=confidence,
                    created_at=reply.created_at,
                )
            )
            return asked

        for _ in range(rng.choice((1, 1, 2))):
            ask_known()
        status = Conversation.Status.BOT
        if kind == "unanswered":
            if rng.random() < 0.3:
                batch.feedback.append(
                    Feedback(
                        id=self._id(Feedback),
                        message_id=messages[-2].pk,
                        source=Feedback.Source.THUMBS_DOWN,
                        predicted_intent=messages[-2].intent,
                        confidence=messages[-2].confidence,
                        created_at=clock[0],
                    )
                )
            else:
                ask_unknown()
        elif kind in ("handed_off", "abandoned"):
            reason = rng.choice(HANDOFF_REASONS)
            last_unknown = ask_unknown()
            conversation.handoff_reason = reason
            say(
                "bot",
                HANDOFF_TEXT,
                1,
                intent=last_unknown.intent,
                confidence=last_unknown.confidence,
                model_version_id=version.pk,
                reply_to_id=say("visitor", "talk to a human please", rng.uniform(5, 30)).pk,
            )
            say("system", f"Handed off to a person: {reason}.", 0.1)
            conversation.waiting_since = clock[0]
            status = Conversation.Status.WAITING_FOR_AGENT
            if kind == "handed_off":
                agent = rng.choice(self.agents)
                conversation.assigned_agent_id = agent.pk
                say("system", f"{agent.first_name} joined the conversation.", rng.lognormvariate(4.5, 1.0))
                first = say("agent", rng.choice(AGENT_REPLIES), rng.uniform(5, 40), author_id=agent.pk)
                say("visitor", "thanks, my order number is NW-123456", rng.uniform(10, 60))
                say("agent", "Thanks, that's sorted now.", rng.uniform(20, 120), author_id=agent.pk)
                status = Conversation.Status.WITH_AGENT
                if rng.random() < 0.6:
                    batch.suggestions.append(
                        SuggestionEvent(
                            id=self._id(SuggestionEvent),
                            message_id=last_unknown.pk,
                            agent_id=agent.pk,
                            suggestions=[{"text": t} for t in AGENT_REPLIES],
                            outcome=rng.choice(["sent_as_is", "edited", "ignored", "ignored"]),
                            reply_id=first.pk,
                            created_at=first.created_at,
                            decided_at=first.created_at,
                        )
                    )
        if kind in ("resolved", "handed_off") and rng.random() < 0.35:
            low = kind == "handed_off" and rng.random() < 0.3
            conversation.csat = rng.choice((1, 2, 3)) if low else rng.choice((4, 5, 5))
            if kind == "resolved" and conversation.csat <= 2:
                conversation.csat = 4
        ended = clock[0]
        recent = ended > self.now - timedelta(hours=24)
        if status != Conversation.Status.BOT or rng.random() < 0.5:
            if not recent or kind == "handed_off":
                status = Conversation.Status.CLOSED
                conversation.closed_at = ended + timedelta(seconds=30)
                ended = conversation.closed_at
        conversation.status = status
        conversation.last_seq = len(messages)
        conversation.updated_at = ended
        batch.conversations.append(conversation)
        batch.messages.extend(messages)

    # --- Many ---------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        with transaction.atomic():
            Visitor.objects.bulk_create(batch.visitors, batch_size=5000)
            Conversation.objects.bulk_create(batch.conversations, batch_size=5000)
            Message.objects.bulk_create(batch.messages, batch_size=5000)
            Feedback.objects.bulk_create(batch.feedback, batch_size=5000)
            texts = {m.pk: m.text for m in batch.messages if m.sender == "visitor"}
            UnansweredMessage.objects.bulk_create(
                [
                    UnansweredMessage(
                        feedback_id=f.pk, source=f.source, text=texts[f.message_id], created_at=f.created_at
                    )
                    for f in batch.feedback
                    if f.source in (Feedback.Source.FALLBACK, Feedback.Source.LOW_CONFIDENCE)
                ],
                batch_size=5000,
            )
            SuggestionEvent.objects.bulk_create(batch.suggestions, batch_size=5000)


def seed(conversations: int, *, days: int = 60, demo: bool = False, seed: int = 15, progress=None) -> dict:
    """Write `conversations` conversations of history and finalise their outcomes."""
    seeder = Seeder(days=days, demo=demo, seed=seed)
    written = messages = 0
    with stored_timestamps():
        while written < conversations:
            batch = Batch()
            for _ in range(min(5000, conversations - written)):
                seeder.conversation(batch)
            seeder.write(batch)
            written += len(batch.conversations)
            messages += len(batch.messages)
            if progress:
                progress(written, messages)
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Visitor, Message, Feedback, SuggestionEvent]):
            cursor.execute(sql)
    SeedRun.objects.create(conversations=conversations, demo=demo)
    finalised = outcomes.finalise_due(limit=conversations * 2)
    return {"conversations": written, "messages": messages, "finalised": finalised}
