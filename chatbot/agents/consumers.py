"""The agents' websocket (/ws/agent/): the live queue, presence, the open
conversation's messages and typing. Actions go through the dashboard's POST
views; this socket only carries events.

Client frames: {"type": "ping"} (heartbeat), {"type": "open", "conversation_id"},
{"type": "typing", "on": bool}. Server frames: hello, presence, queue, message,
prediction, suggestions, articles, explanation, status, typing, pong, opened, error.

The socket lives no longer than the agent's login: it re-checks the session and the
agent permission on every frame, every heartbeat period, and at once when the user
logs out or loses the permission (agents.signals); then it closes with 4403 and
sends nothing more.
"""

import asyncio
import contextlib
import json
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chatbot import realtime
from chatbot.agents import presence, services
from chatbot.conversations import events
from chatbot.conversations.models import Conversation, Message

CLOSE_FORBIDDEN = 4403


class AgentConsumer(AsyncWebsocketConsumer):
    agent = None
    opened: str | None = None
    session_key: str | None = None
    # Seconds between the server's own re-checks of the login (a script that never
    # sends a frame is re-checked too).
    recheck_s: float = presence.HEARTBEAT_S
    _recheck_task: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = await database_sync_to_async(services.is_agent)(user)
        # Accept first so the browser sees the close code, not a failed handshake.
        await self.accept()
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.agent = user
        self.session_key = self.scope["session"].session_key
        await self.channel_layer.group_add(realtime.agent_group(user.pk), self.channel_name)
        await self.channel_layer.group_add(realtime.AGENTS_GROUP, self.channel_name)
        await database_sync_to_async(presence.connect)(user.pk, self.channel_name)
        await self.send_json(
            {
                "type": "hello",
                "agent": {"id": user.pk, "name": events.display_name(user)},
                "heartbeat_s": presence.HEARTBEAT_S,
            }
        )
        self._recheck_task = asyncio.create_task(self._recheck_periodically())

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> bool:
        """Leave every group and go offline; once (a revoked socket leaves before it
        closes). False when it had already left."""
        agent, self.agent = self.agent, None
        if agent is None:
            return False
        if self._recheck_task is not None and self._recheck_task is not asyncio.current_task():
            self._recheck_task.cancel()
        await self.channel_layer.group_discard(realtime.agent_group(agent.pk), self.channel_name)
        await self.channel_layer.group_discard(realtime.AGENTS_GROUP, self.channel_name)
        if self.opened:
            await self.channel_layer.group_discard(realtime.conversation_group(self.opened), self.channel_name)
        await database_sync_to_async(presence.disconnect)(self.channel_name)
        return True

    async def send_json(self, content: dict) -> None:
        if self.agent is None:
            return  # revoked (or never let in): nothing more leaves this socket
        await self.send(text_data=json.dumps(content))

    # --- The login, re-checked ------------------------------------------------------

    async def recheck(self) -> bool:
        """True while the login is still good; else the socket is closed."""
        agent = self.agent
        if agent is None:
            return False
        if await database_sync_to_async(services.login_still_valid)(self.session_key, agent.pk):
            return True
        if await self._leave():
            await self.close(code=CLOSE_FORBIDDEN)
        return False

    async def _recheck_periodically(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while self.agent is not None:
                await asyncio.sleep(self.recheck_s)
                await self.recheck()

    async def agent_recheck(self, event: dict) -> None:
        await self.recheck()

    # --- Frames from the dashboard ---------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not await self.recheck():
            return
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_json(
                {"type": "error", "code": "invalid_json", "message": "Send a JSON object with a type."}
            )
            return
        kind = frame["type"]
        if kind == "ping":
            await database_sync_to_async(presence.heartbeat)(self.agent.pk, self.channel_name)
            await self.send_json({"type": "pong"})
        elif kind == "open":
            await self.on_open(frame.get("conversation_id"))
        elif kind == "typing":
            await self.on_typing(bool(frame.get("on")))
        else:
            await self.send_json({"type": "error", "code": "unknown_type", "message": "Unknown frame type."})

    async def on_open(self, conversation_id: object) -> None:
        """Watch one conversation (a tab shows one at a time)."""
        try:
            conversation_id = str(uuid.UUID(str(conversation_id)))
        except ValueError:
            conversation_id = None
        exists = conversation_id and await Conversation.objects.filter(pk=conversation_id).aexists()
        if not exists:
            await self.send_json({"type": "error", "code": "not_found", "message": "No such conversation."})
            return
        if self.opened:
            await self.channel_layer.group_discard(realtime.conversation_group(self.opened), self.channel_name)
        self.opened = conversation_id
        await self.channel_layer.group_add(realtime.conversation_group(conversation_id), self.channel_name)
        await self.send_json({"type": "opened", "conversation_id": conversation_id})

    async def on_typing(self, on: bool) -> None:
        if not self.opened:
            return
        holds = await Conversation.objects.filter(
            pk=self.opened, status=Conversation.Status.WITH_AGENT, assigned_agent=self.agent
        ).aexists()
        if holds:
            event = {**events.agent_typing_event(self.agent, on), "conversation_id": self.opened}
            await self.channel_layer.group_send(realtime.conversation_group(self.opened), event)

    # --- Events from the channel layer -------------------------------------------

    async def queue_update(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "queue",
                "conversation_id": event["conversation_id"],
                "status": event["status"],
                "assigned_agent_id": event.get("assigned_agent_id"),
                "entered_queue": event.get("entered_queue", False),
                "visitor_message": event.get("visitor_message", False),
            }
        )

    async def presence_update(self, event: dict) -> None:
        await self.send_json({"type": "presence", "online": event["online"]})

    async def chat_message(self, event: dict) -> None:
        frame = event["message"]
        message = (
            await Message.objects.select_related("author").filter(pk=frame["message_id"]).afirst()
        )  # the visitor's frame lacks what only agents see
        if message is not None:
            frame = events.agent_message_frame(message)
        await self.send_json(
            {"type": "message", "conversation_id": event.get("conversation_id", self.opened), "message": frame}
        )

    async def message_prediction(self, event: dict) -> None:
        if event["conversation_id"] == self.opened:
            await self.send_json({**event, "type": "prediction"})

    async def reply_suggestions(self, event: dict) -> None:
        if event["conversation_id"] == self.opened:
            await self.send_json({**event, "type": "suggestions"})

    async def article_suggestions(self, event: dict) -> None:
        if event["conversation_id"] == self.opened:
            await self.send_json({**event, "type": "articles"})

    async def message_explanation(self, event: dict) -> None:
        if event["conversation_id"] == self.opened:
            await self.send_json({**event, "type": "explanation"})

    async def chat_status(self, event: dict) -> None:
        await self.send_json({"type": "status", "conversation_id": event["conversation_id"], "status": event["status"]})

    async def chat_typing(self, event: dict) -> None:
        if event["sender"] == "visitor":
            await self.send_json(
                {"type": "typing", "conversation_id": self.opened, "sender": "visitor", "on": event["on"]}
            )
