"""The visitor's websocket (/ws/chat/): frames in and out, as docs/protocol.md says.

Decisions live in `services`; this module parses frames, calls them and
forwards channel-layer events to the socket.
"""

import asyncio
import json
import logging
import math
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatbot import realtime
from chatbot.conversations import events, services
from chatbot.conversations.models import HandoffReason
from chatbot.conversations.services import ProtocolError
from chatbot.ops.db_threads import database_sync_to_async
from chatbot.ops.resilience import TRANSIENT_ERRORS, FaultTolerantConsumer

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_TRY_AGAIN_LATER = 1013


def _history_and_support(conversation, last_seq: int) -> tuple[list[dict], dict]:
    """What a history frame carries, read on one trip to a database thread."""
    return services.messages_after(conversation, last_seq), services.availability()


class ChatConsumer(FaultTolerantConsumer, AsyncWebsocketConsumer):
    conversation = None
    auth_timer: asyncio.Task | None = None

    async def connect(self) -> None:
        self.own_client_ids: set[str] = set()
        self.acked_ids: set[str] = set()  # client_msg_ids acked on this socket
        # The address the limits count (behind the proxy: X-Forwarded-For, via uvicorn).
        self.client_host = (self.scope.get("client") or [None])[0]
        self.refusals: dict[str, tuple[services.RateLimited, float]] = {}  # kind: (refusal, monotonic end)
        await self.accept()
        self.auth_timer = asyncio.create_task(self._close_if_not_authenticated())

    async def _close_if_not_authenticated(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT_S)
        if self.conversation is None:
            await self._refuse("No valid auth frame in time.")

    async def disconnect(self, code: int) -> None:
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        if self.conversation is not None:
            try:
                await self.channel_layer.group_discard(
                    realtime.conversation_group(self.conversation.pk), self.channel_name
                )
            except TRANSIENT_ERRORS as exc:  # the membership expires with the layer's group expiry
                log.warning("leaving the conversation group failed: %s", exc)

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content))

    async def send_error(self, code: str, message: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    async def _refuse(self, message: str) -> None:
        await self.send_error("unauthorized", message)
        await self.close(code=CLOSE_UNAUTHORIZED)

    # --- Frames from the visitor ---------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error("invalid_json", "Binary frames are not accepted; send JSON text.")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.send_error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_error("invalid_json", 'A frame is a JSON object with a "type".')
            return
        kind = frame["type"]
        if self.conversation is None:
            if kind != "auth":
                await self._refuse("Send an auth frame first.")
                return
            try:
                await self.on_auth(frame)
            except TRANSIENT_ERRORS as exc:
                # Not authenticated yet: say so and let the client reconnect with backoff.
                await self._unavailable(exc, frame)
                self.conversation = None
                await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        handler = self.HANDLERS.get(kind)
        if handler is None:
            await self.send_error("unknown_type", f"Unknown frame type {kind[:50]!r}.")
            return
        try:
            if kind != "user_message":  # counted after its resend check (services.receive_visitor_message)
                await self._check_limits(kind)
            await handler(self, frame)
        except ProtocolError as error:
            await self.send_error(error.code, error.message, **self._echo(frame), **error.extra)
        except TRANSIENT_ERRORS as exc:
            await self._unavailable(exc, frame)

    async def _check_limits(self, kind: str) -> None:
        """Every frame type has its limits (services.check_frame). Once refused, the
        same kind is refused here until its window ends, without asking the cache:
        a flood then costs no more than reading it."""
        self._refused_before(kind)
        try:
            await database_sync_to_async(services.check_frame)(kind, self.client_host, self.conversation.visitor_id)
        except services.RateLimited as error:
            self.refusals[kind] = (error, time.monotonic() + error.retry_after)
            raise

    def _refused_before(self, kind: str) -> None:
        """Raise RateLimited while this socket's refusal of `kind` lasts."""
        refusal = self.refusals.get(kind)
        if refusal is not None and time.monotonic() < refusal[1]:
            raise services.RateLimited(refusal[0].message, math.ceil(refusal[1] - time.monotonic()), kind)

    async def _unavailable(self, exc: Exception, frame: dict) -> None:
        # A database or Redis fault: an error frame, not a dropped socket (docs/protocol.md).
        log.warning("%s frame failed on a database or Redis fault: %s", frame.get("type"), exc)
        await self.send_error(
            "unavailable", "The server cannot handle this right now; send it again shortly.", **self._echo(frame)
        )

    @staticmethod
    def _echo(frame: dict) -> dict:
        client_msg_id = frame.get("client_msg_id")
        return {"client_msg_id": client_msg_id} if isinstance(client_msg_id, str) else {}

    async def on_auth(self, frame: dict) -> None:
        last_seq = frame.get("last_seq", 0)
        if not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0:
            last_seq = 0
        conversation = await database_sync_to_async(services.authenticate)(
            frame.get("token"), frame.get("conversation_id")
        )
        if conversation is None:
            await self._refuse("The token is not valid for this conversation.")
            return
        self.conversation = conversation
        self.auth_timer.cancel()
        self.history_from = last_seq
        await self.channel_layer.group_add(realtime.conversation_group(conversation.pk), self.channel_name)
        await self._send_history(last_seq)

    async def on_channel_layer_recovered(self) -> None:
        # Redis may have come back empty: rejoin, and send what the outage may have lost.
        if self.conversation is not None:
            await self.channel_layer.group_add(realtime.conversation_group(self.conversation.pk), self.channel_name)
            await database_sync_to_async(self.conversation.refresh_from_db)(fields=["status", "offline_message"])
            await self._send_history(self.history_from)

    async def _send_history(self, last_seq: int) -> None:
        conversation = self.conversation
        history, support = await database_sync_to_async(_history_and_support)(conversation, last_seq)
        await self.send_json(
            {
                "type": "history",
                "conversation_id": str(conversation.pk),
                "status": conversation.status,
                "offline": conversation.offline_message,
                # {"open": bool, "replies_in": "2 hours"}: the header's "Typically replies in ..."
                "support": support,
                "messages": history,
            }
        )

    async def on_user_message(self, frame: dict) -> None:
        text = services.check_visitor_text(frame.get("text"))
        client_msg_id = services.check_client_msg_id(frame.get("client_msg_id"))
        # Refused here, without the database, while this socket's last refusal lasts;
        # a resend of one acked on this socket still gets its ack (the widget resends
        # only after reconnecting, before anything new, so never into a refusal).
        if str(client_msg_id) not in self.acked_ids:
            self._refused_before("user_message")
        self.own_client_ids.add(str(client_msg_id))
        try:
            message, created, status = await database_sync_to_async(services.receive_visitor_message)(
                self.conversation.pk, self.conversation.visitor_id, text, client_msg_id, self.client_host
            )
        except services.RateLimited as error:
            self.refusals["user_message"] = (error, time.monotonic() + error.retry_after)
            raise
        self.acked_ids.add(str(client_msg_id))
        await self.send_json(
            {"type": "ack", "client_msg_id": str(client_msg_id), "message_id": message.pk, "seq": message.seq}
        )
        if created and status == "bot":
            await self.send_json({"type": "typing", "sender": "bot", "on": True})

    async def on_feedback(self, frame: dict) -> None:
        await database_sync_to_async(services.record_thumbs)(
            self.conversation, frame.get("message_id"), frame.get("value")
        )
        await self.send_json({"type": "feedback_ack", "message_id": frame.get("message_id")})

    async def on_article_feedback(self, frame: dict) -> None:
        await database_sync_to_async(services.record_article_feedback)(
            self.conversation, frame.get("message_id"), frame.get("helpful")
        )
        await self.send_json({"type": "article_feedback_ack", "message_id": frame.get("message_id")})

    async def on_handoff_request(self, frame: dict) -> None:
        await database_sync_to_async(services.hand_off)(self.conversation.pk, HandoffReason.REQUESTED)

    async def on_rating(self, frame: dict) -> None:
        await database_sync_to_async(services.record_rating)(self.conversation, frame.get("score"))
        await self.send_json({"type": "rating_ack", "score": frame.get("score")})

    async def on_identify(self, frame: dict) -> None:
        await database_sync_to_async(services.identify)(
            self.conversation, frame.get("name"), frame.get("email"), frame.get("user_id"), frame.get("user_hash")
        )
        await self.send_json({"type": "identify_ack"})

    async def on_typing(self, frame: dict) -> None:
        await self.channel_layer.group_send(
            realtime.conversation_group(self.conversation.pk),
            events.visitor_typing_event(frame.get("on")),
        )

    async def on_ping(self, frame: dict) -> None:
        await self.send_json({"type": "pong"})

    async def on_resume(self, frame: dict) -> None:
        # A client that saw a gap in seq (a live push was lost) asks for what follows
        # the last seq it has every message up to (docs/protocol.md, "Gaps").
        after_seq = frame.get("after_seq")
        if not isinstance(after_seq, int) or isinstance(after_seq, bool) or after_seq < 0:
            raise ProtocolError("invalid_after_seq", "after_seq must be a whole number, 0 or more.")
        await database_sync_to_async(self.conversation.refresh_from_db)(fields=["status", "offline_message"])
        await self._send_history(after_seq)

    HANDLERS = {
        "user_message": on_user_message,
        "feedback": on_feedback,
        "article_feedback": on_article_feedback,
        "handoff_request": on_handoff_request,
        "rating": on_rating,
        "identify": on_identify,
        "typing": on_typing,
        "ping": on_ping,
        "resume": on_resume,
    }

    # --- Events from the channel layer ---------------------------------------

    async def chat_message(self, event: dict) -> None:
        if event.get("internal"):
            return
        message = event["message"]
        if message["sender"] == "visitor" and message.get("client_msg_id") in self.own_client_ids:
            return
        await self.send_json({"type": "message", **message})

    async def chat_typing(self, event: dict) -> None:
        if event["sender"] == "visitor":
            return
        await self.send_json({"type": "typing", "sender": event["sender"], "on": event["on"]})

    async def chat_status(self, event: dict) -> None:
        await self.send_json({"type": "status", "status": event["status"], "offline": event.get("offline", False)})

    async def queue_update(self, event: dict) -> None:
        """Agents' queue events are not for visitors."""
