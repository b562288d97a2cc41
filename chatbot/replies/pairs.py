"""Training pairs for the reply model: what the customer and the company side had
said (the context) and what an agent answered next (the reply), PII masked.

Speakers: a visitor's turn is "customer"; an agent's (and the bot's, which is the
company side the customer saw) is "agent". System lines and internal notes are left
out: the customer never saw them. Only an agent's message is ever a reply, so the
model learns from people, not from the bot's canned answers.
"""

from collections.abc import Iterable

from chatbot.conversations.models import Conversation, Message
from chatbot.nlu.models import Intent
from chatbot.nlu.pii import mask_pii
from inference.replies.data import ReplyPair, Turn

CONTEXT_TURNS = 4
SPEAKER = {
    Message.Sender.VISITOR: "customer",
    Message.Sender.AGENT: "agent",
    Message.Sender.BOT: "agent",
}


def masked(text: str) -> str:
    return " ".join(mask_pii(text).split())


def turn_of(message: Message) -> Turn | None:
    speaker = SPEAKER.get(message.sender)
    text = masked(message.text)
    return Turn(speaker=speaker, text=text) if speaker and text else None


def context_before(conversation: Conversation, seq: int, turns: int = CONTEXT_TURNS) -> list[Turn]:
    """The newest ``turns`` turns the customer saw before message ``seq``, oldest first."""
    # Message.objects, not conversation.messages: the related manager would set
    # each row's conversation from a deferred conversation_id, a query per row.
    messages = (
        Message.objects.filter(conversation_id=conversation.pk, seq__lt=seq, internal=False, sender__in=list(SPEAKER))
        .order_by("-seq")
        .only("sender", "text")[: turns * 2]  # some may mask to nothing
    )
    found = [t for t in (turn_of(m) for m in messages) if t is not None][:turns]
    return list(reversed(found))


def pairs_from_conversations(turns: int = CONTEXT_TURNS) -> list[ReplyPair]:
    """One pair per agent reply (never a note, never the bot) that has something before it."""
    pairs: list[ReplyPair] = []
    handled = Conversation.objects.filter(messages__sender=Message.Sender.AGENT, messages__internal=False).distinct()
    for conversation in handled.iterator():
        window: list[Turn] = []
        for message in conversation.messages.filter(internal=False, sender__in=list(SPEAKER)).order_by("seq"):
            turn = turn_of(message)
            if turn is None:
                continue
            if message.sender == Message.Sender.AGENT and window:
                pairs.append(ReplyPair(context=tuple(window[-turns:]), reply=turn.text))
            window.append(turn)
    return pairs


def pairs_from_intents() -> list[ReplyPair]:
    """Each training example answered by one of its intent's responses (round-robin),
    so a fresh install has something to learn from before agents have answered."""
    pairs: list[ReplyPair] = []
    for intent in Intent.objects.prefetch_related("examples", "responses"):
        responses = [r for r in (masked(r.text) for r in intent.responses.all()) if r]
        if not responses or intent.handoff:
            continue
        for i, example in enumerate(intent.examples.all()):
            text = masked(example.text)
            if text:
                pairs.append(ReplyPair(context=(Turn("customer", text),), reply=responses[i % len(responses)]))
    return pairs


def build_reply_pairs(*, include_intents: bool = True) -> list[ReplyPair]:
    """The agents' replies first, then (optionally) the intents' responses; duplicates once."""
    pairs = pairs_from_conversations() + (pairs_from_intents() if include_intents else [])
    return list(_unique(pairs))


def _unique(pairs: Iterable[ReplyPair]) -> Iterable[ReplyPair]:
    seen: set[ReplyPair] = set()
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            yield pair
