"""Every frame and event the server pushes over websockets, built in one place.

Frames are what a socket sends to its client; events travel through the channel
layer (see `chatbot.realtime`) and name the consumer method that handles them.
Builders only read what they are given: no queries, no imports of other apps.
"""

from chatbot.conversations.models import Conversation, Message

# Shown for an agent account that has no name yet; the dashboard login asks for one first.
ANONYMOUS_AGENT = "Support agent"


def display_name(user) -> str:
    """How an agent is named to visitors and colleagues: the user's full name, never the
    login name, which is half of a credential."""
    return user.get_full_name() or ANONYMOUS_AGENT


# --- Frames -----------------------------------------------------------------


def message_frame(message: Message) -> dict:
    """A message as the visitor's widget shows it."""
    frame = {
        "message_id": message.pk,
        "seq": message.seq,
        "sender": message.sender,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }
    if message.sender == Message.Sender.VISITOR and message.client_msg_id:
        frame["client_msg_id"] = str(message.client_msg_id)
    if message.sender == Message.Sender.BOT:
        frame.update(
            intent=message.intent,
            confidence=message.confidence,
            quick_replies=message.quick_replies,
            reply_to=message.reply_to_id,
            answer=message.answer,
            source=message.answer_source,
        )
        if message.answer_source == "article" and message.citation:
            # The passage is the message text; the card adds where it is from.
            frame["citation"] = {"title": message.citation.get("title", ""), "url": message.citation.get("url", "")}
            linked = message.citation.get("articles") or []
            if len(linked) > 1:  # an intent linked to several articles: one card each
                frame["citations"] = [{"title": a.get("title", ""), "url": a.get("url", "")} for a in linked]
    if message.sender == Message.Sender.AGENT and message.author is not None:
        frame["agent_name"] = display_name(message.author)
    return frame


def agent_message_frame(message: Message) -> dict:
    """A message as the dashboard shows it: the visitor's frame plus what only agents see."""
    frame = message_frame(message)
    frame["internal"] = message.internal
    if message.sender == Message.Sender.VISITOR:
        frame.update(intent=message.intent, confidence=message.confidence)
    if message.author is not None:
        frame["agent_name"] = display_name(message.author)
    return frame


# --- Events -----------------------------------------------------------------


def message_event(message: Message) -> dict:
    return {
        "type": "chat.message",
        "conversation_id": str(message.conversation_id),
        "internal": message.internal,
        "message": message_frame(message),
    }


def status_event(conversation: Conversation) -> dict:
    return {
        "type": "chat.status",
        "conversation_id": str(conversation.pk),
        "status": conversation.status,
        # Waiting as an offline message: the widget offers its email field.
        "offline": conversation.offline_message,
    }


def queue_event(conversation: Conversation, *, entered_queue: bool = False, visitor_message: bool = False) -> dict:
    """The inbox changed. `entered_queue` (a visitor starts waiting) and `visitor_message`
    (with the holder in `assigned_agent_id`) are what the dashboard notifies about."""
    return {
        "type": "queue.update",
        "conversation_id": str(conversation.pk),
        "status": conversation.status,
        "assigned_agent_id": conversation.assigned_agent_id,
        "entered_queue": entered_queue,
        "visitor_message": visitor_message,
    }


def prediction_event(conversation: Conversation, message_id: int, prediction) -> dict:
    """Agents watching the conversation see the predicted intent of each visitor message."""
    return {
        "type": "message.prediction",
        "conversation_id": str(conversation.pk),
        "message_id": message_id,
        "intent": prediction.intent,
        "confidence": prediction.confidence,
        "out_of_scope": prediction.out_of_scope,
    }


def visitor_typing_event(on: object) -> dict:
    return {"type": "chat.typing", "sender": "visitor", "on": bool(on)}


def agent_typing_event(agent, on: object) -> dict:
    return {"type": "chat.typing", "sender": "agent", "on": bool(on), "agent_name": display_name(agent)}


def presence_event(online_agents: list) -> dict:
    return {
        "type": "presence.update",
        "online": [{"id": agent.pk, "name": display_name(agent)} for agent in online_agents],
    }
