"""Reply suggestions through the product: pairs, training, activation, the suggest
task and the agent's socket, and what agents did with the suggestions."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from chatbot.agents import services as agents
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu.models import Response
from chatbot.replies import pairs, services, serving
from chatbot.replies.models import ReplyModelVersion, SuggestionEvent
from chatbot.replies.pairs import build_reply_pairs
from chatbot.replies.tasks import suggest_replies
from inference.replies import load_suggester
from tests.replies.conftest import TOY, add

# --- Pairs --------------------------------------------------------------------------


def test_pairs_come_only_from_agent_replies_with_pii_masked(handled):
    pairs = build_reply_pairs(include_intents=False)
    assert [p.reply for p in pairs] == ["Let me check [order_id] for you.", "It ships tomorrow."]
    first, second = pairs
    assert [(t.speaker, t.text) for t in first.context] == [
        ("customer", "hi, my email is [email]"),
        ("agent", "Hello! How can I help?"),  # the bot speaks for the company side
        ("customer", "where is my order [order_id]"),
    ]
    # The system line and the internal note are not turns; at most four turns.
    assert len(second.context) == 4
    assert second.context[-1].text == "thanks, call me at [phone]"
    texts = " ".join(t.text for p in pairs for t in p.context)
    assert "internal" not in texts and "took" not in texts.lower()


def test_intent_responses_give_a_fresh_install_pairs(demo_intents):
    pairs = build_reply_pairs()
    assert pairs and all(len(p.context) == 1 and p.context[0].speaker == "customer" for p in pairs)


# --- Training and activation ------------------------------------------------------------


def test_tiny_retrieval_run_from_built_pairs_trains_activates_and_suggests(handled, demo_intents, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    call_command("train_reply_model", "--kind", "retrieval", "--activate")
    version = ReplyModelVersion.objects.get()
    assert version.status == "ready" and version.is_active and version.progress == 1.0
    assert version.pair_count > 20 and "bleu" in version.metrics
    serving.forget()
    suggester = serving.suggester_for(version)
    found = suggester.suggest([{"speaker": "customer", "text": "where is my order [order_id]"}], n=3)
    assert "Let me check [order_id] for you." in [s.text for s in found]


def test_tiny_seq2seq_run_through_the_product(handled, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    settings.REPLY_TRAIN_OPTIONS = {
        "epochs": 1,
        "batch_size": 4,
        "max_source_len": 16,
        "max_target_len": 8,
        "decoder_layers": 1,
        "freeze_encoder_layers": 6,
        "min_steps": 0,
    }
    version = services.train_version(services.request_training("seq2seq").pk)
    assert version.status == "ready", version.error
    assert services.activate_version(version.pk).is_active


def test_a_second_run_of_the_same_kind_waits_for_the_first(db):
    services.request_training("retrieval")
    with pytest.raises(services.TrainingRefused):
        services.request_training("retrieval")
    services.request_training("seq2seq")


def test_activation_refuses_a_damaged_artifact_and_a_version_not_ready(db, damaged_dir):
    damaged = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(damaged_dir))
    with pytest.raises(services.ActivationRefused, match="damaged"):
        services.activate_version(damaged.pk)
    queued = ReplyModelVersion.objects.create(kind="retrieval")
    with pytest.raises(services.ActivationRefused, match="not ready"):
        services.activate_version(queued.pk)
    assert not ReplyModelVersion.objects.filter(is_active=True).exists()


def test_one_active_version_per_kind(db, retrieval_dir):
    old = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(retrieval_dir))
    new = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(retrieval_dir))
    services.activate_version(old.pk)
    services.activate_version(new.pk)
    assert list(ReplyModelVersion.objects.filter(is_active=True)) == [new]


def test_best_source_picks_the_higher_bleu_and_falls_back_to_whichever_is_active(db, settings):
    retrieval = ReplyModelVersion.objects.create(kind="retrieval", status="ready", is_active=True, metrics={"bleu": 20})
    assert serving.chosen_versions("best") == [retrieval]
    seq2seq = ReplyModelVersion.objects.create(kind="seq2seq", status="ready", is_active=True, metrics={"bleu": 30})
    assert serving.chosen_versions("best") == [seq2seq]
    assert serving.chosen_versions("retrieval") == [retrieval]
    assert serving.chosen_versions("both") == [seq2seq, retrieval]


# --- Suggesting ------------------------------------------------------------------------


def with_agent(visitor, agent, text="where is my order"):
    agents.take_over(visitor.conversation.pk, agent)
    return add(visitor.conversation, Message.Sender.VISITOR, text)


def test_suggest_task_stores_suggestions_once(visitor, agent, active_retrieval, django_capture_on_commit_callbacks):
    message = with_agent(visitor, agent)
    with django_capture_on_commit_callbacks(execute=False) as pushes:
        suggest_replies(message.pk)
        suggest_replies(message.pk)
    event = SuggestionEvent.objects.get()
    assert event.texts[0] == TOY["where is my order"]
    assert event.model_version == active_retrieval and event.outcome == "shown"
    assert len(pushes) == 1


def test_no_suggestions_while_the_bot_is_in_charge(visitor, active_retrieval):
    message = add(visitor.conversation, Message.Sender.VISITOR, "where is my order")
    suggest_replies(message.pk)
    assert not SuggestionEvent.objects.exists()


def test_a_damaged_active_model_shows_nothing_and_the_agent_can_still_reply(
    visitor, agent, damaged_dir, django_capture_on_commit_callbacks
):
    serving.forget()
    ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(damaged_dir), is_active=True)
    message = with_agent(visitor, agent)
    with django_capture_on_commit_callbacks(execute=False) as pushes:
        suggest_replies(message.pk)  # logs, does not raise
    assert pushes == [] and not SuggestionEvent.objects.exists()
    client = Client()
    client.force_login(agent)
    response = client.post(
        reverse("agents:reply", args=[visitor.conversation.pk]),
        {"text": "Checking now."},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert Message.objects.filter(sender="agent", text="Checking now.").exists()


def test_the_intent_path_enqueues_suggestions_only_when_a_person_handles_it(
    visitor, agent, active_retrieval, monkeypatch
):
    from chatbot.conversations.services import BotPrediction
    from chatbot.conversations.tasks import reply_to_visitor_message
    from chatbot.nlu import serving as nlu_serving

    asked = []
    monkeypatch.setattr(suggest_replies, "delay", lambda message_id: asked.append(message_id))
    monkeypatch.setattr(nlu_serving, "predict", lambda text: (_ for _ in ()).throw(nlu_serving.NoActiveModel()))
    bot_message = add(visitor.conversation, Message.Sender.VISITOR, "hello")
    reply_to_visitor_message(bot_message.pk)
    assert asked == []
    message = with_agent(visitor, agent)
    reply_to_visitor_message(message.pk)
    assert asked == [message.pk]

    def broken(message_id):
        raise ConnectionError("broker down")

    monkeypatch.setattr(suggest_replies, "delay", broken)
    other = add(visitor.conversation, Message.Sender.VISITOR, "still there?")
    reply_to_visitor_message(other.pk)  # the intent path does not fail
    assert Message.objects.get(pk=other.pk).confidence == BotPrediction("", 0.0, True, None).confidence


def test_taking_over_asks_for_suggestions_for_the_newest_visitor_message(
    visitor, agent, active_retrieval, monkeypatch, django_capture_on_commit_callbacks
):
    from chatbot.conversations import services as chat

    asked = []
    monkeypatch.setattr(suggest_replies, "delay", lambda message_id: asked.append(message_id))
    add(visitor.conversation, Message.Sender.VISITOR, "hello")
    newest = add(visitor.conversation, Message.Sender.VISITOR, "where is my order")
    chat.hand_off(visitor.conversation.pk, "requested")
    assert not services.wants_suggestions(newest.pk)  # waiting in the queue: nobody can reply yet
    assert services.suggest_for_message(newest.pk) == []
    with django_capture_on_commit_callbacks(execute=True):
        agents.take_over(visitor.conversation.pk, agent)
    assert asked == [newest.pk]


def test_no_suggestion_task_without_an_active_reply_model(visitor, agent, monkeypatch):
    from chatbot.conversations.tasks import reply_to_visitor_message
    from chatbot.nlu import serving as nlu_serving

    asked = []
    monkeypatch.setattr(suggest_replies, "delay", lambda message_id: asked.append(message_id))
    monkeypatch.setattr(nlu_serving, "predict", lambda text: (_ for _ in ()).throw(nlu_serving.NoActiveModel()))
    message = with_agent(visitor, agent)
    reply_to_visitor_message(message.pk)
    assert asked == []
    assert services.suggest_for_message(message.pk) == []


def test_suggestions_read_the_context_in_one_query(visitor, agent, active_retrieval, django_assert_max_num_queries):
    message = with_agent(visitor, agent)
    for i in range(6):
        add(visitor.conversation, Message.Sender.AGENT if i % 2 else Message.Sender.VISITOR, f"turn {i}")
    with django_assert_max_num_queries(1):
        context = pairs.context_before(message.conversation, message.seq + 100)
    assert [t.text for t in context] == ["turn 2", "turn 3", "turn 4", "turn 5"]


# --- Learning from the agents ----------------------------------------------------------


def test_reply_models_retrain_once_agents_have_written_enough_replies(
    visitor, agent, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from chatbot.replies.tasks import train_reply_model_version

    queued = []
    monkeypatch.setattr(train_reply_model_version, "delay", lambda version_id: queued.append(version_id))
    settings.REPLY_RETRAIN_AFTER_REPLIES = 2
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "Let me look.")
    agents.add_note(visitor.conversation.pk, agent, "notes do not count")
    assert services.retrain_if_due() == []
    agents.reply(visitor.conversation.pk, agent, "It ships tomorrow.")
    with django_capture_on_commit_callbacks(execute=True):
        agents.close(visitor.conversation.pk, agent)
    started = ReplyModelVersion.objects.order_by("kind")
    assert [(v.kind, v.activate_when_ready, v.status) for v in started] == [
        ("retrieval", True, "queued"),
        ("seq2seq", True, "queued"),
    ]
    assert sorted(queued) == sorted(v.pk for v in started)
    assert services.retrain_if_due() == []  # nothing new since, and both still open
    settings.REPLY_RETRAIN_AFTER_REPLIES = 0
    ReplyModelVersion.objects.all().delete()
    assert services.retrain_if_due() == []


def test_closing_works_when_retraining_cannot_start(visitor, agent, settings, monkeypatch):
    settings.REPLY_RETRAIN_AFTER_REPLIES = 1
    monkeypatch.setattr(services, "start_training", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "Done.")
    assert agents.close(visitor.conversation.pk, agent).status == Conversation.Status.CLOSED


def test_the_demo_starts_with_a_reply_model_of_the_intents_responses(active_model, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    call_command("bootstrap_demo")
    version = ReplyModelVersion.objects.get(is_active=True)
    assert version.kind == "retrieval" and version.pair_count > 500
    found = load_suggester(version.artifact_dir).suggest([{"speaker": "customer", "text": "where is my parcel"}])
    order_status = Response.objects.filter(intent__name="order_status").values_list("text", flat=True)
    assert found[0].text in {pairs.masked(text) for text in order_status}  # PII masked, as all pairs are
    call_command("bootstrap_demo")  # a second start keeps it
    assert ReplyModelVersion.objects.get(is_active=True) == version


# --- Outcomes ------------------------------------------------------------------------------


def shown_event(visitor, agent, version) -> SuggestionEvent:
    held = Conversation.objects.filter(pk=visitor.conversation.pk, status="with_agent").exists()
    message = (
        add(visitor.conversation, Message.Sender.VISITOR, "where is my order") if held else with_agent(visitor, agent)
    )
    return SuggestionEvent.objects.create(
        message=message, model_version=version, suggestions=[{"text": "Let me check.", "score": 0.9}]
    )


def post_reply(agent, visitor, text, **extra):
    client = Client()
    client.force_login(agent)
    response = client.post(
        reverse("agents:reply", args=[visitor.conversation.pk]), {"text": text, **extra}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("text", "extra", "outcome"),
    [
        ("Let me check.", {}, "sent_as_is"),
        ("Let me  check.", {"suggestion_inserted": "1"}, "sent_as_is"),
        ("Let me check, one moment.", {"suggestion_inserted": "1"}, "edited"),
        ("Something else entirely.", {}, "ignored"),
        ("Something else entirely.", {"suggestion_event_id": "not-a-number", "suggestion_inserted": "1"}, "ignored"),
    ],
)
def test_the_reply_records_what_the_agent_did_with_the_suggestions(visitor, agent, text, extra, outcome):
    event = shown_event(visitor, agent, ReplyModelVersion.objects.create(kind="retrieval"))
    extra.setdefault("suggestion_event_id", str(event.pk))
    post_reply(agent, visitor, text, **extra)
    event.refresh_from_db()
    assert event.outcome == outcome and event.agent == agent and event.reply.text == text


@pytest.mark.parametrize("inserted_from", ["older", "newer", None])
def test_one_reply_accepts_one_set_of_suggestions_at_most(visitor, agent, inserted_from):
    version = ReplyModelVersion.objects.create(kind="retrieval")
    older = shown_event(visitor, agent, version)
    newer = shown_event(visitor, agent, version)  # the same suggestion shown again
    chosen = {"older": older, "newer": newer}.get(inserted_from)
    extra = {"suggestion_event_id": str(chosen.pk), "suggestion_inserted": "1"} if chosen else {}
    post_reply(agent, visitor, "Let me check.", **extra)
    accepted = chosen or newer  # without an insertion, the newest set that holds the reply
    outcomes = {e.pk: e.outcome for e in SuggestionEvent.objects.all()}
    assert outcomes == {
        accepted.pk: "sent_as_is",
        (older if accepted == newer else newer).pk: "ignored",
    }


def test_acceptance_rate_counts_as_is_and_edited_over_shown(visitor, agent, admin):
    version = ReplyModelVersion.objects.create(kind="retrieval")
    assert services.acceptance_rate(version) is None
    for text, inserted in (("Let me check.", "1"), ("Let me check, hold on.", "1"), ("No.", "")):
        event = shown_event(visitor, agent, version)
        post_reply(agent, visitor, text, suggestion_event_id=str(event.pk), suggestion_inserted=inserted)
    shown_event(visitor, agent, version)  # still shown, no reply yet
    assert services.acceptance_rate(version) == 0.5
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("admin:replies_replymodelversion_changelist")).content.decode()
    assert "50% of 4" in page
    page = client.get(reverse("admin:replies_suggestionevent_changelist")).content.decode()
    assert "accepted 50% of 4" in page


# --- What is worth showing (issue 14) ----------------------------------------------------


def test_suggestions_never_show_a_masking_placeholder_nor_one_below_the_threshold(
    visitor, agent, active_retrieval, settings, monkeypatch
):
    from inference.replies.suggestions import Suggestion

    class Fake:
        def suggest(self, context, n=3, timeout_s=None):
            return [
                Suggestion("Let me check [order_id] for you.", 0.95),
                Suggestion("I'll email you at [email].", 0.9),
                Suggestion("Let me look into that for you.", 0.8),
                Suggestion("Bye for now!", 0.2),
            ]

    settings.REPLY_RETRIEVAL_MIN_SCORE = 0.5
    monkeypatch.setattr(serving, "suggester_for", lambda version: Fake())
    message = with_agent(visitor, agent)
    services.suggest_for_message(message.pk)
    assert SuggestionEvent.objects.get().texts == ["Let me look into that for you."]


def test_nothing_worth_showing_shows_nothing(visitor, agent, active_retrieval, settings, monkeypatch):
    from inference.replies.suggestions import Suggestion

    class Fake:
        def suggest(self, context, n=3, timeout_s=None):
            return [Suggestion("Bye for now!", 0.1)]

    monkeypatch.setattr(serving, "suggester_for", lambda version: Fake())
    assert services.suggest_for_message(with_agent(visitor, agent).pk) == []
