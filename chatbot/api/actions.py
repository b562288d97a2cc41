"""Every call the API makes into the conversations, agents and nlu apps, in one
place: those apps' services decide, this module only translates their refusals
into problem documents. (When a service is renamed, this is the file to adapt.)"""

from django.contrib.auth import get_user_model
from django.db import transaction

from chatbot import realtime
from chatbot.agents import services as agents
from chatbot.api.problems import ApiProblem
from chatbot.conversations import services as chat
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu import services as nlu
from chatbot.nlu import training_data
from chatbot.nlu.models import Intent, ModelVersion, TrainingExample
from chatbot.nlu.pii import mask_pii

# AgentActionError codes and the HTTP status each one gets.
AGENT_ERROR_STATUS = {
    "empty_text": 422,
    "text_too_long": 422,
    "not_found": 404,
    "not_yours": 409,
    "closed": 409,
    "already_yours": 409,
    "taken": 409,
}


def _agent_problem(exc: agents.AgentActionError) -> ApiProblem:
    return ApiProblem(AGENT_ERROR_STATUS.get(exc.code, 409), exc.code, exc.message)


def find_agent(agent_id: int | None, default_user):
    """The agent an action is done as: the one named, else the token's user; must be allowed in the dashboard."""
    if agent_id is None:
        user = default_user
    else:
        user = get_user_model().objects.filter(pk=agent_id).first()
        if user is None:
            raise ApiProblem(422, "unknown_agent", f"No user with id {agent_id}.")
    if not agents.is_agent(user):
        raise ApiProblem(422, "not_an_agent", f"User {user.pk} may not work in the agent dashboard.")
    return user


# --- Messages ------------------------------------------------------------------


def post_agent_message(conversation_id, agent, text: str) -> Message:
    """The same path as a dashboard reply: the visitor gets it live on the websocket."""
    try:
        return agents.reply(conversation_id, agent, text)
    except agents.AgentActionError as exc:
        raise _agent_problem(exc) from None


def post_bot_message(conversation_id, text: str) -> Message:
    """A message in the bot's name (an integration answering for the bot), pushed like the bot's own."""
    try:
        text = agents.check_text(text)
    except agents.AgentActionError as exc:
        raise _agent_problem(exc) from None
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Conversation.Status.CLOSED:
            raise ApiProblem(409, "closed", "This conversation is closed.")
        message = chat.append_message(conversation, sender=Message.Sender.BOT, text=text)
        realtime.push(realtime.conversation_group(conversation.pk), chat.message_event(message))
        realtime.push(realtime.AGENTS_GROUP, chat.queue_event(conversation))
    return message


def add_note(conversation_id, agent, text: str) -> Message:
    try:
        return agents.add_note(conversation_id, agent, text)
    except agents.AgentActionError as exc:
        raise _agent_problem(exc) from None


# --- Conversation actions -------------------------------------------------------


def _locked(conversation_id) -> Conversation:
    try:
        return chat.lock_conversation(conversation_id)
    except (Conversation.DoesNotExist, ValueError):
        raise ApiProblem(404, "not_found", "No such conversation.") from None


def hand_off(conversation_id, reason: str) -> Conversation:
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if conversation.status == Conversation.Status.CLOSED:
            raise ApiProblem(409, "closed", "This conversation is closed.")
        if conversation.status != Conversation.Status.BOT:
            raise ApiProblem(409, "already_handed_off", "A person already has this conversation or it is queued.")
        return chat.hand_off(conversation.pk, reason)


def assign(conversation_id, agent) -> Conversation:
    try:
        return agents.take_over(conversation_id, agent)
    except agents.AgentActionError as exc:
        raise _agent_problem(exc) from None


def close(conversation_id, agent) -> Conversation:
    try:
        return agents.close(conversation_id, agent)
    except agents.AgentActionError as exc:
        raise _agent_problem(exc) from None


# --- Intents and examples --------------------------------------------------------


def valid_intent_name(name: str) -> bool:
    return training_data.valid_intent_name(name)


def add_example(intent: Intent, text: str) -> TrainingExample:
    """The admin import's rules (normalised text, length, one intent per text), on PII-masked text."""
    masked = mask_pii(text)
    report = training_data.ImportReport()
    batch = training_data.ExampleBatch(report, TrainingExample.Source.IMPORT)
    batch.add(None, masked, intent.name)
    batch.flush()
    if report.rejected:
        raise ApiProblem(422, "invalid_example", report.rejected[0])
    example = TrainingExample.objects.get(text=" ".join(masked.split()))
    if report.skipped:
        raise ApiProblem(409, "duplicate_example", f"{example.text!r} is already an example of this intent.")
    return example


# --- Model versions -----------------------------------------------------------------


def request_training(mode: str, user) -> ModelVersion:
    try:
        return nlu.start_training(mode=mode, user=user)
    except nlu.TrainingRefused as exc:
        raise ApiProblem(409, "training_refused", str(exc)) from None


def activate(version_id: int, user, *, force: bool) -> ModelVersion:
    """With the regression guard: a version worse than the active one is refused unless forced."""
    _version(version_id)
    try:
        return nlu.activate_model_version(version_id, user, force=force)
    except nlu.ActivationRefused as exc:
        raise ApiProblem(409, "activation_refused", str(exc)) from None


def roll_back(version_id: int, user) -> ModelVersion:
    _version(version_id)
    try:
        return nlu.roll_back_to(version_id, user)
    except nlu.ActivationRefused as exc:
        raise ApiProblem(409, "rollback_refused", str(exc)) from None


def _version(version_id: int) -> ModelVersion:
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise ApiProblem(404, "not_found", "No such model version.")
    return version
