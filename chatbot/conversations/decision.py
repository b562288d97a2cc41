"""What the bot does with one visitor message: a pure function of the
conversation's state and the model's prediction. No queries, no settings read;
`services.bot` gathers the facts, asks `decide`, then acts on the answer."""

import enum
from dataclasses import dataclass

from chatbot.conversations.models import Conversation, HandoffReason

Status = Conversation.Status


@dataclass(frozen=True)
class BotPrediction:
    """What the intent model said about one visitor message (plain data, from `inference`)."""

    intent: str
    confidence: float
    out_of_scope: bool
    model_version_id: int | None


@dataclass(frozen=True)
class ConversationState:
    """What the decision needs to know about the conversation and the bot's intents."""

    status: str
    fallback_streak: int
    # Did the visitor give a thumbs-down to the last answer before this message?
    previous_answer_disliked: bool = False
    # Is the predicted intent one the bot knows, and does it ask for a person?
    intent_known: bool = False
    intent_hands_off: bool = False
    # Waiting for a person: was the last line said to the visitor long enough ago
    # for one more "still in the queue"?
    queue_reminder_due: bool = False
    # Does the intent have a response to give? (One without asks the knowledge base.)
    intent_has_response: bool = True
    # Does the intent link to (published) help-center articles? They answer it instead of a text.
    intent_links_articles: bool = False
    # Did the knowledge base find a passage scoring at or above its threshold?
    knowledge_confident: bool = False


class Action(enum.Enum):
    SILENT = "silent"  # a person is in charge: the bot says nothing
    ANSWER = "answer"  # one of the intent's responses
    ANSWER_FROM_ARTICLE = "article"  # a help-center passage, with its citation
    ANSWER_WITH_LINKED_ARTICLES = "linked_articles"  # the intent's linked articles, one card each
    FALLBACK = "fallback"  # "could you rephrase?" with a "talk to a human" chip
    WAIT = "wait"  # already in the queue: one short "still in the queue" line
    HAND_OFF = "hand_off"  # to a person, for `reason`


@dataclass(frozen=True)
class Decision:
    action: Action
    fallback_streak: int
    reason: HandoffReason | None = None
    # The bot did not understand: the message goes to review as a fallback.
    unanswered: bool = False
    # The conversation moves from the bot to the agents' queue.
    moves_to_queue: bool = False


def decide(
    state: ConversationState, prediction: BotPrediction, *, confidence_threshold: float, handoff_after_fallbacks: int
) -> Decision:
    if state.status in (Status.WITH_AGENT, Status.CLOSED):
        return Decision(Action.SILENT, state.fallback_streak)
    if state.status == Status.WAITING_FOR_AGENT:
        # The visitor waits for a person: the bot neither answers nor offers a
        # person again; at most a short reminder now and then.
        return Decision(Action.WAIT if state.queue_reminder_due else Action.SILENT, state.fallback_streak)
    confident = state.intent_known and not prediction.out_of_scope and prediction.confidence >= confidence_threshold
    # An explicit request for a person wins over the thumbs-down rule.
    if confident and state.intent_hands_off:
        return Decision(Action.HAND_OFF, 0, HandoffReason.REQUESTED, moves_to_queue=True)
    if state.previous_answer_disliked:
        return Decision(Action.HAND_OFF, 0, HandoffReason.THUMBS_DOWN, moves_to_queue=True)
    if confident and state.intent_links_articles:
        return Decision(Action.ANSWER_WITH_LINKED_ARTICLES, 0)
    if confident and state.intent_has_response:
        return Decision(Action.ANSWER, 0)
    if state.knowledge_confident:
        return Decision(Action.ANSWER_FROM_ARTICLE, 0)
    streak = state.fallback_streak + 1
    if streak >= handoff_after_fallbacks:
        return Decision(Action.HAND_OFF, streak, HandoffReason.FALLBACK, unanswered=True, moves_to_queue=True)
    return Decision(Action.FALLBACK, streak, unanswered=True)


def asks_knowledge(state: ConversationState, prediction: BotPrediction, *, confidence_threshold: float) -> bool:
    """Is the knowledge base asked? Only when the bot speaks and no confident intent
    answers or hands off: `decide` never reaches the knowledge base otherwise."""
    if state.status != Status.BOT or state.previous_answer_disliked:
        return False  # a person has it or is awaited, or the visitor asked for one
    confident = state.intent_known and not prediction.out_of_scope and prediction.confidence >= confidence_threshold
    return not (confident and (state.intent_hands_off or state.intent_has_response or state.intent_links_articles))
