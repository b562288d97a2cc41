"""The bot's decision as a pure function: no database, no settings."""

import pytest

from chatbot.conversations.decision import Action, BotPrediction, ConversationState, decide
from chatbot.conversations.models import HandoffReason

THRESHOLD = 0.6


def prediction(intent: str = "order_status", confidence: float = 0.9, out_of_scope: bool = False) -> BotPrediction:
    return BotPrediction(intent=intent, confidence=confidence, out_of_scope=out_of_scope, model_version_id=None)


def state(status: str = "bot", streak: int = 0, **facts) -> ConversationState:
    facts.setdefault("intent_known", True)
    return ConversationState(status=status, fallback_streak=streak, **facts)


def decided(conversation: ConversationState, said: BotPrediction, handoff_after: int = 2):
    return decide(conversation, said, confidence_threshold=THRESHOLD, handoff_after_fallbacks=handoff_after)


def test_a_confident_known_intent_is_answered_and_resets_the_streak():
    decision = decided(state(streak=1), prediction())
    assert (decision.action, decision.fallback_streak, decision.unanswered) == (Action.ANSWER, 0, False)


@pytest.mark.parametrize(
    "conversation, said",
    [
        (state(), prediction(confidence=0.59)),
        (state(), prediction(out_of_scope=True)),
        (state(intent_known=False), prediction(intent="deleted_intent")),
    ],
    ids=["below the threshold", "out of scope", "an intent the bot no longer has"],
)
def test_what_the_bot_does_not_understand_gets_the_fallback(conversation, said):
    decision = decided(conversation, said)
    assert (decision.action, decision.fallback_streak, decision.unanswered) == (Action.FALLBACK, 1, True)
    assert not decision.moves_to_queue


def test_the_confidence_threshold_itself_counts_as_confident():
    assert decided(state(), prediction(confidence=THRESHOLD)).action is Action.ANSWER


def test_fallbacks_in_a_row_hand_off_at_the_configured_count():
    decision = decided(state(streak=1), prediction(confidence=0.1))
    assert (decision.action, decision.reason, decision.fallback_streak) == (Action.HAND_OFF, HandoffReason.FALLBACK, 2)
    assert decision.moves_to_queue and decision.unanswered
    assert decided(state(), prediction(confidence=0.1), handoff_after=1).action is Action.HAND_OFF


def test_an_intent_that_asks_for_a_person_hands_off_at_once():
    decision = decided(state(streak=1, intent_hands_off=True), prediction(intent="human_handoff"))
    assert (decision.action, decision.reason, decision.fallback_streak) == (Action.HAND_OFF, HandoffReason.REQUESTED, 0)
    assert decision.moves_to_queue and not decision.unanswered


def test_a_disliked_previous_answer_hands_off_whatever_the_prediction():
    for said in (prediction(), prediction(confidence=0.1)):
        decision = decided(state(streak=1, previous_answer_disliked=True), said)
        assert (decision.action, decision.reason, decision.fallback_streak) == (
            Action.HAND_OFF,
            HandoffReason.THUMBS_DOWN,
            0,
        )


@pytest.mark.parametrize("status", ["with_agent", "closed"])
def test_the_bot_is_silent_while_a_person_has_the_conversation(status):
    decision = decided(state(status, streak=1, previous_answer_disliked=True), prediction(confidence=0.1))
    assert (decision.action, decision.fallback_streak, decision.unanswered) == (Action.SILENT, 1, False)


@pytest.mark.parametrize(
    "said, facts",
    [
        (prediction(confidence=0.1), {}),
        (prediction(intent="greeting"), {}),
        (prediction(intent="human_handoff"), {"intent_hands_off": True}),
        (prediction(), {"previous_answer_disliked": True}),
    ],
    ids=["misunderstood", "a greeting", "asking for a person again", "after a thumbs down"],
)
def test_in_the_queue_the_bot_stays_quiet_and_moves_nothing(said, facts):
    decision = decided(state("waiting_for_agent", streak=1, **facts), said)
    assert (decision.action, decision.moves_to_queue, decision.unanswered) == (Action.SILENT, False, False)
    assert decision.fallback_streak == 1


def test_in_the_queue_a_short_reminder_when_one_is_due():
    decision = decided(state("waiting_for_agent", queue_reminder_due=True), prediction(intent="greeting"))
    assert (decision.action, decision.moves_to_queue) == (Action.WAIT, False)


def test_an_explicit_request_wins_over_an_earlier_thumbs_down():
    decision = decided(state(intent_hands_off=True, previous_answer_disliked=True), prediction(intent="human_handoff"))
    assert (decision.action, decision.reason) == (Action.HAND_OFF, HandoffReason.REQUESTED)
