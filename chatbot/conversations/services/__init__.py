"""What happens in a conversation: one function a verb, one module a job.

Consumers and tasks call these; they validate (`check_*`), change state inside
a transaction, and push the resulting events after commit. Callers use
`from chatbot.conversations import services` and `services.<name>`: every
public name of the modules below is here.
"""

from chatbot.conversations.decision import BotPrediction
from chatbot.conversations.events import message_event, message_frame, queue_event, status_event
from chatbot.conversations.services.bot import (
    FALLBACK_TEXT,
    OFFLINE_THANKS_TEXT,
    TALK_TO_HUMAN,
    WAITING_TEXT,
    answer_visitor_message,
    visitor_message_answered,
)
from chatbot.conversations.services.feedback import (
    identify,
    rating_recorded,
    record_article_feedback,
    record_rating,
    record_thumbs,
    was_answered,
)
from chatbot.conversations.services.handoff import (
    HANDOFF_TEXT,
    NO_AGENT_TEXT,
    OFFLINE_QUEUE_TEXT,
    QUEUE_TEXT,
    any_agent_online,
    availability,
    change_status,
    conversation_waiting,
    describe_wait,
    expected_reply_time,
    hand_off,
    hand_off_locked,
    register_agents_online_probe,
)
from chatbot.conversations.services.limits import RateLimited, SessionRefusal, check_frame, check_new_session
from chatbot.conversations.services.messages import (
    append_message,
    check_client_msg_id,
    check_rate_limit,
    check_visitor_text,
    lock_conversation,
    messages_after,
    receive_visitor_message,
    record_visitor_message,
)
from chatbot.conversations.services.offline import EMAIL_SAVED_TEXT, find_email, notify_team
from chatbot.conversations.services.protocol import ProtocolError
from chatbot.conversations.services.sessions import authenticate, delete_unused_sessions, start_session

__all__ = [
    "EMAIL_SAVED_TEXT",
    "OFFLINE_QUEUE_TEXT",
    "QUEUE_TEXT",
    "conversation_waiting",
    "describe_wait",
    "expected_reply_time",
    "find_email",
    "notify_team",
    "was_answered",
    "FALLBACK_TEXT",
    "HANDOFF_TEXT",
    "NO_AGENT_TEXT",
    "OFFLINE_THANKS_TEXT",
    "TALK_TO_HUMAN",
    "WAITING_TEXT",
    "BotPrediction",
    "ProtocolError",
    "answer_visitor_message",
    "any_agent_online",
    "availability",
    "append_message",
    "authenticate",
    "change_status",
    "check_client_msg_id",
    "check_rate_limit",
    "check_visitor_text",
    "hand_off",
    "hand_off_locked",
    "identify",
    "lock_conversation",
    "message_event",
    "message_frame",
    "messages_after",
    "queue_event",
    "receive_visitor_message",
    "record_article_feedback",
    "record_rating",
    "record_thumbs",
    "record_visitor_message",
    "register_agents_online_probe",
    "start_session",
    "status_event",
    "visitor_message_answered",
    "rating_recorded",
    "RateLimited",
    "SessionRefusal",
    "check_frame",
    "check_new_session",
    "delete_unused_sessions",
]
